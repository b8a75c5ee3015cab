"""``GET /``: the front door leads a person to sign in, or to their projects when signed in."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse

from keyguard.web.pages import person, redirect

router = APIRouter(include_in_schema=False)

SIGN_IN = "/login"
SIGNED_IN = "/projects"


@router.api_route("/", methods=["GET", "HEAD"])
async def front_door(request: Request) -> RedirectResponse:
    """303 to sign-in, or to the projects of whoever the session cookie belongs to."""
    return redirect(SIGNED_IN if await person(request) is not None else SIGN_IN)
