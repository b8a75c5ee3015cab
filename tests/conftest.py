"""Shared fixtures: a real database (SQLite, and PostgreSQL when configured), the runtime,
an in-process HTTP client, and an initialised admin with a root key and a project."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from keyguard.accounts.service import InitResult, init_admin
from keyguard.app import create_asgi
from keyguard.clock import FrozenClock
from keyguard.runtime import Runtime
from keyguard.settings import Settings
from keyguard.storage.db import create_engine, migrate

# Test modules in every folder import the shared `helpers`, `webhook_helpers` and
# `webhook_fixtures` modules that sit beside this file.
sys.path.insert(0, str(Path(__file__).parent))

POSTGRES_URL = os.environ.get("KEYGUARD_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("KEYGUARD_TEST_REDIS_URL")
IN_CI = os.environ.get("CI") == "true"

# A loaded 2-core CI runner can stall one example past Hypothesis's 200 ms deadline;
# the properties are about correctness, speed is measured in bench/.
hypothesis_settings.register_profile(
    "keyguard", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("keyguard")

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery staple"


def _require(url: str | None, what: str) -> str:
    if url:
        return url
    if IN_CI:
        pytest.fail(f"{what} is required in CI (scripts/test-services starts it)")
    pytest.skip(f"{what} not configured (run: eval $(scripts/test-services))")


_template_ready = False
# One template per test process: neither xdist workers nor two suites sharing the
# test PostgreSQL may drop each other's template.
TEMPLATE = f"kg_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"


async def _fresh_postgres_database() -> str:
    """A new database per test, cloned from a migrated template (fast and isolated)."""
    global _template_ready
    base = _require(POSTGRES_URL, "KEYGUARD_TEST_POSTGRES_URL")
    dsn = base.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        if not _template_ready:
            await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
            await conn.execute(f"CREATE DATABASE {TEMPLATE}")
            template_url = base.rsplit("/", 1)[0] + "/" + TEMPLATE
            # Migrations only: what a runtime stores at its first start (the keyring, sealed
            # with its master key) belongs to each test's own runtime.
            engine = create_engine(template_url)
            await migrate(engine)
            await engine.dispose()
            _template_ready = True
        name = "kg_" + uuid.uuid4().hex[:12]
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE}')
    finally:
        await conn.close()
    return base.rsplit("/", 1)[0] + "/" + name


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop this process's template, so repeated runs leave nothing behind."""
    if _template_ready and POSTGRES_URL:
        asyncio.run(_drop_database(POSTGRES_URL.rsplit("/", 1)[0] + "/" + TEMPLATE))


async def _drop_database(url: str) -> None:
    base = _require(POSTGRES_URL, "KEYGUARD_TEST_POSTGRES_URL")
    conn = await asyncpg.connect(base.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Settings]:
    url = None
    if request.param == "postgres":
        url = await _fresh_postgres_database()
    yield Settings(
        data_dir=tmp_path / "data",
        database_url=url,
        master_key="B" * 43 + "=" if url else None,
        header_prefix="APTR",
        key_prefix="aptr",
    )
    if url is not None:
        await _drop_database(url)


async def _no_dns(host: str, port: int) -> list[str]:
    raise OSError(f"no DNS in tests ({host})")


@pytest.fixture
async def runtime(settings: Settings, clock: FrozenClock) -> AsyncIterator[Runtime]:
    rt = await Runtime.start(settings, clock=clock)
    # Webhook host names never reach real DNS: here no name resolves (registration
    # accepts such names; tests/webhooks puts a scriptable resolver in its place).
    rt.webhook_resolver = _no_dns
    yield rt
    await rt.close()


@pytest.fixture
async def admin(runtime: Runtime) -> InitResult:
    return await init_admin(runtime, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_asgi(runtime), client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        yield c


@pytest.fixture
def root_headers(admin: InitResult) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin.root_key.issued.key}"}


@pytest.fixture
def project_id(admin: InitResult) -> str:
    return admin.project.project.id


@pytest.fixture
def browser(runtime: Runtime) -> Callable[[], AsyncIterator[httpx.AsyncClient]]:
    """Another browser (its own cookies) on the same Keyguard."""

    @asynccontextmanager
    async def open_one() -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=create_asgi(runtime), client=("198.51.100.9", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            yield c

    return open_one
