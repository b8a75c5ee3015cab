"""What the audit feature registers: The audit log (CONTRACT §10)."""

from __future__ import annotations

from keyguard.audit import routes
from keyguard.audit.errors import ProofRangeInvalid
from keyguard.feature import Feature

FEATURE = Feature(
    name="audit",
    routers=(routes.router,),
    errors=(ProofRangeInvalid,),
)
