"""Webhooks in the dashboard, in-process: endpoints added, edited, disabled and deleted
through the webhook services (the SSRF guard's refusal next to the URL field), the
signing secret shown once in the response that made it, the delivery log with every
attempt (the receiver's answer escaped) and redelivery; a viewer sees but changes
nothing, another project's endpoint or delivery is a 404, a form without its CSRF
token is refused."""

from __future__ import annotations

import hashlib
import hmac
import html
import re

import httpx
import pytest
from sqlalchemy import func, select

from account_pages import NEW_PASSWORD, csrf_of, join, once_of, sign_in
from helpers import counted_queries
from keyguard.audit.models import AuditEvent
from keyguard.clock import FrozenClock
from keyguard.errors import KeyguardError
from keyguard.runtime import Runtime
from keyguard.web.csrf import FIELD
from keyguard.webhooks import endpoints
from keyguard.webhooks.models import WebhookEndpoint
from keyguard.webhooks.worker import DeliveryWorker
from webhook_fixtures import dns, receiver, runtime, settings, worker
from webhook_helpers import Receiver, Reply, add_endpoint, create_project_key

__all__ = ["dns", "receiver", "runtime", "settings", "worker"]  # loopback receivers allowed

SECRET = re.compile(r'<code id="webhook-secret">(whsec_[^<]+)</code>')
HOSTILE = b'<script>alert("owned")</script><img src=x onerror=alert(1)>'


def room(project_id: str) -> str:
    return f"/projects/{project_id}/webhooks"


def endpoint_url(project_id: str, endpoint_id: str) -> str:
    return f"{room(project_id)}/{endpoint_id}"


Fields = dict[str, str | list[str]]


async def post(client: httpx.AsyncClient, page: str, action: str, fields: Fields) -> httpx.Response:
    """GET ``page`` for its CSRF token, then POST ``fields`` to ``action`` (a list for
    the repeated ``events`` checkboxes)."""
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    return await client.post(
        action, data={FIELD: csrf_of(shown.text), **once_of(shown.text), **fields}
    )


async def add(
    client: httpx.AsyncClient, project_id: str, url: str, *events: str, description: str = ""
) -> httpx.Response:
    fields: Fields = {"url": url, "description": description, "events": list(events)}
    return await post(client, room(project_id), room(project_id), fields)


async def added(client: httpx.AsyncClient, project_id: str, url: str, *events: str) -> str:
    made = await add(client, project_id, url, *(events or ("*",)))
    assert made.status_code == 303, made.text
    found = re.fullmatch(
        rf"{room(project_id)}/(whep_\w+)\?flash=webhook_added", made.headers["location"]
    )
    assert found, made.headers["location"]
    return found.group(1)


async def stored(runtime: Runtime) -> list[WebhookEndpoint]:
    async with runtime.sessions() as db:
        return list((await db.execute(select(WebhookEndpoint))).scalars())


async def audit_count(runtime: Runtime, target: str) -> int:
    async with runtime.sessions() as db:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.target == target)
        return int((await db.execute(query)).scalar_one())


async def test_the_room_is_in_the_project_nav_and_says_what_to_do_first(owner, project_id) -> None:
    keys = await owner.get(f"/projects/{project_id}/settings/api-keys")
    assert f'href="{room(project_id)}"' in keys.text
    page = await owner.get(room(project_id))
    assert page.status_code == 200
    assert "<h1>Webhooks</h1>" in page.text
    assert f'href="{room(project_id)}" aria-current="page"' in page.text
    assert "No endpoints yet." in page.text
    assert "Add one below" in page.text
    assert "No deliveries yet." in page.text
    assert 'value="key.created"' in page.text
    assert 'value="*"' in page.text
    assert f'href="/projects/{project_id}/webhook-secret/rotate"' in page.text


