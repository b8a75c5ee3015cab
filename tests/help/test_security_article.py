"""Help > Security (CONTRACT §12): public, every sentence from the catalogs (seed 001's
keys, every one of them, in both languages), code for this server's prefix and host."""

from __future__ import annotations

import html
import re
from pathlib import Path
from string import Formatter

import httpx
import pytest
from help_article import PATH, code_block, page

import keyguard
from keyguard.app import create_asgi
from keyguard.help.snippets import for_server
from keyguard.i18n import catalog
from keyguard.runtime import Runtime
from keyguard.settings import Settings

SEEDS = Path("/work/shared/seeds")
TEMPLATE = Path(keyguard.__file__).parent / "web" / "templates" / "help" / "security.html"
# Seed 001, the message keys of Apertur's own article (kept here: the tests do not
# depend on a file outside the repository).
SEED_KEYS = [
    "help.security.title",
    "help.security.intro",
    "help.security.apiKeyTitle",
    "help.security.apiKeyText",
    "help.security.apiKeyIpTitle",
    "help.security.apiKeyIpText",
    "help.security.apiKeyIpStep1",
    "help.security.apiKeyIpStep2",
    "help.security.apiKeyIpStep3",
    "help.security.apiKeyIpStep4",
    "help.security.apiKeyDomainTitle",
    "help.security.apiKeyDomainText",
    "help.security.apiKeyDomainStep1",
    "help.security.apiKeyDomainStep2",
    "help.security.apiKeyDomainStep3",
    "help.security.apiKeyDomainStep4",
    "help.security.apiKeyRotationTitle",
    "help.security.apiKeyRotationText",
    "help.common.important",
    "help.security.apiKeyWarning",
    "help.security.totpTitle",
    "help.security.totpText",
    "help.security.totpStep1",
    "help.security.totpStep2",
    "help.security.totpStep3",
    "help.security.totpStep4",
    "help.security.totpHeaderNote",
    "help.common.tip",
    "help.security.totpTip",
    "help.security.mtlsTitle",
    "help.security.mtlsText",
    "help.security.mtlsStep1",
    "help.security.mtlsStep2",
    "help.security.mtlsStep3",
    "help.security.mtlsStep4",
    "help.security.mtlsStep5",
    "help.security.passwordTitle",
    "help.security.passwordText",
    "help.security.passwordHashNote",
    "help.common.useCase",
    "help.security.passwordUseCase",
    "help.security.webhookSigTitle",
    "help.security.webhookSigText",
    "help.common.securityNote",
    "help.security.webhookSigWarning",
    "help.security.accountTitle",
    "help.security.accountText",
    "help.security.accountMfaTitle",
    "help.security.accountMfaText",
    "help.security.accountMfaStep1",
    "help.security.accountMfaStep2",
    "help.security.accountMfaStep3",
    "help.security.accountMfaStep4",
    "help.security.accountMfaStep5",
    "help.security.accountPasskeysTitle",
    "help.security.accountPasskeysText",
    "help.security.accountPasskeysStep1",
    "help.security.accountPasskeysStep2",
    "help.security.accountPasskeysStep3",
    "help.security.accountPasskeysStep4",
    "help.security.accountAlertsTitle",
    "help.security.accountAlertsText",
    "help.common.relatedArticles",
    "help.common.wasHelpful",
    "help.common.needMoreHelp",
]


def test_the_list_is_seed_001() -> None:
    seed = next(SEEDS.glob("001_*.txt"), None)
    if seed is None:
        pytest.skip("the seeds are not on this machine")
    keys = re.findall(r"help\.(?:security|common)\.[A-Za-z0-9]+", seed.read_text("utf-8"))
    assert sorted(set(keys)) == sorted(SEED_KEYS)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_every_seed_key_is_in_the_catalog(language: str) -> None:
    messages = catalog(language)
    missing = [key for key in SEED_KEYS if not messages.get(key, "").strip()]
    assert not missing, f"missing from {language}.json: {missing}"


def test_the_article_template_uses_every_seed_key() -> None:
    source = TEMPLATE.read_text("utf-8")
    unused = [key for key in SEED_KEYS if f'"{key}"' not in source]
    assert not unused, unused


def _literal_parts(message: str) -> list[str]:
    """The text of a message around its {fields}, as it reads on the page."""
    parts = [text for text, _, _, _ in Formatter().parse(message)]
    return [p.strip() for p in parts if len(p.strip()) > 3]


