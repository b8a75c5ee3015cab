"""Each feature registers its routes, problem types and audit subscribers, and the
application is built from exactly those registrations."""

from __future__ import annotations

import keyguard.app
from keyguard.errors import KeyguardError
from keyguard.features import FEATURES, audit_subscribers
from keyguard.oauth.errors import OAuthError, TokenRefused
from keyguard.webhooks.events import on_audit

# Problems of the core and of the gateway (an edge, not a feature) need no registration.
_UNREGISTERED_HOMES = ("keyguard.errors", "keyguard.gateway.errors")
# Bases that are never raised themselves (each subclass is registered).
_BASES = {OAuthError, TokenRefused}


def _all_problem_types() -> set[type[KeyguardError]]:
    found: set[type[KeyguardError]] = set()
    todo = [KeyguardError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("keyguard.") and sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def test_every_feature_problem_is_registered_by_its_own_feature_once():
    registered = [error for feature in FEATURES for error in feature.errors]
    assert len(registered) == len(set(registered))
    for feature in FEATURES:
        for error in feature.errors:
            assert error.__module__ == f"keyguard.{feature.name}.errors", error
    unregistered = {
        error
        for error in _all_problem_types() - set(registered)
        if error.__module__ not in _UNREGISTERED_HOMES and error not in _BASES
    }
    assert unregistered == set()


def test_webhooks_subscribe_to_the_audit_log():
    assert on_audit in audit_subscribers()


async def test_the_app_serves_every_registered_route(runtime):
    app = keyguard.app.create_app(runtime, close_runtime=False)
    served = {
        (path, method.upper()) for path, item in app.openapi()["paths"].items() for method in item
    }
    for feature in FEATURES:
        for router in feature.routers:
            for route in router.routes:
                if not getattr(route, "include_in_schema", True):
                    continue
                for method in route.methods - {"HEAD"}:
                    assert (route.path, method) in served, (feature.name, route.path, method)
