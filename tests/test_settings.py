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


def test_client_cert_header_is_unset_by_default(monkeypatch):
    monkeypatch.delenv("KEYGUARD_CLIENT_CERT_HEADER", raising=False)
    assert Settings().client_cert_header is None
    monkeypatch.setenv("KEYGUARD_CLIENT_CERT_HEADER", "")
    assert Settings().client_cert_header is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("client-cert", "client-cert"),
        ("X-Forwarded-Client-Cert", "x-forwarded-client-cert"),
        (" x-ssl-client-cert ", "x-ssl-client-cert"),
    ],
)
def test_client_cert_header_names_one_of_the_three_headers(monkeypatch, value, expected):
    monkeypatch.setenv("KEYGUARD_CLIENT_CERT_HEADER", value)
    assert Settings().client_cert_header == expected


@pytest.mark.parametrize("value", ["x-client-cert", "client-cert,x-ssl-client-cert"])
def test_any_other_client_cert_header_is_refused_at_load(monkeypatch, value):
    monkeypatch.setenv("KEYGUARD_CLIENT_CERT_HEADER", value)
    with pytest.raises(ValidationError):
        Settings()


def test_master_keys_never_appear_in_the_settings_repr(monkeypatch):
    current, previous = "C" * 43 + "=", "P" * 43 + "="
    monkeypatch.setenv("KEYGUARD_MASTER_KEY", current)
    monkeypatch.setenv("KEYGUARD_PREVIOUS_MASTER_KEYS", previous)
    settings = Settings()
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert current not in text
        assert previous not in text
    assert settings.previous_master_keys is not None
    assert settings.previous_master_keys.get_secret_value() == previous


def test_the_audit_origin_is_a_note_key_name(monkeypatch):
    for bad in ("has space", "a+b"):
        monkeypatch.setenv("KEYGUARD_AUDIT_ORIGIN", bad)
        with pytest.raises(ValidationError):
            Settings()
