"""Passkeys (WebAuthn, CONTRACT §9): add, list, rename and remove them, and sign in with
one and no password. The ceremony is py_webauthn's; this module holds the flows.

What an attacker can try, and what answers it:

- **Replaying an assertion or an attestation**: every challenge is made here, kept in the
  vault for ``CHALLENGE_SECONDS`` and taken once, so a second use finds nothing. An
  authenticator that counts must count up: a sign count that does not grow is refused
  (a cloned authenticator) and audited.
- **Phishing from another site**: the expected origin and RP ID come from the configured
  public URL, never from the request's Host header; an assertion a look-alike site
  collected names its own origin and is refused.
- **A challenge for one account used for another**: registration challenges are kept
  under the account they were issued to; a sign-in assertion's user handle must be the
  account the credential belongs to.
- **Flooding the vault with challenges**: anonymous sign-in options are rate limited per
  IP.
- **Guessing**: an assertion cannot be guessed, but failures still count against the IP
  like failed passwords, and each is audited.

Passkey sign-in requires user verification (a PIN or biometric on the authenticator), so
it is multi-factor by itself and does not ask for a TOTP code afterwards.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_client_data_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from keyguard.accounts import notices, signin
from keyguard.accounts.context import AccountContext
from keyguard.accounts.errors import PasskeyInvalid
from keyguard.accounts.models import Account, Passkey
from keyguard.accounts.sessions import Client
from keyguard.accounts.throttle import SignInThrottle, address_key
from keyguard.accounts.views import PasskeyView
from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.errors import Conflict, NotFound, RateLimited, ValidationFailed
from keyguard.i18n import translate
from keyguard.ids import new_id
from keyguard.settings import Settings

CHALLENGE_SECONDS = 120
NAME_MAX = 100
MAX_PER_ACCOUNT = 20
OPTIONS_PER_IP = (30, 60)  # anonymous sign-in ceremonies begun per minute


@dataclass(frozen=True, slots=True)
class RelyingParty:
    id: str  # the host of the public URL
    origin: str  # scheme://host[:port], as a browser writes it in clientDataJSON
    name: str


def relying_party(settings: Settings) -> RelyingParty | None:
    """The relying party the public URL defines, or None where passkeys cannot work
    (WebAuthn refuses IP addresses as RP IDs)."""
    url = urlsplit(settings.public_base_url)
    host = (url.hostname or "").lower()
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if not host:
        return None
    default_port = {"https": 443, "http": 80}.get(url.scheme)
    netloc = host if url.port in (None, default_port) else f"{host}:{url.port}"
    return RelyingParty(host, f"{url.scheme}://{netloc}", translate("app.name"))


def _party(ctx: AccountContext) -> RelyingParty:
    party = relying_party(ctx.settings)
    if party is None:
        raise PasskeyInvalid(translate("passkeys.unavailable"))
    return party


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > NAME_MAX or not name.isprintable():
        raise ValidationFailed(translate("passkeys.name_invalid", max=NAME_MAX), field="name")
    return name


async def list_passkeys(ctx: AccountContext, account_id: str) -> list[PasskeyView]:
    async with ctx.sessions() as db:
        rows = await db.execute(
            select(Passkey).where(Passkey.account_id == account_id).order_by(Passkey.created_at)
        )
        return [PasskeyView.of(row) for row in rows.scalars()]


# ---- adding one ---------------------------------------------------------------------


def _register_slot(account_id: str) -> str:
    return f"webauthn-register:{account_id}"


async def registration_options(ctx: AccountContext, account_id: str) -> str:
    """The creation options (JSON) for ``navigator.credentials.create``; the challenge is
    kept for this account only and replaces any earlier one."""
    party = _party(ctx)
    async with ctx.sessions() as db:
        account = await db.get(Account, account_id)
        if account is None:
            raise NotFound("No such account")
        existing = (
            (
                await db.execute(
                    select(Passkey.credential_id).where(Passkey.account_id == account_id)
                )
            )
            .scalars()
            .all()
        )
    if len(existing) >= MAX_PER_ACCOUNT:
        raise Conflict(translate("passkeys.too_many", max=MAX_PER_ACCOUNT))
    options = generate_registration_options(
        rp_id=party.id,
        rp_name=party.name,
        user_id=account.id.encode(),  # an opaque id, never the email
        user_name=account.email,
        user_display_name=account.email,
        timeout=CHALLENGE_SECONDS * 1000,
        # Discoverable, so sign-in needs no email; verified, so it is two factors in one.
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in existing
        ],
    )
    challenge = bytes_to_base64url(options.challenge)
    await ctx.state.vault.put(_register_slot(account_id), challenge, CHALLENGE_SECONDS)
    return options_to_json(options)


def _transports(credential: str) -> str:
    try:
        found = json.loads(credential).get("response", {}).get("transports", [])
    except (ValueError, AttributeError):
        return ""
    known = {t.value for t in AuthenticatorTransport}
    return ",".join(t for t in found if t in known)[:200] if isinstance(found, list) else ""


async def register(
    ctx: AccountContext, account_id: str, name: str, credential: str, *, actor: str
) -> PasskeyView:
    """Verify the authenticator's answer to this account's challenge and keep the key."""
    name = _clean_name(name)
    party = _party(ctx)
    challenge = await ctx.state.vault.take(_register_slot(account_id))
    if challenge is None:
        raise PasskeyInvalid(translate("passkeys.expired"))
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=party.id,
            expected_origin=party.origin,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError):
        raise PasskeyInvalid() from None
    now = utc_from_ts(ctx.clock.now())
    row = Passkey(
        id=new_id("pk"),
        account_id=account_id,
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        name=name,
        transports=_transports(credential),
        backed_up=verified.credential_backed_up,
        created_at=now,
        last_used_at=None,
    )
    try:
        async with ctx.transaction() as db:
            db.add(row)
            await db.flush()
            await audit.record(
                db,
                at=now,
                actor=actor,
                action="account.passkey_added",
                target=account_id,
                data={"passkey_id": row.id, "name": name},
            )
            await notices.credential_changed(db, ctx, account_id, "passkey_added")
    except IntegrityError:
        raise Conflict(translate("passkeys.already_registered")) from None
    return PasskeyView.of(row)


# ---- managing them ------------------------------------------------------------------


async def rename(
    ctx: AccountContext, account_id: str, passkey_id: str, name: str, *, actor: str
) -> None:
    name = _clean_name(name)
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        done = await db.execute(
            update(Passkey)
            .where(Passkey.id == passkey_id, Passkey.account_id == account_id)
            .values(name=name)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise NotFound("No such passkey")
        await audit.record(
            db,
            at=now,
            actor=actor,
            action="account.passkey_renamed",
            target=account_id,
            data={"passkey_id": passkey_id, "name": name},
        )


async def remove(ctx: AccountContext, account_id: str, passkey_id: str, *, actor: str) -> None:
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        row = await db.get(Passkey, passkey_id, with_for_update=True)
        if row is None or row.account_id != account_id:
            raise NotFound("No such passkey")
        await db.delete(row)
        await audit.record(
            db,
            at=now,
            actor=actor,
            action="account.passkey_removed",
            target=account_id,
            data={"passkey_id": passkey_id, "name": row.name},
        )
        await notices.credential_changed(db, ctx, account_id, "passkey_removed")


# ---- signing in with one ------------------------------------------------------------


def _sign_in_slot(challenge: str) -> str:
    return f"webauthn-signin:{challenge}"


async def sign_in_options(ctx: AccountContext, client: Client) -> str:
    """Request options (JSON) for ``navigator.credentials.get`` with no email asked: the
    authenticator offers the passkeys it holds for this site."""
    party = _party(ctx)
    limit, period = OPTIONS_PER_IP
    bucket = f"passkey-options:ip:{address_key(client.ip)}"
    begun = await ctx.state.rate_limiter.hit(bucket, limit, period)
    if not begun.allowed:
        raise RateLimited("Too many passkey sign-ins begun", retry_after=begun.reset_seconds)
    options = generate_authentication_options(
        rp_id=party.id,
        timeout=CHALLENGE_SECONDS * 1000,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    challenge = bytes_to_base64url(options.challenge)
    await ctx.state.vault.put(_sign_in_slot(challenge), "1", CHALLENGE_SECONDS)
    return options_to_json(options)


async def _failed(ctx: AccountContext, client: Client, account_id: str | None) -> PasskeyInvalid:
    await SignInThrottle(ctx.state, ctx.clock, what="passkey").failed_address(client.ip)
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        await audit.record(
            db,
            at=now,
            actor=account_id or "anonymous",
            action="account.sign_in_failed",
            target=account_id,
            data={"reason": "passkey", "ip": client.ip},
        )
    return PasskeyInvalid()


async def sign_in(
    ctx: AccountContext,
    credential: str,
    client: Client,
    *,
    device_cookie: str | None = None,
    replaces: str | None = None,
) -> signin.SignedInNow:
    party = _party(ctx)
    await SignInThrottle(ctx.state, ctx.clock, what="passkey").admit_address(client.ip)
    try:
        parsed = parse_authentication_credential_json(credential)
        client_data = parse_client_data_json(parsed.response.client_data_json)
        challenge = bytes_to_base64url(client_data.challenge)
    except (WebAuthnException, ValueError, KeyError, TypeError):
        raise await _failed(ctx, client, None) from None
    # Taken once: a replayed assertion finds no challenge.
    if await ctx.state.vault.take(_sign_in_slot(challenge)) is None:
        raise await _failed(ctx, client, None)
    async with ctx.sessions() as db:
        found = await db.execute(
            select(Passkey).where(Passkey.credential_id == bytes_to_base64url(parsed.raw_id))
        )
        row = found.scalar_one_or_none()
    if row is None:
        raise await _failed(ctx, client, None)
    handle = parsed.response.user_handle
    if handle is not None and handle != row.account_id.encode():
        raise await _failed(ctx, client, row.account_id)
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=client_data.challenge,
            expected_rp_id=party.id,
            expected_origin=party.origin,
            credential_public_key=row.public_key,
            credential_current_sign_count=row.sign_count,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError):
        raise await _failed(ctx, client, row.account_id) from None
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        # Compare-and-set: two assertions racing with the same count cannot both pass.
        moved = await db.execute(
            update(Passkey)
            .where(Passkey.id == row.id, Passkey.sign_count == row.sign_count)
            .values(sign_count=verified.new_sign_count, last_used_at=now)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            raise PasskeyInvalid()
    return await signin.finish(
        ctx,
        row.account_id,
        client,
        method="passkey",
        device_cookie=device_cookie,
        replaces=replaces,
    )