async def test_an_endpoint_is_added_edited_disabled_enabled_and_deleted(
    owner, project_id, runtime
) -> None:
    made = await add(
        owner,
        project_id,
        "https://hooks.example.com/in",
        "key.created",
        "key.revoked",
        description="Billing server",
    )
    assert made.status_code == 303
    endpoint_id = made.headers["location"].split("/")[-1].split("?")[0]
    url = endpoint_url(project_id, endpoint_id)
    page = await owner.get(made.headers["location"])
    assert page.status_code == 200
    assert "Endpoint added." in page.text
    assert "<h1>Billing server</h1>" in page.text
    assert "https://hooks.example.com/in" in page.text
    assert 'value="key.created" checked' in page.text
    assert 'value="key.rotated" checked' not in page.text
    listing = await owner.get(room(project_id))
    assert f'href="{url}"' in listing.text
    assert "No endpoints yet." not in listing.text

    before = await audit_count(runtime, endpoint_id)
    saved = await post(owner, url, url, {"events": ["*"], "description": "Everything"})
    assert (saved.status_code, saved.headers["location"]) == (303, f"{url}?flash=webhook_saved")
    again = await post(owner, url, url, {"events": ["*"], "description": "Everything"})
    assert again.headers["location"] == f"{url}?flash=webhook_unchanged"
    assert await audit_count(runtime, endpoint_id) == before + 1  # the untouched save: none
    [row] = await stored(runtime)
    assert (row.events, row.description) == (["*"], "Everything")

    off = await post(owner, url, f"{url}/disable", {})
    assert off.headers["location"] == f"{url}?flash=webhook_disabled"
    page = await owner.get(url)
    assert "Disabled" in page.text
    assert "(by a person)" in page.text
    assert ">Enable<" in page.text
    on = await post(owner, url, f"{url}/enable", {})
    assert on.headers["location"] == f"{url}?flash=webhook_enabled"
    assert (await endpoints.get_endpoint(runtime, project_id, endpoint_id)).enabled

    confirm = await owner.get(f"{url}/delete")
    assert confirm.status_code == 200
    assert "cannot be undone" in confirm.text
    gone = await post(owner, f"{url}/delete", f"{url}/delete", {})
    assert gone.headers["location"] == f"{room(project_id)}?flash=webhook_deleted"
    assert (await owner.get(url)).status_code == 404
    assert await endpoints.list_endpoints(runtime, project_id) == []


REFUSED = [  # private, metadata, plain http to a public address, credentials in the URL
    "https://10.0.0.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "http://8.8.8.8/hook",
    "https://user:pw@hooks.example.com/",
]


async def test_a_url_the_service_refuses_is_shown_next_to_the_field_and_nothing_is_made(
    owner, project_id, runtime
) -> None:
    for url in REFUSED:
        with pytest.raises(KeyguardError) as said:  # what the service itself answers
            await endpoints.check_webhook_url(runtime, url)
        message = html.escape(said.value.detail or said.value.title)
        refused = await add(owner, project_id, url, "*")
        assert refused.status_code == 422, url
        error = re.search(r'<p class="error" id="e-url">([^<]+)</p>', refused.text)
        assert error, url
        assert error.group(1) == message, url
        assert 'id="f-url"' in refused.text
        assert 'aria-invalid="true"' in refused.text
        assert f'value="{url}"' in refused.text  # what was typed is kept
    # The events: none chosen, or one the service does not know, next to the checkboxes.
    none = await add(owner, project_id, "https://hooks.example.com/in")
    assert none.status_code == 422
    assert 'id="e-events"' in none.text
    unknown = await add(owner, project_id, "https://hooks.example.com/in", "key.exploded")
    assert unknown.status_code == 422
    assert re.search(r'id="e-events">[^<]*unknown event types: key.exploded', unknown.text)
    assert await stored(runtime) == []


async def test_a_form_without_its_csrf_token_is_refused(owner, project_id, runtime, admin) -> None:
    endpoint_id = await added(owner, project_id, "https://hooks.example.com/in")
    url = endpoint_url(project_id, endpoint_id)
    forged = [
        (room(project_id), {"url": "https://evil.example.com/", "events": "*"}),
        (url, {"events": "key.created", "description": "x"}),
        (f"{url}/disable", {}),
        (f"{url}/delete", {}),
        (f"/projects/{project_id}/webhook-secret/rotate", {"overlap": "0"}),
    ]
    for action, fields in forged:
        assert (await owner.post(action, data=fields)).status_code == 403, action
        wrong = await owner.post(action, data={FIELD: "forged", **fields})
        assert wrong.status_code == 403, action
    [row] = await stored(runtime)
    assert (row.enabled, row.events, row.deleted_at) == (True, ["*"], None)


