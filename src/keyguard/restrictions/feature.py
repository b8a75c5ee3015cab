"""What the restrictions feature registers: Per-key restrictions (CONTRACT §4)."""

from __future__ import annotations

from keyguard.feature import Feature
from keyguard.restrictions import routes
from keyguard.restrictions.errors import TotpConfirmationInvalid

FEATURE = Feature(
    name="restrictions",
    routers=(routes.router,),
    errors=(TotpConfirmationInvalid,),
)
