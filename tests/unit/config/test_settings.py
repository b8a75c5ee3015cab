from __future__ import annotations

import pytest
from pydantic import ValidationError

from keyguard.settings import Settings


def test_lists_are_comma_separated(monkeypatch):
    monkeypatch.setenv("KEYGUARD_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.0.0/16,::1")
    assert Settings().trusted_proxies == ["10.0.0.0/8", "192.168.0.0/16", "::1"]


@pytest.mark.parametrize("value", ["fe80::1%eth0", "not-an-ip", "10.0.0.0/33", "10.0.0.1x"])
def test_bad_proxy_entries_are_refused_at_load(monkeypatch, value):
    monkeypatch.setenv("KEYGUARD_TRUSTED_PROXIES", f"10.0.0.0/8,{value}")
    with pytest.raises(ValidationError):
        Settings()


def test_header_prefix_must_be_a_header_token(monkeypatch):
    monkeypatch.setenv("KEYGUARD_HEADER_PREFIX", "APTR X")
    with pytest.raises(ValidationError):
        Settings()