async def test_the_secret_is_shown_once_in_the_response_that_made_it(
    owner, project_id, runtime, receiver: Receiver, worker: DeliveryWorker, root_headers
) -> None:
    rotate = f"/projects/{project_id}/webhook-secret/rotate"
    confirm = await owner.get(rotate)
    assert confirm.status_code == 200
    assert "both signatures" in confirm.text
    made = await post(owner, rotate, rotate, {"overlap": "0"})
    assert made.status_code == 201
    assert made.headers["cache-control"] == "no-store"
    found = SECRET.search(made.text)
    assert found
    secret = found.group(1)
    assert 'data-copy="webhook-secret"' in made.text
    assert 'type="button"' in made.text
    assert "shown only once" in made.text
    assert "no longer signs deliveries" in made.text  # no overlap chosen
    # It is the secret deliveries are signed with from now on...
    await added(owner, project_id, receiver.url("/in"))
    await create_project_key(owner, root_headers, project_id)
    await worker.run_once()
    [seen] = receiver.seen("/in")
    header = seen.headers[f"x-{runtime.settings.header_prefix.lower()}-signature"]
    assert header == "sha256=" + hmac.new(secret.encode(), seen.body, hashlib.sha256).hexdigest()
    # ...and no page shows it again.
    pages = [room(project_id), rotate, f"/projects/{project_id}/settings/api-keys"]
    pages += [
        endpoint_url(project_id, e.id) for e in await endpoints.list_endpoints(runtime, project_id)
    ]
    for page in pages:
        text = (await owner.get(page)).text
        assert secret not in text, page
        assert secret.removeprefix("whsec_")[-16:] not in text, page
    # With an overlap, the page says until when the previous one keeps signing.
    kept = await post(owner, rotate, rotate, {"overlap": "86400"})
    assert "keeps signing deliveries until" in kept.text
    assert SECRET.search(kept.text).group(1) != secret  # type: ignore[union-attr]
    assert (await post(owner, rotate, rotate, {"overlap": "999999999"})).status_code == 400


async def test_the_delivery_log_shows_every_attempt_escaped_and_redelivers(
    owner,
    project_id,
    runtime,
    receiver: Receiver,
    worker: DeliveryWorker,
    clock: FrozenClock,
    root_headers,
) -> None:
    answers = iter([Reply(500, body=HOSTILE), Reply(200, body=b"thanks")])
    endpoint_id = await added(owner, project_id, receiver.on("/in", lambda _: next(answers)))
    url = endpoint_url(project_id, endpoint_id)
    assert "No deliveries yet." in (await owner.get(url)).text
    await create_project_key(owner, root_headers, project_id)
    await worker.run_once()
    pending = await owner.get(url)
    assert "Pending" in pending.text
    assert "next attempt" in pending.text
    clock.advance(10)
    await worker.run_once()

    page = await owner.get(url)
    assert page.status_code == 200
    assert "<code>key.created</code>" in page.text
    assert "Succeeded" in page.text
    assert "Attempts: 2" in page.text
    assert re.search(r">500<.*>200<", page.text, re.S)
    assert " ms<" in page.text
    # The receiver's answer is third-party text: shown, escaped, never markup.
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in page.text
    assert "<script>alert" not in page.text
    assert "<img src=x" not in page.text
    log = await owner.get(room(project_id))
    assert "<code>key.created</code>" in log.text
    assert f'href="{url}#d-' in log.text

    delivery_id = re.search(r'/deliveries/(whdl_\w+)/redeliver"', page.text)
    assert delivery_id
    again = await post(owner, url, f"{url}/deliveries/{delivery_id.group(1)}/redeliver", {})
    assert again.headers["location"] == f"{url}?flash=webhook_redelivered#log-h"
    await worker.run_once()
    sent = receiver.seen("/in")
    assert len(sent) == 3
    assert len({s.headers["webhook-id"] for s in sent}) == 1
    # A disabled endpoint: the service's refusal at the top of the page.
    await post(owner, url, f"{url}/disable", {})
    refused = await post(owner, url, f"{url}/deliveries/{delivery_id.group(1)}/redeliver", {})
    assert refused.status_code == 409
    assert 'class="problem"' in refused.text
    assert "enable it before redelivering" in refused.text


async def test_a_viewer_sees_webhooks_but_cannot_change_anything(
    owner, runtime, browser, project_id
) -> None:
    endpoint_id = await added(owner, project_id, "https://hooks.example.com/in", "key.created")
    url = endpoint_url(project_id, endpoint_id)
    await join(runtime, browser, project_id, owner, "viewer@example.com", "viewer")
    async with browser() as viewer:
        assert (await sign_in(viewer, "viewer@example.com", NEW_PASSWORD)).status_code == 303
        listing = await viewer.get(room(project_id))
        assert listing.status_code == 200
        assert "https://hooks.example.com/in" in listing.text
        assert "Add endpoint" not in listing.text
        assert "/webhook-secret/rotate" not in listing.text
        assert "Only an administrator or the owner" in listing.text
        page = await viewer.get(url)
        assert page.status_code == 200
        assert "your role does not let you change it" in page.text
        assert ">Save<" not in page.text
        assert "/redeliver" not in page.text
        token = csrf_of(page.text)
        attempts = [
            (room(project_id), {"url": "https://mine.example.com/", "events": ["*"]}),
            (url, {"events": ["*"], "description": "mine"}),
            (f"{url}/disable", {}),
            (f"{url}/enable", {}),
            (f"{url}/delete", {}),
            (f"{url}/deliveries/whdl_anything/redeliver", {}),
            (f"/projects/{project_id}/webhook-secret/rotate", {"overlap": "0"}),
        ]
        for action, fields in attempts:
            refused = await viewer.post(action, data={FIELD: token, **fields})
            assert refused.status_code == 403, action
        for page_url in (f"{url}/delete", f"/projects/{project_id}/webhook-secret/rotate"):
            assert (await viewer.get(page_url)).status_code == 403
    [row] = await stored(runtime)
    assert (row.enabled, row.events, row.description, row.deleted_at) == (
        True,
        ["key.created"],
        "",
        None,
    )


