"""The language of the pages: the person's own setting (Account Settings > Security),
else the browser's ``Accept-Language``, else English; dates and numbers follow it."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import select

from account_pages import ADMIN_EMAIL, ADMIN_PASSWORD, csrf_of, sign_in, submit
from keyguard import i18n
from keyguard.accounts import notices
from keyguard.accounts.models import Account
from keyguard.accounts.passwords import hash_password
from keyguard.app import create_asgi
from keyguard.audit.models import AuditEvent
from keyguard.clock import utc_from_ts
from keyguard.ids import new_id
from keyguard.mail.models import MailMessage
from keyguard.runtime import Runtime
from keyguard.web.csrf import FIELD

FRENCH = {"accept-language": "fr-CA,fr;q=0.9,en;q=0.5"}
ENGLISH = {"accept-language": "en-CA,en;q=0.9"}
# A date and time in Canadian French: "5 mars 2025, 14 h 30 UTC".
FRENCH_DATETIME = re.compile(r"\d{1,2}\s\S+\s\d{4},\s\d{1,2}\sh\s\d{2}\sUTC")


@pytest.fixture
async def signed_in(client, admin) -> httpx.AsyncClient:
    assert (await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
    return client


async def language_of(runtime: Runtime, email: str) -> str | None:
    async with runtime.sessions() as db:
        found = await db.execute(select(Account.language).where(Account.email == email))
        return found.scalar_one()


def lang_attribute(html: str) -> str:
    found = re.search(r'<html lang="([a-z]+)">', html)
    assert found, html[:200]
    return found.group(1)


async def test_a_signed_out_page_follows_accept_language(client) -> None:
    french = await client.get("/login", headers=FRENCH)
    assert lang_attribute(french.text) == "fr"
    assert "<h1>Connexion</h1>" in french.text
    assert "Mot de passe" in french.text
    english = await client.get("/login", headers=ENGLISH)
    assert lang_attribute(english.text) == "en"
    assert "<h1>Sign in</h1>" in english.text
    # No header, or one we cannot read: English.
    assert lang_attribute((await client.get("/login")).text) == "en"
    assert (
        lang_attribute((await client.get("/login", headers={"accept-language": "fr;q=x"})).text)
        == "en"
    )
    # The language lasts one request: nothing stays behind for the next one.
    assert i18n.current() == "en"


async def test_a_refusal_from_a_service_reads_in_the_page_language(client, admin) -> None:
    shown = await client.get("/login", headers=FRENCH)
    failed = await client.post(
        "/login",
        data={FIELD: csrf_of(shown.text), "email": ADMIN_EMAIL, "password": "wrong password!"},
        headers=FRENCH,
    )
    assert failed.status_code == 401
    assert "Le courriel ou le mot de passe est incorrect." in failed.text


async def test_signed_in_pages_follow_the_browser_until_a_language_is_chosen(
    signed_in, runtime
) -> None:
    page = await signed_in.get("/account/security", headers=FRENCH)
    assert lang_attribute(page.text) == "fr"
    assert "Paramètres du compte &gt; Sécurité" in page.text
    assert "Ajouter une clé d\u2019accès" in page.text  # the typographic apostrophe
    # The form offers the three choices, "browser default" selected.
    assert re.search(r'<option value="" selected>Langue du navigateur</option>', page.text)
    sessions = await signed_in.get("/account/sessions", headers=FRENCH)
    assert FRENCH_DATETIME.search(sessions.text), sessions.text
    english = await signed_in.get("/account/sessions", headers=ENGLISH)
    assert re.search(r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2}\s[AP]M\sUTC", english.text)
    assert await language_of(runtime, ADMIN_EMAIL) is None


async def test_the_persons_setting_wins_over_the_browser(signed_in, runtime) -> None:
    saved = await submit(signed_in, "/account/security", "/account/language", {"language": "fr"})
    assert saved.status_code == 303
    assert saved.headers["location"] == "/account/security?flash=language_changed"
    assert await language_of(runtime, ADMIN_EMAIL) == "fr"

    page = await signed_in.get(saved.headers["location"], headers=ENGLISH)
    assert lang_attribute(page.text) == "fr"
    assert "Votre choix de langue a été enregistré." in page.text
    assert '<option value="fr" lang="fr" selected>Français</option>' in page.text
    # A service's message shown on a page follows the setting too.
    password = await signed_in.get("/account/password", headers=ENGLISH)
    wrong = await signed_in.post(
        "/account/password",
        data={FIELD: csrf_of(password.text), "current": "not it at all", "new": "x" * 20},
        headers=ENGLISH,
    )
    assert wrong.status_code == 422
    assert "Le mot de passe actuel est incorrect." in wrong.text

    # English chosen: English even for a French browser.
    await submit(signed_in, "/account/security", "/account/language", {"language": "en"})
    page = await signed_in.get("/account/security", headers=FRENCH)
    assert lang_attribute(page.text) == "en"
    assert "<h1>Security</h1>" in page.text

    # Back to "browser default": the browser decides again.
    await submit(signed_in, "/account/security", "/account/language", {"language": ""})
    assert await language_of(runtime, ADMIN_EMAIL) is None
    page = await signed_in.get("/account/security", headers=FRENCH)
    assert lang_attribute(page.text) == "fr"

    async with runtime.sessions() as db:
        changes = (
            await db.execute(
                select(AuditEvent.data)
                .where(AuditEvent.action == "account.language_changed")
                .order_by(AuditEvent.seq)
            )
        ).scalars()
        assert [(c["from"], c["to"]) for c in changes] == [
            (None, "fr"),
            ("fr", "en"),
            ("en", None),
        ]


async def test_mail_about_a_change_uses_the_persons_language(signed_in, runtime) -> None:
    await submit(signed_in, "/account/security", "/account/language", {"language": "fr"})
    # A notice queued by the person's own change reads in their language.
    async with runtime.transaction() as db:
        row = (await db.execute(select(Account).where(Account.email == ADMIN_EMAIL))).scalar_one()
        await notices.credential_changed(db, runtime, row.id, "password_changed")
    async with runtime.sessions() as db:
        subjects = (
            (
                await db.execute(
                    select(MailMessage.subject).where(MailMessage.kind == "password_changed")
                )
            )
            .scalars()
            .all()
        )
    assert subjects == ["Le mot de passe de votre compte Keyguard a été changé"]


async def test_an_unknown_language_is_refused_beside_the_field(signed_in, runtime) -> None:
    refused = await submit(signed_in, "/account/security", "/account/language", {"language": "de"})
    assert refused.status_code == 422
    assert 'id="e-language"' in refused.text
    assert "Choose one of the languages offered." in refused.text
    assert await language_of(runtime, ADMIN_EMAIL) is None


async def test_the_setting_needs_the_csrf_token(signed_in, runtime) -> None:
    await signed_in.get("/account/security")
    refused = await signed_in.post("/account/language", data={"language": "fr"})
    assert refused.status_code == 403
    forged = await signed_in.post("/account/language", data={"language": "fr", FIELD: "x" * 40})
    assert forged.status_code == 403
    assert await language_of(runtime, ADMIN_EMAIL) is None


async def test_signed_out_nobody_changes_a_language(client, admin, runtime) -> None:
    shown = await client.get("/login")
    answer = await client.post(
        "/account/language", data={FIELD: csrf_of(shown.text), "language": "fr"}
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")
    assert await language_of(runtime, ADMIN_EMAIL) is None


@asynccontextmanager
async def another_person(runtime: Runtime, email: str):
    async with runtime.transaction() as db:
        db.add(
            Account(
                id=new_id("acct"),
                email=email,
                password_hash=await hash_password("another long phrase"),
                created_at=utc_from_ts(runtime.clock.now()),
            )
        )
    transport = httpx.ASGITransport(app=create_asgi(runtime), client=("198.51.100.30", 1))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as other:
        assert (await sign_in(other, email, "another long phrase")).status_code == 303
        yield other


async def test_a_person_changes_only_their_own_language(signed_in, admin, runtime) -> None:
    """A viewer of the admin's project, signed in, cannot reach anyone else's setting:
    the form has no account to name, and a forged field is ignored."""
    async with another_person(runtime, "viewer@example.com") as viewer:
        fields = {"language": "fr", "account_id": admin.account.id, "email": ADMIN_EMAIL}
        changed = await submit(viewer, "/account/security", "/account/language", fields)
        assert changed.status_code == 303
        assert await language_of(runtime, "viewer@example.com") == "fr"
        assert await language_of(runtime, ADMIN_EMAIL) is None
        # Each sees their own: the admin's pages stay English, the viewer's are French.
        assert lang_attribute((await signed_in.get("/account/security")).text) == "en"
        assert lang_attribute((await viewer.get("/account/security")).text) == "fr"
        # The admin's session token cannot be borrowed: the viewer's CSRF token is bound
        # to the viewer's session.
        token = csrf_of((await viewer.get("/account/security")).text)
        stolen = await signed_in.post("/account/language", data={FIELD: token, "language": "fr"})
        assert stolen.status_code == 403
        assert await language_of(runtime, ADMIN_EMAIL) is None
