"""The ``keyguard`` command: serve, init, audit verify, usage."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from keyguard.cli._config import (
    ConfigurationError,
    existing_database_settings,
    load_settings,
    start_runtime,
)
from keyguard.cli.master_key import master_key_app
from keyguard.cli.usage import usage_command
from keyguard.errors import KeyguardError

app = typer.Typer(
    name="keyguard",
    help="Keyguard: a self-hostable API security platform.",
    no_args_is_help=True,
    add_completion=False,
)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="Data directory (default ./keyguard-data or KEYGUARD_DATA_DIR)."),
]


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@contextmanager
def _configuration_errors(command: str) -> Iterator[None]:
    """A setting the command cannot work with: one line on stderr and exit 2."""
    try:
        yield
    except ConfigurationError as error:
        _fail(f"keyguard {command}: {error}", code=2)


@app.command()
def serve(
    data: DataOpt = None,
    host: Annotated[str | None, typer.Option(help="Interface to bind (default localhost).")] = None,
    port: Annotated[int | None, typer.Option(help="HTTPS port (default 8443).")] = None,
    http_port: Annotated[
        int | None, typer.Option(help="Also listen on plain HTTP (redirects/403 only).")
    ] = None,
    gateway_upstream: Annotated[
        str | None,
        typer.Option(help="Also run the gateway in this process, in front of this URL."),
    ] = None,
    gateway_port: Annotated[
        int | None, typer.Option(help="HTTPS port of that gateway (default 8444).")
    ] = None,
    gateway_openapi: Annotated[
        Path | None,
        typer.Option(
            help="That gateway enforces this OpenAPI 3 document's per-operation security "
            "(as `keyguard gateway --openapi`)."
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1, help="Processes serving the same ports; above 1 needs KEYGUARD_REDIS_URL."
        ),
    ] = 1,
) -> None:
    """Start Keyguard over HTTPS with the embedded defaults."""
    from keyguard.cli.serving import run_server
    from keyguard.gateway import upstream_base

    with _configuration_errors("serve"):
        settings = load_settings(
            data,
            host=host,
            port=port,
            http_port=http_port,
            gateway_upstream=gateway_upstream,
            gateway_port=gateway_port,
            gateway_openapi=gateway_openapi,
        )
        if settings.gateway_openapi and not settings.gateway_upstream:
            raise ConfigurationError("--gateway-openapi needs --gateway-upstream")
        if settings.gateway_upstream:
            try:
                upstream_base(settings.gateway_upstream)  # a bad URL fails before anything starts
            except ValueError as error:
                raise ConfigurationError(str(error)) from None
        run_server(settings, workers)


@app.command()
def gateway(
    upstream: Annotated[
        str, typer.Option(help="Where allowed requests go, e.g. http://127.0.0.1:9000.")
    ],
    data: DataOpt = None,
    host: Annotated[str | None, typer.Option(help="Interface to bind (default localhost).")] = None,
    port: Annotated[int, typer.Option(help="HTTPS port of the gateway.")] = 8444,
    openapi: Annotated[
        Path | None,
        typer.Option(
            help="The upstream's OpenAPI 3 document (JSON or YAML): enforce each operation's "
            "security requirements, and refuse operations it does not declare."
        ),
    ] = None,
) -> None:
    """Check every request with Keyguard's policy engine, then proxy it to UPSTREAM."""
    from keyguard.cli.gateway import run_gateway

    with _configuration_errors("gateway"):
        run_gateway(load_settings(data, host=host), upstream, port, openapi=openapi)