async def test_a_developer_manages_endpoints_but_not_the_secret(
    owner, runtime, browser, project_id
) -> None:
    await join(runtime, browser, project_id, owner, "dev@example.com", "developer")
    async with browser() as dev:
        assert (await sign_in(dev, "dev@example.com", NEW_PASSWORD)).status_code == 303
        await added(dev, project_id, "https://hooks.example.com/dev")
        rotate = f"/projects/{project_id}/webhook-secret/rotate"
        assert (await dev.get(rotate)).status_code == 403
        token = csrf_of((await dev.get(room(project_id))).text)
        assert (await dev.post(rotate, data={FIELD: token, "overlap": "0"})).status_code == 403
    assert len(await stored(runtime)) == 1


async def test_another_projects_endpoint_or_delivery_does_not_exist_here(
    owner, runtime, browser, project_id, root_headers, receiver: Receiver, worker: DeliveryWorker
) -> None:
    made = await owner.post("/v1/projects", json={"name": "Private"}, headers=root_headers)
    private = made.json()["id"]
    theirs = await add_endpoint(runtime, private, receiver.url("/theirs"))
    mine = await added(owner, project_id, receiver.url("/mine"))
    await create_project_key(owner, root_headers, private)
    await worker.run_once()
    [their_delivery] = await endpoints.list_deliveries(runtime, private, theirs)

    token = csrf_of((await owner.get(room(project_id))).text)
    assert (await owner.get(endpoint_url(project_id, theirs))).status_code == 404
    assert (await owner.get(f"{endpoint_url(project_id, theirs)}/delete")).status_code == 404
    for action in ("disable", "delete"):
        hit = await owner.post(f"{endpoint_url(project_id, theirs)}/{action}", data={FIELD: token})
        assert hit.status_code == 404, action
    # Their delivery through my endpoint's URL, and through theirs under my project.
    for endpoint_id in (mine, theirs):
        hit = await owner.post(
            f"{endpoint_url(project_id, endpoint_id)}/deliveries/{their_delivery.id}/redeliver",
            data={FIELD: token},
        )
        assert hit.status_code == 404, endpoint_id
    assert theirs not in (await owner.get(room(project_id))).text
    # A member of this project only: the other project's room does not exist for them.
    await join(runtime, browser, project_id, owner, "dev@example.com", "developer")
    async with browser() as dev:
        assert (await sign_in(dev, "dev@example.com", NEW_PASSWORD)).status_code == 303
        assert (await dev.get(room(private))).status_code == 404
        assert (await dev.get(endpoint_url(private, theirs))).status_code == 404
    view = await endpoints.get_endpoint(runtime, private, theirs)
    assert view.enabled
    assert len(await endpoints.list_deliveries(runtime, private, theirs)) == 1


async def test_the_room_speaks_french_with_french_dates(owner, project_id) -> None:
    await added(owner, project_id, "https://hooks.example.com/in")
    page = await owner.get(room(project_id), headers={"Accept-Language": "fr-CA,fr;q=0.9"})
    assert page.status_code == 200
    assert "Points de terminaison" in page.text
    assert "Ajouter un point de terminaison" in page.text
    assert "Journal des livraisons" in page.text
    assert re.search(r"\d{1,2} [a-zéû]+\.? \d{4}", page.text)  # e.g. « 6 déc. 2026 »


async def test_the_url_field_is_well_formed_html(owner, project_id) -> None:
    page = await owner.get(f"/projects/{project_id}/webhooks")
    assert 'type="url"' in page.text
    assert 'inputmode="url" spellcheck="false" autocapitalize="off"' in page.text
    assert "&#34;" not in page.text  # no attribute text escaped into another attribute


async def test_the_project_log_reads_deliveries_in_one_query(
    owner, project_id, runtime, receiver: Receiver, root_headers
) -> None:
    for n in range(3):
        await added(owner, project_id, receiver.on(f"/in{n}", lambda _: Reply(200)))
    await create_project_key(owner, root_headers, project_id)  # one delivery to each
    async with counted_queries(runtime) as statements:
        page = await owner.get(room(project_id))
    assert page.status_code == 200
    assert page.text.count("<code>key.created</code>") >= 3  # (the event list names it too)
    reads = [s for s in statements if "FROM webhook_deliveries" in s]
    assert len(reads) == 1, reads  # was one per endpoint
