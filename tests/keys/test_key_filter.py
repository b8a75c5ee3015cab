"""Narrowing the key list in SQL: by part of the name or id, by status (with the same
precedence as a key's status), by environment; every key is found, however many."""

from __future__ import annotations

from datetime import timedelta

from keyguard.clock import utc_from_ts
from keyguard.keys import service as keys
from keyguard.keys.service import KeyFilter, KeySpec


async def _make(runtime, project_id, name, **spec) -> str:
    made = await keys.create_key(runtime, project_id, KeySpec(name=name, **spec), actor="t")
    return made.key.id


async def _names(runtime, project_id, wanted: KeyFilter) -> list[str]:
    page, _ = await keys.list_keys(runtime, project_id, limit=100, wanted=wanted)
    return sorted(view.name for view in page)


async def test_text_status_and_environment_narrow_the_list(runtime, project_id, clock) -> None:
    soon = utc_from_ts(clock.now()) + timedelta(seconds=10)
    await _make(runtime, project_id, "Billing 100%")
    await _make(runtime, project_id, "billing_v2", environment="test")
    revoked = await _make(runtime, project_id, "old billing")
    await keys.revoke_key(runtime, revoked, actor="t")
    await _make(runtime, project_id, "Short-lived", expires_at=soon)
    await _make(runtime, project_id, "big v3", environment="test")  # "g v" is like "g_v"
    clock.advance(60)
    assert await _names(runtime, project_id, KeyFilter(text="BILLING")) == [
        "Billing 100%",
        "billing_v2",
        "old billing",
    ]
    # % and _ are matched as themselves, not as wildcards.
    assert await _names(runtime, project_id, KeyFilter(text="100%")) == ["Billing 100%"]
    assert await _names(runtime, project_id, KeyFilter(text="g_v")) == ["billing_v2"]
    assert await _names(runtime, project_id, KeyFilter(status="revoked")) == ["old billing"]
    assert await _names(runtime, project_id, KeyFilter(status="expired")) == ["Short-lived"]
    assert await _names(runtime, project_id, KeyFilter(status="active")) == [
        "Billing 100%",
        "big v3",
        "billing_v2",
    ]
    assert await _names(runtime, project_id, KeyFilter(environment="test")) == [
        "big v3",
        "billing_v2",
    ]
    assert await _names(runtime, project_id, KeyFilter(text="billing", status="active")) == [
        "Billing 100%",
        "billing_v2",
    ]


async def test_a_key_past_any_page_is_found_by_its_id(runtime, project_id) -> None:
    ids = [await _make(runtime, project_id, f"key {i:03d}") for i in range(60)]
    first, cursor = await keys.list_keys(runtime, project_id, limit=50)
    assert len(first) == 50
    assert cursor is not None
    last = ids[-1]
    found, _ = await keys.list_keys(runtime, project_id, limit=50, wanted=KeyFilter(text=last))
    assert [view.id for view in found] == [last]