@pytest.mark.parametrize("language", ["en", "fr"])
async def test_every_help_message_is_on_the_page(client: httpx.AsyncClient, language: str) -> None:
    text = html.unescape(await page(client, language))
    messages = catalog(language)
    absent = [
        key
        for key, message in messages.items()
        if key.startswith("help.")
        and not all(part in text for part in _literal_parts(message) or [message])
    ]
    assert not absent, absent


async def test_the_article_is_public_with_the_pages_security_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(PATH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    # No inline script or style: everything comes from /static under that CSP.
    assert re.search(r"<script(?![^>]*\bsrc=)", response.text) is None
    assert " style=" not in response.text
    assert "<style" not in response.text
    # Anyone may read it: the navigation offers Help signed out too.
    assert '<a href="/help/security" aria-current="page">Help</a>' in response.text


async def test_headings_table_of_contents_and_copy_buttons(client: httpx.AsyncClient) -> None:
    body = await page(client)
    assert "<h1>Security</h1>" in body
    for title in (
        "TOTP for API Keys",
        "Client Certificates (mTLS)",
        "Webhook Signature Verification",
    ):
        assert f">{title}</h2>" in body
    anchors = re.findall(r'<a href="#([a-z0-9-]+)">', body)
    assert len(anchors) >= 10
    for anchor in anchors:
        assert f'id="{anchor}"' in body, anchor
    copies = re.findall(r'<button type="button" class="copy[^"]*" data-copy="([a-z0-9-]+)"', body)
    assert {"webhook-python", "webhook-node", "snippet-totp", "snippet-mtls"} <= set(copies)
    for target in copies:
        assert f'<code id="{target}">' in body
    assert 'data-copied="Copied"' in body


async def test_the_snippets_use_this_servers_prefix_and_host(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    assert settings.header_prefix == "APTR"
    body = await page(client)
    host = settings.public_base_url
    totp = code_block(body, "snippet-totp")
    assert f"curl -X POST {host}/v1/sessions" in totp
    assert '-H "X-APTR-TOTP: 123456"' in totp
    assert '-H "Authorization: Bearer aptr_live_xxxx"' in totp
    assert "--cert client.crt" in code_block(body, "snippet-mtls")
    signing = code_block(body, "snippet-signing")
    assert '-H "X-APTR-Signature: sha256=$SIGNATURE"' in signing
    assert '-H "X-APTR-Timestamp: $TIMESTAMP"' in signing
    assert '"$METHOD$PATH_WITH_QUERY$BODY$TIMESTAMP"' in signing
    upload = code_block(body, "snippet-session-upload")
    assert '-H "X-APTR-Session-Password: claim-4521-pin"' in upload
    assert "<code>X-APTR-Signature</code>" in body  # the body-only signature, in prose
    assert "Keyguard-" not in body  # no other prefix anywhere


async def test_another_server_gets_its_own_prefix_and_address(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        header_prefix="Acme",
        key_prefix="acme",
        public_url="https://keys.example.ca/",
    )
    runtime = await Runtime.start(settings)
    try:
        transport = httpx.ASGITransport(app=create_asgi(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            body = await page(c)
    finally:
        await runtime.close()
    totp = code_block(body, "snippet-totp")
    assert "curl -X POST https://keys.example.ca/v1/sessions" in totp
    assert '-H "X-Acme-TOTP: 123456"' in totp
    assert "acme_live_xxxx" in totp
    assert "APTR" not in body
    assert "testserver" not in body


def test_the_snippets_are_built_for_the_server_given() -> None:
    code = for_server("https://kg.example:9443", "Corp", "corp")
    assert code.mtls.startswith(
        "# cURL with client certificate\ncurl -X POST https://kg.example:9443/"
    )
    assert '"X-Corp-Session-Password: claim-4521-pin"' in code.session_upload
    assert "{" + "P}" not in code.signing
    assert "{URL}" not in code.signing_rule


async def test_a_french_browser_reads_the_article_in_french(client: httpx.AsyncClient) -> None:
    body = await page(client, "fr-CA,fr;q=0.9,en;q=0.5")
    assert '<html lang="fr">' in body
    assert "<h1>Sécurité</h1>" in body
    for title in (
        "TOTP pour les clés d\u2019API",
        "Certificats clients (mTLS)",
        "Vérification de la signature des webhooks",
        "Sécurité du compte",
    ):
        assert f">{title}</h2>" in body
    assert ">Sur cette page</h2>" in body
    assert ">Aide</a>" in body
    assert 'data-copied="Copié"' in body
    # Code is code: the same in both languages.
    english = await page(client, "en")
    for block in ("webhook-python", "webhook-node", "snippet-totp"):
        assert code_block(body, block) == code_block(english, block)
