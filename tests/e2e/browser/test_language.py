"""The French interface in a real browser: a browser that prefers French gets French
pages, and a person who chooses Français in Account Settings > Security keeps French
whatever their browser says. Screenshots at laptop and phone widths (artefacts/)."""

from __future__ import annotations

import re

import pytest
from keyguard_browser import ADMIN_EMAIL, ADMIN_PASSWORD, Visit
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

SECURITY = re.compile(r"^https://localhost:\d+/account/security(\?.*)?$")


def sign_in(visit: Visit, *, heading: str, email: str, password: str, submit: str) -> None:
    visit.goto("/login")
    expect(visit.page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    visit.shot("sign-in")
    visit.page.get_by_label(email, exact=True).fill(ADMIN_EMAIL)
    visit.page.get_by_label(password, exact=True).fill(ADMIN_PASSWORD)
    visit.submit(visit.page.get_by_role("button", name=submit, exact=True))
    expect(visit.page).to_have_url(SECURITY)


def test_a_browser_that_prefers_french_gets_french_pages(open_page) -> None:
    visit = open_page(locale="fr-CA")
    sign_in(
        visit, heading="Connexion", email="Courriel", password="Mot de passe", submit="Se connecter"
    )
    expect(visit.page.locator("html")).to_have_attribute("lang", "fr")
    expect(visit.page.get_by_role("heading", name="Sécurité", exact=True)).to_be_visible()
    expect(visit.page.get_by_text("Paramètres du compte > Sécurité")).to_be_visible()
    expect(visit.page.get_by_role("button", name="Ajouter une clé d\u2019accès")).to_be_visible()
    expect(visit.page.get_by_label("Langue des pages", exact=True)).to_have_value("")
    visit.shot("security-french")
    visit.goto("/account/sessions")
    expect(visit.page.get_by_role("heading", name="Sessions actives", exact=True)).to_be_visible()
    # Dates in Canadian French: "5 mars 2026, 14 h 30 UTC".
    expect(visit.page.get_by_role("table")).to_contain_text(
        re.compile(r"\d{4}, \d{1,2}\sh\s\d{2}\sUTC")
    )
    visit.shot("sessions-french")


def test_choosing_francais_keeps_french_for_an_english_browser(open_page) -> None:
    visit = open_page(locale="en-CA")
    sign_in(visit, heading="Sign in", email="Email", password="Password", submit="Sign in")
    expect(visit.page.locator("html")).to_have_attribute("lang", "en")
    visit.shot("security-english")
    visit.page.get_by_label("Page language", exact=True).select_option(label="Français")
    visit.submit(visit.page.get_by_role("button", name="Save language", exact=True))
    expect(visit.page.locator("html")).to_have_attribute("lang", "fr")
    expect(visit.page.get_by_role("status")).to_have_text("Votre choix de langue a été enregistré.")
    expect(visit.page.get_by_role("heading", name="Sécurité", exact=True)).to_be_visible()
    visit.shot("chose-french")
    # Back to the browser's language.
    visit.page.get_by_label("Langue des pages", exact=True).select_option(
        label="Langue du navigateur"
    )
    visit.submit(visit.page.get_by_role("button", name="Enregistrer la langue", exact=True))
    expect(visit.page.locator("html")).to_have_attribute("lang", "en")
    expect(visit.page.get_by_role("status")).to_have_text("Your language setting was saved.")
    visit.shot("back-to-browser-default")
