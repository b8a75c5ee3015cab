"""``GET /help/security``: Help > Security (CONTRACT §12, in the spirit of seed 000).

Public, like a help centre: no sign-in is needed, and a signed-in person sees it in their
own language. Every sentence comes from the catalogs (seed 001's keys and Keyguard's
own); the code blocks are built for this server's public URL and header prefix by
:mod:`keyguard.help.snippets`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from markupsafe import Markup, escape
from starlette.responses import Response

from keyguard.api.deps import context_of
from keyguard.help import snippets
from keyguard.i18n import translate
from keyguard.web.pages import render

router = APIRouter(include_in_schema=False)

_CODE = Markup("<code>{}</code>")


def with_code(key: str, /, **fields: str) -> Markup:
    """The message ``key`` in the page's language, escaped, with each field (a header
    name, a value to type) set in ``<code>``: ``tc("help.security.totpHeaderNote",
    header="X-Keyguard-TOTP")``."""
    template = translate(key)  # without fields: the message's format string itself
    # The message is escaped first; Markup.format escapes each field too.
    safe = Markup(escape(template))  # noqa: S704
    return safe.format(**{name: _CODE.format(v) for name, v in fields.items()})


@router.get("/help/security")
async def security(request: Request) -> Response:
    settings = context_of(request).settings
    return await render(
        request,
        "help/security.html",
        tc=with_code,
        prefix=settings.header_prefix,
        base_url=settings.public_base_url,
        key_example=f"{settings.key_prefix}_live_xxxx",
        code=snippets.for_server(
            settings.public_base_url, settings.header_prefix, settings.key_prefix
        ),
    )
