"""Leaked-key reports, the way GitHub's secret-scanning partner program sends them
(CONTRACT §10): a JSON list of ``{token, type, url, source}``, signed over the raw body
with ECDSA P-256 / SHA-256; ``Github-Public-Key-Identifier`` names the reporter's key in
the file ``KEYGUARD_LEAK_REPORTERS`` (GitHub's published shape,
``{"public_keys": [{"key_identifier", "key"}]}``), ``Github-Public-Key-Signature`` is the
base64 DER signature.

What an attacker can try, and what answers it:

- **Revoking someone's key by reporting it**: only a report signed by a listed reporter
  changes anything; a bad or missing signature is refused before the body is read.
- **Learning which tokens are real**: every accepted report gets the same answer (how
  many tokens it carried), whatever they were.
- **A token that only looks like a key**: it must pass the format and checksum, name a
  key, and match its secret (the same constant-time check requests get).

A matching key is revoked at once (the default policy) or, in a project whose
``leak_policy`` is ``quarantine``, refused until an owner releases or regenerates it;
audited as ``key.leaked`` (a webhook event too) and its project's owners are emailed.
Root keys are always revoked, unless it is the last active one (then it is only audited
and alerted, so the operator keeps a way in; ``keyguard root-key create`` makes another).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keyguard.accounts.members import owner_emails
from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.crypto.keys import parse_key
from keyguard.errors import InvalidKey, ValidationFailed
from keyguard.i18n import translate
from keyguard.keys import service as keys
from keyguard.keys.errors import LastRootKey
from keyguard.keys.models import ApiKey
from keyguard.keys.root_keys import revoke_root_key
from keyguard.leaks.errors import LeakReportUnsigned
from keyguard.mail.outbox import enqueue_mail
from keyguard.projects.models import Project

MAX_TOKENS = 1000
ACTOR = "leak-report"


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    tokens: int
    revoked: int  # keys revoked or quarantined; for the audit and tests, never sent back


def _reporter_key(path: Path, identifier: str) -> ec.EllipticCurvePublicKey | None:
    try:
        listed = json.loads(path.read_text())["public_keys"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for entry in listed if isinstance(listed, list) else []:
        if isinstance(entry, dict) and entry.get("key_identifier") == identifier:
            try:
                key = serialization.load_pem_public_key(str(entry.get("key", "")).encode())
            except ValueError:
                return None
            return key if isinstance(key, ec.EllipticCurvePublicKey) else None
    return None


def check_signature(
    ctx: ServiceContext, body: bytes, identifier: str | None, signature: str | None
) -> None:
    """``LeakReportUnsigned`` unless ``body`` is signed by a listed reporter's key."""
    path = ctx.settings.leak_reporters
    if path is None or not identifier or not signature or len(signature) > 512:
        raise LeakReportUnsigned()
    key = _reporter_key(path, identifier)
    if key is None:
        raise LeakReportUnsigned()
    try:
        key.verify(base64.b64decode(signature, validate=True), body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        raise LeakReportUnsigned() from None


def _tokens(body: bytes) -> list[dict[str, Any]]:
    try:
        items = json.loads(body)
    except ValueError:
        raise ValidationFailed("the report must be a JSON list") from None
    if not isinstance(items, list) or len(items) > MAX_TOKENS:
        raise ValidationFailed(f"the report must be a JSON list of at most {MAX_TOKENS} items")
    return [item for item in items if isinstance(item, dict) and isinstance(item.get("token"), str)]


async def handle_report(ctx: ServiceContext, body: bytes) -> ReportOutcome:
    """Revoke (or quarantine, by the project's policy) and report every reported token that
    is a live key (the body is signed)."""
    refused = 0
    items = _tokens(body)
    for item in items:
        try:
            parsed = parse_key(item["token"].strip())
        except InvalidKey:
            continue
        async with ctx.sessions() as db:
            row = await db.get(ApiKey, parsed.id)
            if row is None or not ctx.hasher.matches(parsed.secret, row.secret_hash):
                continue
            project = await db.get(Project, row.project_id) if row.project_id else None
        outcome = await _refuse(ctx, row, project.leak_policy if project else "revoke")
        refused += outcome in ("revoked", "quarantined")
        await _report(ctx, row, str(item.get("source", ""))[:100], outcome)
    return ReportOutcome(len(items), refused)


async def _refuse(ctx: ServiceContext, row: ApiKey, policy: str) -> str:
    """What the report did to the key: ``revoked``, ``quarantined``, or why neither."""
    if row.revoked_at is not None:
        return "already_revoked"
    try:
        if row.is_root:  # no project, no policy: a root key is always revoked
            await revoke_root_key(ctx, row.id, actor=ACTOR)
        elif policy == "quarantine":
            quarantined = await keys.quarantine_key(ctx, row.id, actor=ACTOR)
            return "quarantined" if quarantined else "already_quarantined"
        else:
            await keys.revoke_key(ctx, row.id, actor=ACTOR)
    except LastRootKey:
        return "kept"  # so the operator keeps a way in: audited and alerted
    return "revoked"


async def _report(ctx: ServiceContext, row: ApiKey, source: str, outcome: str) -> None:
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        await audit.record(
            db,
            at=now,
            actor=ACTOR,
            action="key.leaked",
            target=row.id,
            project_id=row.project_id,
            data={"source": source, "outcome": outcome},
        )
        if row.project_id is None:
            return
        mail = "quarantined" if outcome == "quarantined" else "revoked"
        for email in await owner_emails(db, row.project_id):
            enqueue_mail(
                db,
                ctx,
                to=email,
                subject=translate(f"mail.leaked.{mail}.subject", name=row.name),
                body=translate(
                    f"mail.leaked.{mail}.body", name=row.name, key_id=row.id, source=source or "-"
                ),
                kind="key_leaked",
            )
