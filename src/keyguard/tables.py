"""Every feature's tables in one metadata: what Alembic compares the migrations against.

The storage layer knows no feature, so it never imports this; the migration test and a
developer autogenerating a migration (``alembic_config(..., metadata=tables.metadata)``)
do.
"""

from __future__ import annotations

from keyguard.accounts import models as account_models
from keyguard.accounts.models import (
    Account,
    AccountSession,
    Invitation,
    KnownDevice,
    KnownNetwork,
    Membership,
    Passkey,
    RecoveryCode,
)
from keyguard.audit import models as audit_models
from keyguard.audit.models import (
    AuditCheckpoint,
    AuditEvent,
    AuditHead,
    AuditSigningKey,
    AuditTreeNode,
)
from keyguard.keys import models as key_models
from keyguard.keys.models import ApiKey, KeyCertificate
from keyguard.mail.models import MailMessage
from keyguard.oauth import models as oauth_models
from keyguard.oauth.models import (
    OAuthAccessToken,
    OAuthApp,
    OAuthCode,
    OAuthGrant,
    OAuthRefreshToken,
    OAuthSigningKey,
)
from keyguard.projects import models as project_models
from keyguard.projects.models import Project
from keyguard.storage import keyring
from keyguard.storage.base import Base
from keyguard.storage.keyring import KeyringEntry
from keyguard.uploads.models import Photo, UploadSession
from keyguard.usage.models import AnomalyClaim, KeyLastUse, KeyNetwork, UsageBucket
from keyguard.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)

metadata = Base.metadata
# Every column sealed with the master key: what a master-key rotation re-seals.
SEALED_COLUMNS = (
    *keyring.SEALED,
    *account_models.SEALED,
    *project_models.SEALED,
    *key_models.SEALED,
    *audit_models.SEALED,
    *oauth_models.SEALED,
)
ALL_ROWS = (
    Account,
    Project,
    ApiKey,
    KeyCertificate,
    AuditEvent,
    AuditHead,
    AuditTreeNode,
    AuditSigningKey,
    AuditCheckpoint,
    UploadSession,
    Photo,
    WebhookEndpoint,
    WebhookMessage,
    WebhookDelivery,
    WebhookAttempt,
    AccountSession,
    RecoveryCode,
    Passkey,
    Membership,
    Invitation,
    KnownDevice,
    KnownNetwork,
    MailMessage,
    UsageBucket,
    KeyLastUse,
    KeyNetwork,
    AnomalyClaim,
    KeyringEntry,
    OAuthApp,
    OAuthCode,
    OAuthGrant,
    OAuthRefreshToken,
    OAuthAccessToken,
    OAuthSigningKey,
)
