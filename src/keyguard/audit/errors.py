"""Problems only the audit log raises (CONTRACT §2: each a stable code)."""

from __future__ import annotations

from keyguard.errors import KeyguardError


class ProofRangeInvalid(KeyguardError):
    status = 422
    code = "proof_range_invalid"
    title = "The log has no such event or tree size"
