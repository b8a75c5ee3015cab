"""The Keyguard HTTP application: management API, verify API and protected routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from keyguard import __version__
from keyguard.api import docs, meta, problems, root
from keyguard.api.limits import Limits
from keyguard.doors import verify_api as verify
from keyguard.features import FEATURES
from keyguard.keys.age import key_age_watcher
from keyguard.mail.worker import MailWorker
from keyguard.retention.service import RetentionSweeper
from keyguard.runtime import Runtime
from keyguard.server.edge import Edge, HotRoute
from keyguard.uploads import routes as upload_routes
from keyguard.uploads import session_routes as sessions
from keyguard.usage.anomalies import anomaly_watcher
from keyguard.web import pages
from keyguard.webhooks.checkpoints import checkpoint_publisher
from keyguard.webhooks.worker import DeliveryWorker


def create_app(runtime: Runtime, *, close_runtime: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(started: FastAPI) -> AsyncIterator[None]:
        # The webhook worker lives as long as the server; stopping it releases its leases.
        sweeper = RetentionSweeper(runtime, started.state.file_store)
        async with (
            DeliveryWorker(runtime).running(),
            sweeper.running(),
            MailWorker(runtime).running(),
            key_age_watcher(runtime),
            anomaly_watcher(runtime),
            checkpoint_publisher(runtime),
        ):
            yield
        if close_runtime:
            await runtime.close()

    app = FastAPI(
        title="Keyguard",
        version=__version__,
        summary="API keys done right: per-key restrictions, signed requests, webhooks.",
        openapi_url="/v1/openapi.json",
        # FastAPI's docs pages load their assets from a CDN: keyguard.api.docs serves
        # /v1/docs from Keyguard itself instead.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.context = runtime
    app.state.file_store = upload_routes.local_file_store(runtime)
    problems.install(app)
    pages.install(app)
    app.mount("/static", StaticFiles(packages=[("keyguard.web", "static")]), name="static")
    # Routes are matched in order: the verify API before the features (so that
    # "/v1/keys/verify" does not match "/v1/keys/{key_id}"), then each feature's.
    for router in (root.router, docs.router, meta.router, verify.router):
        app.include_router(router)
    for feature in FEATURES:
        for router in feature.routers:
            app.include_router(router)
    return app


def create_asgi(runtime: Runtime, *, close_runtime: bool = True) -> Edge:
    """The app behind its edge, as the server runs it.

    The edge serves the hot routes itself, before FastAPI; their FastAPI twins above
    document them in the OpenAPI schema and answer what the edge hands on (``HEAD``).
    """
    return Edge(
        create_app(runtime, close_runtime=close_runtime),
        limits=Limits(
            max_body_bytes=runtime.settings.max_body_bytes,
            # Photo uploads get their own, larger limit (CONTRACT §6).
            large_body=upload_routes.is_upload,
            max_large_body_bytes=(
                runtime.settings.max_upload_bytes + upload_routes.MULTIPART_OVERHEAD
            ),
        ),
        hot=(
            HotRoute("/healthz", meta.hot_health, exact=True),
            HotRoute("/v1/sessions/", sessions.hot_get_session(runtime)),
        ),
    )
