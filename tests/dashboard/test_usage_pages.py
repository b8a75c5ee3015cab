"""Usage and security, and the audit log: the charts are the counted figures, a key of
another project is not shown through this one, and the chain's verdict and checkpoint
are where they belong."""

from __future__ import annotations

import re

from account_pages import NEW_PASSWORD, csrf_of, join, sign_in
from dashboard.test_key_pages import create, key_form, keys_url, poll, post
from keyguard.web.csrf import FIELD

USAGE = "/projects/{}/usage"
AUDIT = "/projects/{}/audit"


async def test_requests_and_refusals_are_charted_per_project_and_per_key(
    owner, project_id, runtime
) -> None:
    key_id, key = await create(owner, project_id, scopes="sessions:write")
    for _ in range(3):
        assert (await poll(owner, key)).status_code == 201
    url = f"{keys_url(project_id)}/{key_id}"
    await post(owner, url, url, **key_form(scopes="sessions:write", ip_allowlist="198.51.100.1"))
    for _ in range(2):
        assert (await poll(owner, key)).status_code == 403
    await runtime.usage.flush()
    page = await owner.get(USAGE.format(project_id))
    assert page.status_code == 200
    assert '<svg class="chart"' in page.text
    assert "5 requests" in page.text
    assert "Allowed: 3" in page.text
    assert "Refused: 2" in page.text
    assert '<code>ip_not_allowed</code></td><td data-label="Requests">2</td>' in page.text
    assert "from 203.0.113.7" in page.text  # last used, and from where
    assert "<script" not in page.text.split("</head>")[1]  # charts need no script
    one = await owner.get(USAGE.format(project_id) + f"?key={key_id}&granularity=day")
    assert one.status_code == 200
    assert "Usage of Server" in one.text
    assert "5 requests" in one.text


async def test_another_projects_key_is_not_shown_through_this_project(
    owner, project_id, root_headers
) -> None:
    made = await owner.post("/v1/projects", json={"name": "Other"}, headers=root_headers)
    other = made.json()["id"]
    theirs = await owner.post(
        f"/v1/projects/{other}/keys",
        json={"name": "t", "environment": "live"},
        headers=root_headers,
    )
    page = await owner.get(USAGE.format(project_id) + f"?key={theirs.json()['id']}")
    assert page.status_code == 404
    assert (await owner.get(USAGE.format(project_id) + "?key=nonsense")).status_code == 404


async def test_the_audit_log_filters_verifies_and_shows_the_checkpoint_to_administrators(
    owner, project_id, runtime, browser
) -> None:
    key_id, _ = await create(owner, project_id)
    page = await owner.get(AUDIT.format(project_id) + "?action=key.")
    assert page.status_code == 200
    assert "<code>key.created</code>" in page.text
    assert key_id in page.text
    assert "Not verified yet" in page.text
    # Verifying reads the whole installation's log: an administrator's POST, never a GET.
    assert (
        "The chain is intact" not in (await owner.get(AUDIT.format(project_id) + "?verify=1")).text
    )
    verified = await post(owner, AUDIT.format(project_id), AUDIT.format(project_id) + "/verify")
    assert verified.status_code == 303
    shown = await owner.get(verified.headers["location"])
    assert "the chain is intact" in shown.text
    assert re.search(r'<code id="checkpoint">[^<]+\n\d+\n', shown.text)  # origin, size
    nothing = await owner.get(AUDIT.format(project_id) + "?action=webhook.")
    assert "No event matches." in nothing.text
    await join(runtime, browser, project_id, owner, "viewer@example.com", "viewer")
    async with browser() as viewer:
        assert (await sign_in(viewer, "viewer@example.com", NEW_PASSWORD)).status_code == 303
        seen = await viewer.get(AUDIT.format(project_id))
        assert seen.status_code == 200
        assert "key.created" in seen.text
        assert "the chain is intact" in seen.text  # the administrator's verdict
        assert 'id="checkpoint"' not in seen.text  # the whole installation's size
        assert "/audit/verify" not in seen.text
        refused = await viewer.post(
            AUDIT.format(project_id) + "/verify", data={FIELD: csrf_of(seen.text)}
        )
        assert refused.status_code == 403
        assert (await viewer.get(USAGE.format(project_id))).status_code == 200
