"""The package's public API is exactly what ``__all__`` declares."""

from __future__ import annotations

import importlib

import pytest

import keyguard.webhooks

MODULES = ["attempt", "retry_after", "schedule", "sender", "signing", "ssrf"]


def test_package_exports_resolve() -> None:
    for name in keyguard.webhooks.__all__:
        assert hasattr(keyguard.webhooks, name), name


@pytest.mark.parametrize("module", MODULES)
def test_every_public_name_is_declared(module: str) -> None:
    mod = importlib.import_module(f"keyguard.webhooks.{module}")
    # Functions and classes defined here (not imported) must be declared public.
    public = {
        name
        for name, value in vars(mod).items()
        if not name.startswith("_")
        and callable(value)
        and getattr(value, "__module__", None) == mod.__name__
    }
    assert public <= set(mod.__all__), public - set(mod.__all__)
    assert all(hasattr(mod, name) for name in mod.__all__)
