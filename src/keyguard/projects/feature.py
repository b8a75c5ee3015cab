"""What the projects feature registers: Projects (CONTRACT §3)."""

from __future__ import annotations

from keyguard.feature import Feature
from keyguard.projects import routes

FEATURE = Feature(
    name="projects",
    routers=(routes.router,),
)
