"""Usage anomaly thresholds (CONTRACT §10): the defaults, their ranges, and the check of
a project's overrides. Kept apart from the detection so projects can validate them
without importing it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keyguard.errors import ValidationFailed

DEFAULTS: dict[str, int] = {
    "failure_burst": 20,
    "failure_window_minutes": 5,
    "new_network_days": 30,
    "spike_factor": 10,
    "spike_min_requests": 100,
}
LIMITS: dict[str, tuple[int, int]] = {
    "failure_burst": (0, 1_000_000),
    "failure_window_minutes": (1, 60),
    "new_network_days": (0, 365),
    "spike_factor": (0, 1000),
    "spike_min_requests": (1, 1_000_000_000),
}


def check_thresholds(values: Mapping[str, Any]) -> dict[str, int]:
    """Validated overrides (unknown names, non-integers and out-of-range values: 422)."""
    checked: dict[str, int] = {}
    for name, value in values.items():
        if name not in LIMITS:
            raise ValidationFailed(
                f"unknown anomaly threshold {name!r}", field="anomaly_thresholds"
            )
        low, high = LIMITS[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValidationFailed(
                f"{name} must be an integer from {low} to {high}", field="anomaly_thresholds"
            )
        checked[name] = value
    return checked
