"""Problems only the leaks feature raises (CONTRACT §2: each a stable code)."""

from __future__ import annotations

from keyguard.errors import KeyguardError


class LeakReportUnsigned(KeyguardError):
    status = 401
    code = "leak_signature_invalid"
    title = "The report is not signed by a known reporter"
