"""A runtime shared by the door tests of one module (SQLite, frozen clock, trusted proxies)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from door_harness import Kit, open_kit


@pytest.fixture(scope="module")
async def kit(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Kit]:
    async with open_kit(tmp_path_factory.mktemp("doors")) as opened:
        yield opened
