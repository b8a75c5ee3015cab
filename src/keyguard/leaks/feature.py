"""What the leaks feature registers (CONTRACT §10): the report endpoint and its problem."""

from __future__ import annotations

from keyguard.feature import Feature
from keyguard.leaks import routes
from keyguard.leaks.errors import LeakReportUnsigned

FEATURE = Feature(name="leaks", routers=(routes.router,), errors=(LeakReportUnsigned,))