@app.command()
def init(
    email: Annotated[str, typer.Option(help="E-mail of the first admin account.")],
    password: Annotated[str, typer.Option(help="Password of the first admin account.")],
    data: DataOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Create the first admin account, a root key and a default project."""
    from keyguard.accounts.service import init_admin
    from keyguard.crypto.tls import ensure_dev_certificates

    with _configuration_errors("init"):
        settings = load_settings(data)

    async def run() -> dict[str, str]:
        runtime = await start_runtime(settings)
        try:
            result = await init_admin(runtime, email=email, password=password)
        finally:
            await runtime.close()
        certs = ensure_dev_certificates(settings.data_dir)
        return {
            "root_key": result.root_key.issued.key,
            "project_id": result.project.project.id,
            "ca_cert": str(certs.ca_cert.resolve()),
        }

    try:
        with _configuration_errors("init"):
            out = asyncio.run(run())
    except KeyguardError as error:
        _fail(f"keyguard init: {error.detail or error.title}")
    if as_json:
        sys.stdout.write(json.dumps(out) + "\n")
        return
    typer.echo(f"Root key (shown once, store it now): {out['root_key']}")
    typer.echo(f"Default project:                    {out['project_id']}")
    typer.echo(f"Development CA certificate:         {out['ca_cert']}")


@audit_app.command("verify")
def audit_verify(
    data: DataOpt = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="A checkpoint you kept (GET /v1/audit/checkpoint, an audit.checkpoint event "
            "or `keyguard audit checkpoint`): fail unless the log still extends it.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    key: Annotated[
        list[str] | None,
        typer.Option(
            help="A verifier key (name+hash+base64) the checkpoint must be signed by; "
            "repeatable. Default: any key the database publishes."
        ),
    ] = None,
) -> None:
    """Recompute the audit hash chain and report any tampered, missing or reordered row;
    with --checkpoint, also prove the log extends a checkpoint kept outside it."""
    from keyguard.audit.checkpoints import CheckpointMismatch, Extension, verify_extends
    from keyguard.audit.note import Checkpoint, NoteError, Verifier, split
    from keyguard.audit.service import ChainBreak, verify_chain

    with _configuration_errors("audit verify"):
        settings = existing_database_settings(data)
        try:
            trusted = [Verifier.parse(k) for k in key] if key else None
        except NoteError as error:
            raise ConfigurationError(f"--key: {error}") from error
        note = checkpoint.read_text(encoding="utf-8") if checkpoint is not None else None
        if note is not None:
            try:
                Checkpoint.parse(split(note)[0])
            except NoteError as error:
                raise ConfigurationError(f"{checkpoint} is not a checkpoint: {error}") from error

    async def run() -> tuple[int, list[ChainBreak], Extension | str | None]:
        runtime = await start_runtime(settings)
        try:
            async with runtime.sessions() as session:
                from sqlalchemy import func, select

                from keyguard.audit.models import AuditEvent

                count = (
                    await session.execute(select(func.count()).select_from(AuditEvent))
                ).scalar_one()
                breaks = await verify_chain(session)
                extension: Extension | str | None = None
                if note is not None:
                    try:
                        extension = await verify_extends(session, note, trusted=trusted)
                    except CheckpointMismatch as mismatch:
                        extension = str(mismatch)
                return count, breaks, extension
        finally:
            await runtime.close()

    with _configuration_errors("audit verify"):
        count, breaks, extension = asyncio.run(run())
    for item in breaks:
        typer.secho(f"event {item.seq}: {item.reason}", fg=typer.colors.RED, err=True)
    if isinstance(extension, str):
        typer.secho(f"checkpoint: {extension}", fg=typer.colors.RED, err=True)
    if breaks or isinstance(extension, str):
        problems = len(breaks) + isinstance(extension, str)
        _fail(f"audit log TAMPERED: {problems} problem(s) in {count} events")
    typer.echo(f"audit log intact: {count} events, chain verified")
    if isinstance(extension, Extension):
        typer.echo(
            f"checkpoint verified: the log extends {extension.checkpoint.origin} at size "
            f"{extension.checkpoint.size} (signed by key {extension.signed_by.key_id.hex()})"
        )


@audit_app.command("checkpoint")
def audit_checkpoint(data: DataOpt = None) -> None:
    """Print a signed checkpoint of the log as it is now (keep it somewhere else)."""
    from keyguard.audit.checkpoints import sign_current

    with _configuration_errors("audit checkpoint"):
        settings = existing_database_settings(data)

    async def run() -> str:
        runtime = await start_runtime(settings)
        try:
            return (await sign_current(runtime)).note
        finally:
            await runtime.close()

    with _configuration_errors("audit checkpoint"):
        sys.stdout.write(asyncio.run(run()))


app.command("usage")(usage_command)
app.add_typer(master_key_app, name="master-key")

root_key_app = typer.Typer(help="Root keys (the management credential).", no_args_is_help=True)
app.add_typer(root_key_app, name="root-key")


@root_key_app.command("create")
def root_key_create(
    name: Annotated[str, typer.Option(help="What the key is for.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data: DataOpt = None,
) -> None:
    """Make a root key offline, on the data directory: the way back in when every root
    key is lost or revoked. Audited; the key is printed once."""
    from sqlalchemy import select

    from keyguard.accounts.models import Account
    from keyguard.keys.root_keys import create_root_key

    with _configuration_errors("root-key create"):
        settings = existing_database_settings(data, hint=": run keyguard init")

    async def run() -> tuple[str, str]:
        runtime = await start_runtime(settings)
        try:
            async with runtime.sessions() as db:
                admin = (
                    (
                        await db.execute(
                            select(Account.id)
                            .where(Account.is_admin.is_(True))
                            .order_by(Account.created_at)
                        )
                    )
                    .scalars()
                    .first()
                )
            created = await create_root_key(
                runtime, name=name, actor="cli:root-key-create", account_id=admin
            )
            return created.view.id, created.key
        finally:
            await runtime.close()

    with _configuration_errors("root-key create"):
        try:
            key_id, key = asyncio.run(run())
        except KeyguardError as error:
            _fail(f"keyguard root-key create: {error}", code=1)
    if as_json:
        typer.echo(json.dumps({"id": key_id, "key": key}))
        return
    typer.echo(f"Root key (shown once, store it now): {key}")


def main() -> None:
    app()
