"""The plain HTML pages of an upload session: the form at ``upload_url`` and the answers
a browser sees. No JavaScript, no cookies (hence no CSRF token): the form posts straight
to ``POST /v1/sessions/ID/photos`` with the file and, when the session has one, the
password.
"""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

# Nothing but our own form and inline styles; the page can't be framed or leak referrers.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}"
    "label{display:block;margin:1rem 0 .3rem}button{margin-top:1.2rem;padding:.5rem 1.2rem}"
)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def upload_form(session_id: str, *, password_required: bool, remaining: int) -> HTMLResponse:
    action = f"/v1/sessions/{escape(session_id, quote=True)}/photos"
    password = (
        "<label for=password>Password</label><input id=password name=password type=password"
        " required autocomplete=off maxlength=72>"
        if password_required
        else ""
    )
    return _page(
        "Upload a photo",
        f'<form method=post action="{action}" enctype="multipart/form-data">'
        "<label for=file>Photo (JPEG, PNG, GIF, WebP or HEIC)</label>"
        '<input id=file name=file type=file required accept="image/*">'
        f"{password}<button type=submit>Upload</button></form>"
        f"<p>{remaining} more photo(s) can be added to this session.</p>",
    )


def uploaded(session_id: str, filename: str) -> HTMLResponse:
    back = f"/upload/{escape(session_id, quote=True)}"
    return _page(
        "Photo uploaded",
        f"<p>Thank you: <strong>{escape(filename)}</strong> was received.</p>"
        f'<p><a href="{back}">Upload another photo</a></p>',
        status=201,
    )


def unavailable(status: int) -> HTMLResponse:
    message = (
        "This upload link has expired. Ask for a new one."
        if status == 410
        else "This upload link does not exist."
    )
    return _page("Upload unavailable", f"<p>{message}</p>", status=status)


def refused(session_id: str, title: str, detail: str, status: int) -> HTMLResponse:
    """An upload the server refused (wrong password, too large, …), for a browser."""
    back = f"/upload/{escape(session_id, quote=True)}"
    return _page(
        title,
        f'<p>{escape(detail)}</p><p><a href="{back}">Back to the upload form</a></p>',
        status=status,
    )


__all__ = ["SECURITY_HEADERS", "refused", "unavailable", "upload_form", "uploaded"]
