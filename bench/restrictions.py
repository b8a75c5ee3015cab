"""Cost of each per-key restriction in the policy engine, alone and all together.

Run alone (``python -m bench.restrictions [--quick]``) or from ``bench/run.py`` by adding
``restrictions.restrictions_cost`` to ``INPROCESS_CHECKS``. Every figure is a cache-hit
``PolicyEngine.verify`` on a real Runtime (SQLite, in-process state) whose clock is a
``FrozenClock`` set per request: TOTP codes and signatures are accepted once, so each
timed request carries its own precomputed code/signature for its own instant (the
precomputation is outside the timed loop). "Extra" is the verify time minus that of a
bare key in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # `python bench/restrictions.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.config import BenchConfig
from bench.inprocess import InProcessContext
from bench.report import Row, render
from bench.timing import Timing, time_async
from keyguard.accounts.service import init_admin
from keyguard.clock import FrozenClock
from keyguard.crypto.request_signing import compute_signature
from keyguard.crypto.totp import totp_code
from keyguard.engine.facts import Credentials, RequestFacts
from keyguard.keys import service as keys
from keyguard.restrictions import service as restrictions
from keyguard.runtime import Runtime
from keyguard.settings import Settings

SECTION = "per-key restrictions (cache hit, PolicyEngine.verify, in-process state)"
ALL_TARGET_US = 15.0  # issue 11 (was 20)
START = 1_800_000_000.0
CLIENT_IP = "198.51.100.7"
ORIGIN = "https://app.example.com"


def _ranges(n: int) -> tuple[str, ...]:
    # n disjoint /24s spread over 10.0.0.0/8, plus the client's own range last.
    return (*(f"10.{i // 256 % 256}.{i % 256}.0/24" for i in range(n - 1)), "198.51.100.0/24")


def _domains(n: int) -> tuple[str, ...]:
    return (*(f"*.site{i}.example.org" for i in range(n - 1)), "*.example.com")


def _certificate() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class Bench:
    def __init__(self, runtime: Runtime, clock: FrozenClock, project_id: str, config: BenchConfig):
        self.runtime = runtime
        self.clock = clock
        self.project_id = project_id
        self.config = config

    async def key(self, **spec: object) -> tuple[str, str]:
        created = await keys.create_key(
            self.runtime,
            self.project_id,
            keys.KeySpec(name="bench", **spec),  # type: ignore[arg-type]
            actor="bench",
        )
        return created.issued.id, created.issued.secret

    async def time(
        self, credentials: Credentials, make: Callable[[int, float], RequestFacts]
    ) -> Timing:
        """µs per verify; request ``i`` happens at ``START + 30 i`` with facts ``make(i, t)``."""
        n = min(self.config.iterations, 1000) + self.config.iterations * self.config.repeats
        plan = [(START + 30.0 * i, make(i, START + 30.0 * i)) for i in range(n)]
        it = iter(plan)
        engine = self.runtime.engine
        clock = self.clock

        async def one() -> object:
            clock.t, facts = next(it)
            return await engine.verify(credentials, facts)

        self.clock.t = START
        await engine.cache.get(credentials.key_id)  # cache hit from here on
        return await time_async(one, iterations=self.config.iterations, repeats=self.config.repeats)


def _plain(i: int, t: float) -> RequestFacts:
    return RequestFacts(client_ip=CLIENT_IP, method="POST", path_with_query="/v1/sessions")


async def _measure(b: Bench) -> list[Row]:
    rows: list[Row] = []
    bare_id, bare_secret = await b.key()
    t_bare = await b.time(Credentials(bare_id, bare_secret), _plain)
    rows.append(Row(SECTION, "bare key (no restriction)", t_bare.us_per_op, "us/op"))

    def extra(name: str, t: Timing, note: str = "") -> Row:
        return Row(SECTION, name, t.us_per_op - t_bare.us_per_op, "us extra", note=note)

    # --- IP allowlist: 10 vs 10,000 ranges ---------------------------------------------
    t_ip: dict[int, Timing] = {}
    for n in (10, 10_000):
        creds = Credentials(*await b.key(ip_allowlist=_ranges(n)))
        t_ip[n] = await b.time(creds, _plain)
    rows.append(extra("IP allowlist, 10 ranges", t_ip[10]))
    rows.append(extra("IP allowlist, 10,000 ranges", t_ip[10_000]))
    rows.append(
        Row(
            SECTION,
            "verify with 10,000 ranges / with 10",
            t_ip[10_000].ns_per_op / t_ip[10].ns_per_op,
            "x",
            note=f"{t_ip[10].us_per_op:.2f} vs {t_ip[10_000].us_per_op:.2f} us per verify",
        )
    )

    # --- allowed domains -----------------------------------------------------------------
    creds = Credentials(*await b.key(allowed_domains=_domains(10)))

    def with_origin(i: int, t: float) -> RequestFacts:
        return replace(_plain(i, t), origin=ORIGIN)

    rows.append(extra("allowed domains, 10 patterns (Origin)", await b.time(creds, with_origin)))

    # --- client certificate --------------------------------------------------------------
    pem = _certificate()
    key_id, secret = await b.key()
    await restrictions.add_certificate(b.runtime, key_id, pem, actor="bench")

    def with_cert(i: int, t: float) -> RequestFacts:
        return replace(_plain(i, t), client_cert_pem=pem)

    rows.append(
        extra(
            "client certificate (TLS PEM, pinned)",
            await b.time(Credentials(key_id, secret), with_cert),
            note="PEM->DER, SHA-256, validity",
        )
    )

    # --- signature (bare id: no key-secret hash, one HMAC + replay claim) ------------------
    key_id, secret = await b.key()
    signing = await restrictions.set_signing_secret(b.runtime, key_id, actor="bench")
    body = b'{"delivery_mode": "poll"}'

    def signed(i: int, t: float) -> RequestFacts:
        ts = str(int(t))
        return replace(
            _plain(i, t),
            body=body,
            timestamp=ts,
            signature=compute_signature(signing, "POST", "/v1/sessions", body, ts),
        )

    rows.append(
        extra(
            "signed request (bare id + signature)",
            await b.time(Credentials(key_id, None), signed),
            note="replaces the key-secret hash; incl. replay claim",
        )
    )

    # --- TOTP ----------------------------------------------------------------------------
    key_id, secret = await b.key()
    b.clock.t = START - 3600
    enrolment = await restrictions.start_totp(b.runtime, key_id, actor="bench")
    await restrictions.confirm_totp(
        b.runtime, key_id, totp_code(enrolment.secret, b.clock.t), actor="bench"
    )

    def with_totp(i: int, t: float) -> RequestFacts:
        return replace(_plain(i, t), totp=totp_code(enrolment.secret, t))

    rows.append(
        extra(
            "TOTP (3 steps checked, step claim)",
            await b.time(Credentials(key_id, secret), with_totp),
        )
    )

    # --- rate limit ----------------------------------------------------------------------
    creds = Credentials(*await b.key(rate_limit=(10**9, 60)))
    rows.append(extra("rate limit (sliding window hit)", await b.time(creds, _plain)))

    # --- everything at once --------------------------------------------------------------
    key_id, secret = await b.key(
        ip_allowlist=_ranges(10),
        allowed_domains=_domains(10),
        rate_limit=(10**9, 60),
        scopes=("sessions:write",),
    )
    await restrictions.add_certificate(b.runtime, key_id, pem, actor="bench")
    signing_all = await restrictions.set_signing_secret(b.runtime, key_id, actor="bench")
    b.clock.t = START - 3600
    enrol_all = await restrictions.start_totp(b.runtime, key_id, actor="bench")
    await restrictions.confirm_totp(
        b.runtime, key_id, totp_code(enrol_all.secret, b.clock.t), actor="bench"
    )

    def everything(i: int, t: float) -> RequestFacts:
        ts = str(int(t))
        return RequestFacts(
            client_ip=CLIENT_IP,
            origin=ORIGIN,
            method="POST",
            path_with_query="/v1/sessions",
            body=body,
            timestamp=ts,
            signature=compute_signature(signing_all, "POST", "/v1/sessions", body, ts),
            totp=totp_code(enrol_all.secret, t),
            client_cert_pem=pem,
        )

    # Full key *and* signature: the most work a request can cost.
    t_all = await b.time(Credentials(key_id, secret), everything)
    overhead = t_all.us_per_op - t_bare.us_per_op
    rows.append(Row(SECTION, "every restriction on one key", t_all.us_per_op, "us/op"))
    rows.append(
        Row(
            SECTION,
            "  of which beyond the bare key check",
            overhead,
            "us extra",
            target=f"<= {ALL_TARGET_US:g} us",
            meets=overhead <= ALL_TARGET_US,
            note="IP(10)+domains(10)+cert+signature+TOTP+rate limit+scope",
        )
    )
    return rows


async def restrictions_cost(
    ctx: InProcessContext | None = None, *, config: BenchConfig | None = None
) -> list[Row]:
    """A ``bench/run.py`` in-process check (it brings its own Runtime, on a frozen clock)."""
    config = config or (ctx.config if ctx is not None else BenchConfig.create(quick=True))
    clock = FrozenClock(START)
    with tempfile.TemporaryDirectory(prefix="keyguard-bench-restrictions-") as tmp:
        # Each timed request is 30 s after the previous one (a TOTP step): keep the cache warm.
        settings = Settings(data_dir=Path(tmp), key_cache_ttl_seconds=1e12)
        runtime = await Runtime.start(settings, clock=clock)
        try:
            init = await init_admin(runtime, email="bench@example.com", password="bench-pass-1")
            bench = Bench(runtime, clock, init.project.project.id, config)
            return await _measure(bench)
        finally:
            await runtime.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cost of each per-key restriction.")
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    args = parser.parse_args(argv)
    config = BenchConfig.create(quick=args.quick)
    print(
        f"Keyguard restrictions bench: {config.iterations:,} iterations x "
        f"{config.repeats} repeats, median",
        flush=True,
    )
    print(render(asyncio.run(restrictions_cost(config=config))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
