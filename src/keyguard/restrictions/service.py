"""Per-key restrictions with their own life cycle: TOTP, client certificates, signing.

IP allowlists, allowed domains and rate limits are plain settings (``keys.update_key``);
these three hold secrets or documents, so each has its own small use case here. Every
change runs in one transaction with its ``key.restrictions_changed`` audit event (which
never holds a secret), then drops the key from every instance's cache.

TOTP enrolment is two steps, as authenticator apps expect: ``start_totp`` stores a new
sealed secret without enabling it and returns the secret, its ``otpauth://`` URI and a
QR code; ``confirm_totp`` enables it once a code from the app matches. A key whose TOTP
is on must be switched off (``disable_totp``) before it can enrol again, so a stray call
never locks out the clients of a working key.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from keyguard.clock import utc_from_ts
from keyguard.context import ServiceContext
from keyguard.crypto.certificates import parse_pem_certificate
from keyguard.crypto.request_signing import new_signing_secret
from keyguard.crypto.totp import TotpKey, new_totp_secret, provisioning_uri, qr_svg
from keyguard.engine.totp_guard import TotpGuard
from keyguard.errors import Conflict, NotFound, TotpInvalid, ValidationFailed
from keyguard.keys.changes import changing_key, live_project_key
from keyguard.keys.models import KeyCertificate
from keyguard.keys.service import get_key
from keyguard.keys.views import CertificateView
from keyguard.restrictions.errors import TotpConfirmationInvalid

__all__ = [
    "MAX_CERTIFICATES",
    "TOTP_ISSUER",
    "TotpEnrolment",
    "add_certificate",
    "all_certificate_pems",
    "confirm_totp",
    "disable_totp",
    "list_certificates",
    "remove_certificate",
    "remove_signing_secret",
    "set_signing_secret",
    "start_totp",
]

TOTP_ISSUER = "Keyguard"
MAX_CERTIFICATES = 20


@dataclass(frozen=True, slots=True, repr=False)
class TotpEnrolment:
    secret: str  # shown once, to be put into an authenticator app
    otpauth_uri: str
    qr_svg: str

    def __repr__(self) -> str:
        return "TotpEnrolment(<redacted>)"


RESTRICTIONS_CHANGED = "key.restrictions_changed"


# ---- TOTP -------------------------------------------------------------------------------


async def start_totp(ctx: ServiceContext, key_id: str, *, actor: str) -> TotpEnrolment:
    secret = new_totp_secret()
    async with changing_key(ctx, key_id, actor=actor) as change:
        row = change.row
        if row.totp_enabled:
            raise Conflict("TOTP is already enabled on this key: disable it before enrolling again")
        row.totp_secret_sealed = ctx.envelope.seal(secret, context=f"totp:{row.id}")
        await change.record(RESTRICTIONS_CHANGED, change="totp_enrolment_started")
    uri = provisioning_uri(secret, account_name=key_id, issuer=TOTP_ISSUER)
    return TotpEnrolment(secret=secret, otpauth_uri=uri, qr_svg=qr_svg(uri))


async def confirm_totp(ctx: ServiceContext, key_id: str, code: str, *, actor: str) -> None:
    """Enable TOTP when ``code`` matches the pending secret (422 ``totp_invalid`` if not).

    Wrong codes count against the same per-key throttle as requests do, and the code
    that confirms is spent: it cannot authenticate a request afterwards.
    """
    async with ctx.sessions() as session:
        row = await live_project_key(session, key_id)
        if row.totp_enabled:
            raise Conflict("TOTP is already enabled on this key")
        if row.totp_secret_sealed is None:
            raise Conflict("no TOTP enrolment to confirm: POST /v1/keys/KEY/totp first")
        secret = ctx.envelope.open(row.totp_secret_sealed, context=f"totp:{row.id}")
    guard = TotpGuard(ctx.state, ctx.clock)  # the same throttle and once-only rule as requests
    try:
        totp = TotpKey(secret)
        step = await guard.match(key_id, totp, code)
        await guard.claim(key_id, totp, step)
    except TotpInvalid:
        raise TotpConfirmationInvalid() from None
    async with changing_key(ctx, key_id, actor=actor) as change:
        row = change.row
        if row.totp_secret_sealed is None or row.totp_enabled:
            raise Conflict("the TOTP enrolment changed meanwhile")
        row.totp_enabled = True
        await change.record(RESTRICTIONS_CHANGED, change="totp_enabled")


async def disable_totp(ctx: ServiceContext, key_id: str, *, actor: str) -> None:
    async with changing_key(ctx, key_id, actor=actor) as change:
        row = change.row
        if not row.totp_enabled and row.totp_secret_sealed is None:
            return  # idempotent
        row.totp_enabled = False
        row.totp_secret_sealed = None
        await change.record(RESTRICTIONS_CHANGED, change="totp_disabled")


# ---- client certificates ----------------------------------------------------------------


async def add_certificate(
    ctx: ServiceContext, key_id: str, pem: str, *, actor: str
) -> CertificateView:
    """Pin a client certificate (one PEM ``CERTIFICATE``, not expired) on the key."""
    try:
        info = parse_pem_certificate(pem)
    except ValueError as exc:  # the message says why and never holds key material
        raise ValidationFailed(f"pem: {exc}") from None
    now = utc_from_ts(ctx.clock.now())
    if info.not_after < now:
        raise ValidationFailed("pem: this certificate has expired")
    async with changing_key(ctx, key_id, actor=actor) as change:
        session = change.session
        existing = await session.execute(
            select(KeyCertificate.fingerprint_sha256).where(KeyCertificate.key_id == key_id)
        )
        fingerprints = set(existing.scalars())
        if info.fingerprint_sha256 in fingerprints:
            raise Conflict("this certificate is already registered on the key")
        if len(fingerprints) >= MAX_CERTIFICATES:
            raise ValidationFailed(f"a key holds at most {MAX_CERTIFICATES} certificates")
        cert = KeyCertificate(
            key_id=key_id,
            fingerprint_sha256=info.fingerprint_sha256,
            subject=info.subject[:1000],
            not_before=info.not_before,
            not_after=info.not_after,
            pem=pem.strip(),
            created_at=now,
        )
        session.add(cert)
        await change.record(
            RESTRICTIONS_CHANGED,
            change="certificate_added",
            fingerprint_sha256=info.fingerprint_sha256,
        )
    ctx.certificate_pinned(cert.pem)
    return CertificateView.of(cert)


async def list_certificates(ctx: ServiceContext, key_id: str) -> tuple[CertificateView, ...]:
    return (await get_key(ctx, key_id)).certificates


async def remove_certificate(
    ctx: ServiceContext, key_id: str, fingerprint: str, *, actor: str
) -> None:
    fingerprint = fingerprint.replace(":", "").lower()  # also accept "AB:CD:…" as openssl prints
    async with changing_key(ctx, key_id, actor=actor) as change:
        session = change.session
        cert = (
            await session.execute(
                select(KeyCertificate).where(
                    KeyCertificate.key_id == key_id,
                    KeyCertificate.fingerprint_sha256 == fingerprint,
                )
            )
        ).scalar_one_or_none()
        if cert is None:
            raise NotFound()
        await session.delete(cert)
        await change.record(
            RESTRICTIONS_CHANGED, change="certificate_removed", fingerprint_sha256=fingerprint
        )


async def all_certificate_pems(ctx: ServiceContext) -> list[str]:
    """Every registered certificate (the TLS server loads them at start-up)."""
    async with ctx.sessions() as session:
        return list((await session.execute(select(KeyCertificate.pem))).scalars())


# ---- request signing --------------------------------------------------------------------


async def set_signing_secret(ctx: ServiceContext, key_id: str, *, actor: str) -> str:
    """A new signing secret (shown once, sealed at rest); the key then requires signing.

    A previous secret stops working at once, like ``regenerate`` for the key secret.
    """
    secret = new_signing_secret()
    async with changing_key(ctx, key_id, actor=actor) as change:
        row = change.row
        replaced = row.signing_secret_sealed is not None
        row.signing_secret_sealed = ctx.envelope.seal(secret, context=f"signing:{row.id}")
        row.require_signature = True
        await change.record(
            RESTRICTIONS_CHANGED, change="signing_secret_set", replaced_previous=replaced
        )
    return secret


async def remove_signing_secret(ctx: ServiceContext, key_id: str, *, actor: str) -> None:
    async with changing_key(ctx, key_id, actor=actor) as change:
        row = change.row
        if row.signing_secret_sealed is None and not row.require_signature:
            return
        row.signing_secret_sealed = None
        row.require_signature = False
        await change.record(RESTRICTIONS_CHANGED, change="signing_secret_removed")
