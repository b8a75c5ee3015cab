"""Creating a project from the Projects page: its owner is the person, its webhook secret
shown once, and a bad key prefix refused next to its field."""

from __future__ import annotations

import re

from account_pages import csrf_of, once_of
from keyguard.web.csrf import FIELD


async def test_a_person_creates_a_project_and_owns_it(owner) -> None:
    page = await owner.get("/projects")
    assert "Create a project" in page.text
    token = csrf_of(page.text)
    bad = await owner.post(
        "/projects", data={FIELD: token, **once_of(page.text), "name": "Shop", "key_prefix": "Bad!"}
    )
    assert bad.status_code == 422
    assert 'id="e-key_prefix"' in bad.text
    again = await owner.get("/projects")
    made = await owner.post(
        "/projects",
        data={FIELD: token, **once_of(again.text), "name": "Shop", "key_prefix": "shop"},
    )
    assert made.status_code == 201
    secret = re.search(r'<code id="webhook-secret">([^<]+)</code>', made.text)
    assert secret
    link = re.search(r'href="(/projects/(proj_[A-Za-z0-9]+)/settings/api-keys)"', made.text)
    assert link
    keys = await owner.get(link.group(1))
    assert keys.status_code == 200
    assert "Shop" in keys.text
    listed = await owner.get("/projects")
    assert "Shop" in listed.text
    assert secret.group(1) not in listed.text
    assert "Owner" in listed.text


async def test_without_a_name_nothing_is_created(owner) -> None:
    page = await owner.get("/projects")
    refused = await owner.post(
        "/projects", data={FIELD: csrf_of(page.text), **once_of(page.text), "name": ""}
    )
    assert refused.status_code == 422
    assert 'id="e-name"' in refused.text
