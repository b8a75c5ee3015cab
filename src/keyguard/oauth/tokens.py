"""Access tokens: JWTs per RFC 9068, made and checked here and nowhere else.

A token is checked for everything RFC 9068 §4 and RFC 8725 ask: the header's ``typ`` is
``at+jwt`` and its ``alg`` the one we sign with (never ``none``, never an HMAC keyed
with a public key: joserfc is told the single algorithm it may accept, and the key set
holds EC keys only); the signature by a published key; ``iss``, ``aud`` exactly ours;
``exp`` in the future; and the claims we put in are all there. Anything else is one
``invalid_token``: which check failed is not the caller's business.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError

from keyguard.ids import new_id
from keyguard.oauth.errors import InvalidToken, TokenExpired
from keyguard.oauth.signing import ALG, SigningKeys
from keyguard.settings import Settings

TYP = "at+jwt"
# Tokens longer than this are not ours (ours are ~700 bytes); refused before parsing.
MAX_TOKEN_BYTES = 4096


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says."""

    jti: str
    subject: str | None  # the person's account id; None for client credentials
    client_id: str
    project_id: str
    scopes: frozenset[str]
    issued_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class Issued:
    token: str
    claims: AccessClaims


class AccessTokens:
    def __init__(self, keys: SigningKeys, settings: Callable[[], Settings], *, ttl: int) -> None:
        self.keys = keys
        # Read when used: ``serve --port 0`` learns its URL only once it listens.
        self._settings = settings
        self.ttl = ttl

    @property
    def issuer(self) -> str:
        return self._settings().public_base_url

    @property
    def audience(self) -> str:
        return self._settings().oauth_audience or self.issuer

    async def issue(
        self,
        *,
        now: float,
        client_id: str,
        project_id: str,
        scopes: frozenset[str],
        subject: str | None,
    ) -> Issued:
        key = await self.keys.signing_key()
        claims = AccessClaims(
            jti=new_id("at"),
            subject=subject,
            client_id=client_id,
            project_id=project_id,
            scopes=scopes,
            issued_at=int(now),
            expires_at=int(now) + self.ttl,
        )
        payload = {
            "iss": self.issuer,
            # RFC 9068 §2.2: without a resource owner, ``sub`` names the client.
            "sub": subject or client_id,
            "aud": self.audience,
            "exp": claims.expires_at,
            "iat": claims.issued_at,
            "nbf": claims.issued_at,
            "jti": claims.jti,
            "client_id": client_id,
            "scope": " ".join(sorted(scopes)),
            "project_id": project_id,
        }
        header = {"alg": ALG, "typ": TYP, "kid": key.kid}
        return Issued(jwt.encode(header, payload, key.private, algorithms=[ALG]), claims)

    async def verify(self, token: str, *, now: float) -> AccessClaims:
        """The token's claims, or ``invalid_token`` / ``token_expired``; no state read
        (revocation is the caller's next question)."""
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken()
        kid = _unverified_kid(token)
        keys = await self.keys.verification_keys(kid)
        try:
            decoded = jwt.decode(token, keys, algorithms=[ALG])
        except (JoseError, ValueError, TypeError):
            raise InvalidToken() from None
        if decoded.header.get("typ") != TYP or decoded.header.get("alg") != ALG:
            raise InvalidToken()
        return self._claims(decoded.claims, now)

    def _claims(self, c: dict[str, object], now: float) -> AccessClaims:
        text = {name: c.get(name) for name in ("iss", "aud", "sub", "jti", "client_id", "scope")}
        text["project_id"] = c.get("project_id")
        exp, iat, nbf = c.get("exp"), c.get("iat"), c.get("nbf", c.get("iat"))
        strings = {k: v for k, v in text.items() if isinstance(v, str)}
        if len(strings) != len(text) or not (_is_int(exp) and _is_int(iat) and _is_int(nbf)):
            raise InvalidToken()
        if strings["iss"] != self.issuer or strings["aud"] != self.audience:
            raise InvalidToken()
        assert isinstance(exp, int)
        assert isinstance(iat, int)
        assert isinstance(nbf, int)
        if nbf > now + 30:  # a little clock skew between instances
            raise InvalidToken()
        if exp <= now:
            raise TokenExpired()
        client_id, sub = strings["client_id"], strings["sub"]
        return AccessClaims(
            jti=strings["jti"],
            subject=None if sub == client_id else sub,
            client_id=client_id,
            project_id=strings["project_id"],
            scopes=frozenset(strings["scope"].split()),
            issued_at=iat,
            expires_at=exp,
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _unverified_kid(token: str) -> str | None:
    """The header's ``kid``, read only to pick a key (the signature is checked next)."""
    head = token.partition(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, TypeError):
        raise InvalidToken() from None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) and len(kid) <= 64 else None
