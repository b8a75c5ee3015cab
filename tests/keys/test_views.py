"""Views handed to the edges never print a key's secret."""

from __future__ import annotations

from datetime import UTC, datetime

from keyguard.crypto.keys import KeyIdTagger
from keyguard.keys.views import CreatedKey, KeyView


def test_a_created_key_never_prints_its_secret():
    issued = KeyIdTagger(bytes(32)).issue("aptr", "live")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    view = KeyView(
        id=issued.id, project_id="p1", name="n", environment="live", status="active",
        scopes=(), metadata={}, created_at=at, updated_at=at, expires_at=None,
        revoked_at=None, quarantined_at=None, rotated_from=None, rotated_to=None,
        ip_allowlist=(),
        allowed_domains=(), rate_limit=None, totp_enabled=False, require_signature=False,
        certificates=(), rotate_by=None, rotation_due=False,
    )  # fmt: skip
    text = repr(CreatedKey(view, issued))
    assert issued.id in text
    assert issued.secret not in text
    assert issued.key not in text
