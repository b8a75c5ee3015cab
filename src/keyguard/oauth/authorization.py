"""The authorization endpoint's rules (RFC 6749 §4.1.1, RFC 9700 §2.1, RFC 7636).

Checked in this order, so that no one is redirected anywhere unchecked: the client, then
the redirect URI (exact; any port on a loopback URI), and only then the rest, whose
errors go back to the app's redirect URI with ``state`` and ``iss`` (RFC 9207). PKCE
with S256 is required of every client; ``plain`` is refused.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

from keyguard.audit import service as audit
from keyguard.clock import utc_from_ts
from keyguard.oauth import redirects
from keyguard.oauth.clients import ClientRecord, load_client
from keyguard.oauth.models import OAuthCode
from keyguard.oauth.scopes import parse_scope, role_grants
from keyguard.oauth.server import CODE_TTL, OAuthContext, digest

CHALLENGE_RE = re.compile(r"[A-Za-z0-9\-_]{43}")  # base64url of a SHA-256, unpadded
MAX_STATE = 500


class AuthorizeFailed(Exception):
    """A request that must not be redirected (unknown client or redirect URI): shown to
    the person as a page, with the catalog key of its reason."""

    def __init__(self, message_key: str) -> None:
        super().__init__(message_key)
        self.message_key = message_key


@dataclass(frozen=True, slots=True)
class Redirect:
    """An answer sent back to the app, at its redirect URI."""

    location: str


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    client: ClientRecord
    redirect_uri: str
    state: str | None
    scopes: frozenset[str]
    code_challenge: str


def respond(ctx: OAuthContext, redirect_uri: str, params: Mapping[str, str | None]) -> Redirect:
    """``redirect_uri`` with ``params`` added to its query, plus ``iss`` (RFC 9207)."""
    parts = urlsplit(redirect_uri)
    values = {k: v for k, v in params.items() if v is not None}
    values["iss"] = ctx.oauth.issuer
    query = "&".join(filter(None, (parts.query, urlencode(values))))
    return Redirect(urlunsplit((parts.scheme, parts.netloc, parts.path, query, "")))


async def check_request(
    ctx: OAuthContext, params: Mapping[str, str]
) -> AuthorizationRequest | Redirect:
    """The request, checked; or the error to send to the app's redirect URI. Raises
    :class:`AuthorizeFailed` when there is no safe place to send it."""
    client = await load_client(ctx, params.get("client_id", ""))
    if client is None:
        raise AuthorizeFailed("oauth.error.unknown_client")
    uri = params.get("redirect_uri")
    if uri is None:
        # Allowed only when there is exactly one to use (RFC 6749 §3.1.2.3).
        if len(client.redirect_uris) != 1:
            raise AuthorizeFailed("oauth.error.redirect_uri")
        uri = client.redirect_uris[0]
    elif not redirects.matches(list(client.redirect_uris), uri):
        raise AuthorizeFailed("oauth.error.redirect_uri")
    state = params.get("state")
    if state is not None and len(state) > MAX_STATE:
        state = None  # not echoed back: the error says why

    def error(code: str, description: str) -> Redirect:
        return respond(ctx, uri, {"error": code, "error_description": description, "state": state})

    if params.get("state") is not None and state is None:
        return error("invalid_request", f"state is longer than {MAX_STATE} characters")
    if params.get("response_type") != "code":
        return error("unsupported_response_type", "only response_type=code is supported")
    challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
    if challenge is None or method is None:
        return error("invalid_request", "PKCE is required: code_challenge with method S256")
    if method != "S256":
        return error("invalid_request", "code_challenge_method must be S256")
    if not CHALLENGE_RE.fullmatch(challenge):
        return error("invalid_request", "code_challenge must be 43 base64url characters (S256)")
    asked = parse_scope(params.get("scope"))
    allowed = frozenset(client.scopes)
    if asked is not None and not asked <= allowed:
        return error("invalid_scope", "a requested scope is not one of the app's")
    scopes = allowed if asked is None else asked
    return AuthorizationRequest(client, uri, state, scopes, challenge)


def granted(request: AuthorizationRequest, role: str) -> frozenset[str]:
    """What the person's role lets them grant of what was asked."""
    client = request.client
    return request.scopes & role_grants(role, client.scopes, client.role_scopes)


async def issue_code(
    ctx: OAuthContext, request: AuthorizationRequest, *, account_id: str, scopes: frozenset[str]
) -> Redirect:
    code = secrets.token_urlsafe(32)
    now = utc_from_ts(ctx.clock.now())
    async with ctx.transaction() as db:
        db.add(
            OAuthCode(
                code_hash=digest(code),
                app_id=request.client.app_id,
                account_id=account_id,
                redirect_uri=request.redirect_uri,
                code_challenge=request.code_challenge,
                scopes=sorted(scopes),
                created_at=now,
                expires_at=now + timedelta(seconds=CODE_TTL),
                used_at=None,
                grant_id=None,
            )
        )
        # A person let an app act for them: the security event their project sees.
        await audit.record(
            db,
            at=now,
            actor=account_id,
            action="oauth.consent_given",
            target=request.client.app_id,
            project_id=request.client.project_id,
            data={"client_id": request.client.client_id, "scopes": sorted(scopes)},
        )
    return respond(ctx, request.redirect_uri, {"code": code, "state": request.state})


def denied(
    ctx: OAuthContext,
    request: AuthorizationRequest,
    why: str = "the person did not allow access",
) -> Redirect:
    return respond(
        ctx,
        request.redirect_uri,
        {"error": "access_denied", "error_description": why, "state": request.state},
    )
