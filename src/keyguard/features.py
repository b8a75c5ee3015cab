"""Every feature of the application, in the order their routes are matched.

The hot session routes come first; the verify API (a door, see ``keyguard.app``) is
matched before the key routes, so "/v1/keys/verify" is not taken for "/v1/keys/{key_id}".
"""

from __future__ import annotations

from keyguard.accounts.feature import FEATURE as ACCOUNTS
from keyguard.audit.feature import FEATURE as AUDIT
from keyguard.dashboard.feature import FEATURE as DASHBOARD
from keyguard.feature import AuditSubscriber, Feature
from keyguard.help.feature import FEATURE as HELP
from keyguard.keys.feature import FEATURE as KEYS
from keyguard.leaks.feature import FEATURE as LEAKS
from keyguard.mail.feature import FEATURE as MAIL
from keyguard.metrics.feature import FEATURE as METRICS
from keyguard.oauth.feature import FEATURE as OAUTH
from keyguard.projects.feature import FEATURE as PROJECTS
from keyguard.restrictions.feature import FEATURE as RESTRICTIONS
from keyguard.uploads.feature import FEATURE as UPLOADS
from keyguard.usage.feature import FEATURE as USAGE
from keyguard.webhooks.feature import FEATURE as WEBHOOKS

FEATURES: tuple[Feature, ...] = (
    UPLOADS,
    WEBHOOKS,
    KEYS,
    PROJECTS,
    AUDIT,
    RESTRICTIONS,
    ACCOUNTS,
    OAUTH,
    DASHBOARD,
    HELP,
    MAIL,
    USAGE,
    LEAKS,
    METRICS,
)


def audit_subscribers() -> tuple[AuditSubscriber, ...]:
    return tuple(s for feature in FEATURES for s in feature.audit_subscribers)
