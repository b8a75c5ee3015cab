"""Upload sessions and their photos, read-only: the project's own, with counts; another
project's session is not reachable through this one."""

from __future__ import annotations

from dashboard.test_key_pages import create


async def test_sessions_and_their_photos_are_listed(owner, project_id, root_headers) -> None:
    empty = await owner.get(f"/projects/{project_id}/uploads")
    assert empty.status_code == 200
    assert "No upload session yet" in empty.text
    _, key = await create(owner, project_id, scopes="sessions:write")
    made = await owner.post(
        "/v1/sessions",
        json={"delivery_mode": "poll"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert made.status_code == 201
    session = made.json()
    page = await owner.get(f"/projects/{project_id}/uploads")
    assert session["id"] in page.text
    assert "0 of 20" in page.text or "0 of" in page.text
    one = await owner.get(f"/projects/{project_id}/uploads/{session['id']}")
    assert one.status_code == 200
    assert "No photo was uploaded" in one.text
    other = await owner.post("/v1/projects", json={"name": "Other"}, headers=root_headers)
    other_id = other.json()["id"]
    assert (await owner.get(f"/projects/{other_id}/uploads/{session['id']}")).status_code == 404
    assert (await owner.get(f"/projects/{project_id}/uploads/nonsense")).status_code == 404
