"""The API reference at /v1/docs: Swagger UI served by Keyguard itself (no CDN), under the
pages' Content-Security-Policy (no inline script)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from keyguard.api.docs import ASSETS

CONTENT_TYPES = {
    "/v1/docs/assets/swagger-ui.css": "text/css",
    "/v1/docs/assets/swagger-ui-bundle.js": "text/javascript",
    "/v1/docs/assets/api-docs.js": "text/javascript",
    "/static/favicon.svg": "image/svg+xml",
    "/v1/openapi.json": "application/json",
}


class Page(HTMLParser):
    """The URLs a page makes the browser load, its inline scripts and styles."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._tag: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href", "data-openapi-url"):
            if found.get(name):
                self.urls.append(str(found[name]))
        if "style" in found or any(name.startswith("on") for name in found):
            self.inline.append(f"<{tag}> with an inline attribute")
        if tag == "style" or (tag == "script" and "src" not in found):
            self.inline.append(f"inline <{tag}>")
        self._tag = tag

    def handle_data(self, data: str) -> None:
        if self._tag == "script" and data.strip():
            self.inline.append(f"script body {data.strip()[:40]!r}")

    def handle_endtag(self, tag: str) -> None:
        self._tag = None


async def read_page(client) -> Page:
    response = await client.get("/v1/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = Page()
    page.feed(response.text)
    return page


async def test_the_page_loads_only_same_origin_urls(client):
    response = await client.get("/v1/docs")
    assert "http://" not in response.text
    assert "https://" not in response.text
    page = await read_page(client)
    assert sorted(set(page.urls)) == sorted(CONTENT_TYPES)
    for url in page.urls:
        assert url.startswith("/"), url
        assert not url.startswith(("//", "/\\")), url


@pytest.mark.parametrize(("url", "content_type"), sorted(CONTENT_TYPES.items()))
async def test_every_asset_answers_with_its_content_type(client, url, content_type):
    response = await client.get(url)
    assert response.status_code == 200, url
    assert response.headers["content-type"].split(";")[0] == content_type
    assert response.content
    if url.startswith("/v1/docs/assets/"):
        assert response.headers["x-content-type-options"] == "nosniff"
        # Revalidated, not re-sent: an unchanged file answers 304.
        again = await client.get(url, headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304


async def test_the_page_is_under_the_pages_csp_without_inline_script(client):
    response = await client.get("/v1/docs")
    policy = {
        directive.split()[0]: directive.split()[1:]
        for directive in response.headers["content-security-policy"].split("; ")
    }
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'none'"]
    assert "'unsafe-inline'" not in response.headers["content-security-policy"]
    assert "'unsafe-eval'" not in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert (await read_page(client)).inline == []


async def test_swagger_ui_reads_openapi_3_1(client):
    """Swagger UI 5 renders OpenAPI 3.1 (FastAPI's); Swagger UI 4 refuses it."""
    doc = (await client.get("/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    bundle = await client.get("/v1/docs/assets/swagger-ui-bundle.js")
    assert b'PACKAGE_VERSION:"5.' in bundle.content


@pytest.mark.parametrize(
    "url",
    [
        "/docs",
        "/redoc",
        "/docs/oauth2-redirect",
        "/v1/docs/oauth2-redirect",
        # Only the listed files: not the rest of the package's folder, nor beyond it.
        "/v1/docs/assets/redoc.standalone.js",
        "/v1/docs/assets/favicon.png",
        "/v1/docs/assets/..%2F__init__.py",
        "/v1/docs/assets/",
    ],
)
async def test_nothing_else_is_served(client, url):
    assert (await client.get(url)).status_code == 404


def test_every_listed_asset_exists():
    for name, (path, _) in ASSETS.items():
        assert path.is_file(), name
