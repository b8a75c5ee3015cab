"""What the project services hand the edges: frozen views, never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from keyguard.projects.models import Project


@dataclass(frozen=True, slots=True)
class ProjectView:
    id: str
    name: str
    key_prefix: str
    owner_account_id: str | None
    max_key_age_days: int
    enforce_max_key_age: bool
    leak_policy: str
    anomaly_thresholds: dict[str, int]
    created_at: datetime

    @classmethod
    def of(cls, row: Project) -> ProjectView:
        return cls(
            id=row.id,
            name=row.name,
            key_prefix=row.key_prefix,
            owner_account_id=row.owner_account_id,
            max_key_age_days=row.max_key_age_days,
            enforce_max_key_age=row.enforce_max_key_age,
            leak_policy=row.leak_policy,
            anomaly_thresholds=dict(row.anomaly_thresholds or {}),
            created_at=row.created_at,
        )
