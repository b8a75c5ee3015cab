"""The local-disk store keeps files under its root, whatever key it is given."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from keyguard.uploads.store import LocalFileStore


async def test_put_get_delete_round_trip(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "photos")
    await store.put("sess_a/pho_b", io.BytesIO(b"data"))
    assert await store.get("sess_a/pho_b") == b"data"
    assert [p.name for p in (tmp_path / "photos" / "sess_a").iterdir()] == ["pho_b"]
    await store.delete("sess_a/pho_b")
    await store.delete("sess_a/pho_b")  # absent is fine
    with pytest.raises(FileNotFoundError):
        await store.get("sess_a/pho_b")


@pytest.mark.parametrize(
    "key", ["../escape", "a/../../b", "/etc/passwd", "a//b", "a/b/", "", "a\\b", "a/./b", "é"]
)
async def test_keys_that_could_escape_the_root_are_refused(tmp_path: Path, key: str) -> None:
    store = LocalFileStore(tmp_path / "photos")
    with pytest.raises(ValueError, match="invalid storage key"):
        await store.put(key, io.BytesIO(b"x"))
    assert not (tmp_path / "escape").exists()
