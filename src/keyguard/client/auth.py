"""``httpx.Auth`` flows for Keyguard-protected APIs: signed requests and TOTP.

Both plug into any ``httpx.Client`` / ``httpx.AsyncClient``::

    client = httpx.Client(auth=SignedRequestAuth("kg_live_abc…", signing_secret))
    client = httpx.Client(auth=TotpAuth(totp_secret, api_key="kg_live_…"))

With ``KEYGUARD_HEADER_PREFIX=APTR`` on the server, pass ``header_prefix="APTR"``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncGenerator, Generator

import anyio
import httpx

from keyguard.clock import Clock, SystemClock
from keyguard.crypto.request_signing import compute_signature
from keyguard.crypto.totp import DEFAULT_DIGITS, DEFAULT_STEP, totp_code

__all__ = ["SignedRequestAuth", "TotpAuth"]

# Module-level so tests can stand in a fake clock's ``advance``.
_sleep = time.sleep
_async_sleep = anyio.sleep


def _check_prefix(prefix: str) -> str:
    if not prefix or not all(c.isascii() and (c.isalnum() or c == "-") for c in prefix):
        raise ValueError("header prefix must be ASCII letters, digits or '-'")
    return prefix


class SignedRequestAuth(httpx.Auth):
    """Sign each request (CONTRACT §4); the signing secret never leaves this process.

    Sends ``X-API-Key: <key id>``, ``X-{P}-Timestamp`` (Unix seconds) and
    ``X-{P}-Signature: sha256=…`` over the method, the request target exactly as sent
    (``url.raw_path``, query included, percent-encoding untouched) and the body bytes.
    """

    # The signature covers the body, so httpx must read a streaming body first.
    requires_request_body = True

    def __init__(
        self,
        key_id: str,
        signing_secret: str,
        header_prefix: str = "Keyguard",
        clock: Clock | None = None,
    ) -> None:
        self._key_id = key_id
        self._secret = signing_secret
        self._prefix = _check_prefix(header_prefix)
        self._clock: Clock = clock or SystemClock()

    def __repr__(self) -> str:  # never show the secret
        return f"SignedRequestAuth(key_id={self._key_id!r}, header_prefix={self._prefix!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        timestamp = str(int(self._clock.now()))
        path_with_query = request.url.raw_path.decode("ascii")
        signature = compute_signature(
            self._secret, request.method, path_with_query, request.content, timestamp
        )
        request.headers["X-API-Key"] = self._key_id
        request.headers[f"X-{self._prefix}-Timestamp"] = timestamp
        request.headers[f"X-{self._prefix}-Signature"] = signature
        yield request


class TotpAuth(httpx.Auth):
    """Add ``X-{P}-TOTP`` with the current code, and ``Authorization: Bearer`` if given.

    The server accepts each code once and tolerates one step of drift, so a second
    request within the same 30 s step sends the next step's code, and a third waits for
    the step to roll over (``time.sleep`` / ``anyio.sleep``). High request rates and
    per-request TOTP do not mix; that is the point of TOTP.
    """

    def __init__(
        self,
        secret: str,
        header_prefix: str = "Keyguard",
        *,
        api_key: str | None = None,
        clock: Clock | None = None,
        step: int = DEFAULT_STEP,
        digits: int = DEFAULT_DIGITS,
    ) -> None:
        self._secret = secret
        self._prefix = _check_prefix(header_prefix)
        self._api_key = api_key
        self._clock: Clock = clock or SystemClock()
        self._step = step
        self._digits = digits
        self._last_counter = -1
        self._lock = threading.Lock()
        totp_code(secret, 0, step=step, digits=digits)  # fail fast on a bad secret

    def __repr__(self) -> str:
        return f"TotpAuth(header_prefix={self._prefix!r})"

    def _next_code(self) -> tuple[str | None, float]:
        """(code, 0) when one is free now; (None, seconds to wait) otherwise."""
        with self._lock:
            now = self._clock.now()
            current = int(now // self._step)
            counter = max(current, self._last_counter + 1)
            if counter > current + 1:  # beyond the server's +1 step tolerance
                return None, (current + 1) * self._step - now
            self._last_counter = counter
        code = totp_code(self._secret, counter * self._step, step=self._step, digits=self._digits)
        return code, 0.0

    def _apply(self, request: httpx.Request, code: str) -> httpx.Request:
        request.headers[f"X-{self._prefix}-TOTP"] = code
        if self._api_key is not None:
            request.headers["Authorization"] = f"Bearer {self._api_key}"
        return request

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # httpx.Client runs this through Auth.sync_auth_flow; AsyncClient uses the
        # override below so that waiting for the next step never blocks the event loop.
        code, wait = self._next_code()
        while code is None:
            _sleep(wait)
            code, wait = self._next_code()
        yield self._apply(request, code)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        code, wait = self._next_code()
        while code is None:
            await _async_sleep(wait)
            code, wait = self._next_code()
        yield self._apply(request, code)
