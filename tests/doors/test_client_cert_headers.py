"""A client behind a trusted proxy cannot smuggle another client's certificate in a
certificate header the proxy passes through: only the one header
KEYGUARD_CLIENT_CERT_HEADER names is read, and without it none (CONTRACT §4).

The scenario: nginx terminates TLS, sets ``X-SSL-Client-Cert`` to the certificate the
client really presented, but does not strip ``Client-Cert``; the client writes the
victim's public certificate there. Run through every door that resolves the transport.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from door_harness import PROXY, Cert, Kit, Req, open_kit

pytestmark = pytest.mark.parametrize("door", ["middleware", "sessions", "gateway"])


@pytest.fixture(scope="module")
async def nginx_kit(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Kit]:
    """Every door configured with KEYGUARD_CLIENT_CERT_HEADER=x-ssl-client-cert."""
    async with open_kit(
        tmp_path_factory.mktemp("doors-nginx"), client_cert_header="X-SSL-Client-Cert"
    ) as opened:
        yield opened


def _client_cert(cert: Cert) -> dict[str, str]:
    return {"Client-Cert": ":" + base64.b64encode(cert.der).decode() + ":"}


def _nginx(cert: Cert) -> dict[str, str]:
    return {"X-SSL-Client-Cert": quote(cert.pem, safe=""), "X-SSL-Client-Verify": "SUCCESS"}


async def _victim_key(kit: Kit) -> tuple[dict[str, str], Cert, Cert]:
    key = await kit.key()
    victim, attacker = kit.cert("victim"), kit.cert("attacker")
    await kit.add_cert(key.id, victim)
    return {"Authorization": f"Bearer {key.key}"}, victim, attacker


async def test_without_a_configured_header_no_forwarded_certificate_is_believed(
    kit: Kit, door: str
) -> None:
    auth, victim, attacker = await _victim_key(kit)
    # The review's case: a stolen key, and the owner's (public) certificate in a header
    # the proxy passes through, from a trusted proxy's address.
    out = await kit.call(door, Req({**auth, **_client_cert(victim)}, peer=PROXY))
    assert (out.status, out.code) == (403, "client_certificate_required"), out.text
    smuggled = {**auth, **_client_cert(victim), **_nginx(attacker)}
    out = await kit.call(door, Req(smuggled, peer=PROXY))
    assert (out.status, out.code) == (403, "client_certificate_required"), out.text
    out = await kit.call(door, Req({**auth, **_nginx(victim)}, peer=PROXY))
    assert (out.status, out.code) == (403, "client_certificate_required"), out.text


async def test_with_a_configured_header_only_that_header_is_read(nginx_kit: Kit, door: str) -> None:
    kit = nginx_kit
    auth, victim, attacker = await _victim_key(kit)
    smuggled = {**auth, **_client_cert(victim), **_nginx(attacker)}
    out = await kit.call(door, Req(smuggled, peer=PROXY))
    assert (out.status, out.code) == (403, "client_certificate_invalid"), out.text
    # The client presented no certificate, so nginx sent no X-SSL-Client-Cert at all.
    out = await kit.call(door, Req({**auth, **_client_cert(victim)}, peer=PROXY))
    assert (out.status, out.code) == (403, "client_certificate_required"), out.text
    # The genuine client: the proxy's header is read and whatever else was sent ignored.
    genuine = {**auth, **_nginx(victim), "Client-Cert": ":bm90IGEgY2VydA==:"}
    out = await kit.call(door, Req(genuine, peer=PROXY))
    assert out.code is None, out.text
