"""The API reference at ``/v1/docs``: Swagger UI, served by Keyguard itself.

Swagger UI's script and stylesheet are swagger-ui-dist's files as the ``fastapi-offline``
package installs them (at build time, from PyPI); the code that starts Swagger UI is
``static/api-docs.js`` beside this module. Nothing comes from a CDN, and the page is
served under the same Content-Security-Policy as every page (no inline script).
FastAPI's own docs page (which loads its assets from a CDN) is switched off in
``keyguard.app``.
"""

from __future__ import annotations

import functools
import hashlib
from html import escape
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from keyguard.errors import NotFound
from keyguard.web.headers import protect

DOCS_PATH = "/v1/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
FAVICON = "/static/favicon.svg"

_SWAGGER_UI = Path(str(files("fastapi_offline") / "static"))
_OWN = Path(str(files("keyguard.api") / "static"))

# The only files served under ASSETS_PATH: name -> (file, media type).
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui.css": (_SWAGGER_UI / "swagger-ui.css", "text/css; charset=utf-8"),
    "swagger-ui-bundle.js": (_SWAGGER_UI / "swagger-ui-bundle.js", "text/javascript"),
    "api-docs.js": (_OWN / "api-docs.js", "text/javascript"),
}

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Keyguard API reference</title>
<link rel="icon" href="{favicon}" type="image/svg+xml">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<noscript><p>The interactive API reference needs JavaScript. The OpenAPI document is at
<a href="{openapi}">{openapi}</a>.</p></noscript>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/api-docs.js"></script>
</body>
</html>
"""


@router.get(DOCS_PATH)
async def api_reference(request: Request) -> HTMLResponse:
    openapi = escape(request.app.openapi_url or "/v1/openapi.json")
    page = _PAGE.format(favicon=FAVICON, assets=ASSETS_PATH, openapi=openapi)
    response = HTMLResponse(page)
    protect(response)  # the pages' CSP: scripts from this origin only, none inline
    return response


@functools.cache
def _read(name: str) -> tuple[bytes, str]:
    """The file's bytes and their strong ETag (read once per process)."""
    content = ASSETS[name][0].read_bytes()
    return content, f'"{hashlib.sha256(content).hexdigest()[:32]}"'


@router.get(ASSETS_PATH + "/{name}")
async def asset(name: str, request: Request) -> Response:
    if name not in ASSETS:
        raise NotFound("No such file of the API reference.")
    content, etag = _read(name)
    # Revalidated on every use: an upgrade is seen at once, an unchanged file is a 304.
    headers = {"ETag": etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(content, media_type=ASSETS[name][1], headers=headers)
