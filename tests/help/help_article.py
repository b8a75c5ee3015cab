"""Reading the served Help > Security article: its code blocks, as a reader copies them."""

from __future__ import annotations

import html
import re

import httpx

PATH = "/help/security"


async def page(client: httpx.AsyncClient, language: str = "en") -> str:
    response = await client.get(PATH, headers={"Accept-Language": language})
    assert response.status_code == 200, response.text
    return response.text


def code_block(page_html: str, element_id: str) -> str:
    """The text of ``<code id=element_id>``, unescaped: what the copy button copies."""
    found = re.search(rf'<code id="{re.escape(element_id)}">(.*?)</code>', page_html, re.DOTALL)
    assert found is not None, f"no code block {element_id}"
    assert "<" not in found.group(1), "a code block holds markup"
    return html.unescape(found.group(1))
