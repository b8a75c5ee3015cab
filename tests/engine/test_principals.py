"""One dispatch from presented credential to principal, and one authorization question."""

from __future__ import annotations

import base64
import json

import pytest

from keyguard.crypto.keys import KeyIdTagger
from keyguard.engine.facts import Credentials, RequestFacts
from keyguard.engine.permissions import Action, Permission, Role, authorize, authorize_person
from keyguard.engine.principals import (
    AccessToken,
    KeyPrincipal,
    SessionCookie,
    TokenPrincipal,
    UserPrincipal,
    identify,
)
from keyguard.errors import CredentialsMissing, InvalidKey, NotFound, RoleTooLow, RootKeyRequired
from keyguard.wire import SESSION_COOKIE


def _jwt() -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'ES256', 'typ': 'at+jwt'})}.{part({'sub': 'u1'})}.c2ln"


KEY = KeyIdTagger(bytes(32)).issue("aptr", "live")


def test_every_key_form_is_a_key_credential():
    assert identify({"authorization": f"Bearer {KEY.key}"}) == Credentials(KEY.id, KEY.secret)
    assert identify({"x-api-key": KEY.key}) == Credentials(KEY.id, KEY.secret)


def test_a_jwt_in_bearer_is_an_access_token_not_a_malformed_key():
    token = _jwt()
    assert identify({"authorization": f"Bearer {token}"}) == AccessToken(token)


def test_the_session_cookie_alone_is_a_session():
    cookie = f"theme=dark; {SESSION_COOKIE}=abc123; other=1"
    assert identify({"cookie": cookie}) == SessionCookie("abc123")


def test_a_key_header_wins_over_the_ambient_cookie():
    headers = {"x-api-key": KEY.key, "cookie": f"{SESSION_COOKIE}=abc123"}
    assert identify(headers) == Credentials(KEY.id, KEY.secret)


def test_two_different_session_cookies_are_no_session():
    # A cookie planted beside the real one: which one a parser keeps must not matter.
    planted = f"{SESSION_COOKIE}=victims; {SESSION_COOKIE}=attackers"
    assert identify({"cookie": planted}) is None
    assert identify({"cookie": f"{SESSION_COOKIE}=same; {SESSION_COOKIE}=same"}) == (
        SessionCookie("same")
    )


@pytest.mark.parametrize(
    "cookie", ["", "keyguard-session=abc", f"{SESSION_COOKIE}=", f"x{SESSION_COOKIE}=abc"]
)
def test_other_cookies_present_nothing(cookie):
    assert identify({"cookie": cookie}) is None


def test_a_malformed_key_is_still_refused():
    with pytest.raises(InvalidKey):
        identify({"authorization": "Bearer not-a-key"})


def test_tokens_and_cookies_never_print():
    assert "abc123" not in repr(SessionCookie("abc123"))
    assert _jwt() not in repr(AccessToken(_jwt()))


def _facts() -> RequestFacts:
    return RequestFacts(client_ip=None, method="GET", path_with_query="/", https=True)


async def test_without_an_oauth_feature_a_token_gets_the_401_of_a_bad_key(runtime):
    runtime.engine.token_verifier = None  # the engine alone, as before the feature plugs in
    with pytest.raises(InvalidKey):
        await runtime.engine.authenticate(AccessToken(_jwt()), _facts())


async def test_without_an_accounts_feature_a_cookie_is_no_credential(runtime):
    with pytest.raises(CredentialsMissing):
        await runtime.engine.authenticate(SessionCookie("abc123"), _facts())


class _Tokens:
    """A verifier in the shape the OAuth feature plugs in: the slot is real."""

    async def verify(self, token, facts, *, required_scopes):
        return TokenPrincipal("t1", "client1", "p1", frozenset(required_scopes))


async def test_a_plugged_token_verifier_gets_the_token(runtime):
    runtime.engine.token_verifier = _Tokens()
    principal = await runtime.engine.authenticate(
        AccessToken(_jwt()), _facts(), required_scopes=["read"]
    )
    assert principal == TokenPrincipal("t1", "client1", "p1", frozenset({"read"}))
    # On the management API too: what it may do there is authorize()'s question.
    managing = await runtime.engine.authenticate(AccessToken(_jwt()), _facts(), root=True)
    assert isinstance(managing, TokenPrincipal)


ROOT = KeyPrincipal("root1", None, "live", frozenset(), is_root=True)
PROJECT_KEY = KeyPrincipal("key1", "p1", "live", frozenset(), is_root=False)


def test_root_keys_manage_and_project_keys_use():
    authorize(ROOT, Action.MANAGE, project_id="p1")
    authorize(PROJECT_KEY, Action.USE, project_id="p1")


def test_a_project_key_on_the_management_api_needs_a_root_key():
    with pytest.raises(RootKeyRequired):
        authorize(PROJECT_KEY, Action.MANAGE)


def test_a_root_key_is_never_a_project_credential():
    with pytest.raises(InvalidKey):
        authorize(ROOT, Action.USE, project_id="p1")


def test_another_projects_resource_does_not_exist():
    with pytest.raises(NotFound):
        authorize(PROJECT_KEY, Action.USE, project_id="p2")


def test_tokens_use_their_own_project_and_only_a_persons_token_manages():
    client_token = TokenPrincipal("t1", "client1", "p1", frozenset({"read"}))
    authorize(client_token, Action.USE, project_id="p1")
    with pytest.raises(NotFound):
        authorize(client_token, Action.USE, project_id="p2")
    with pytest.raises(RootKeyRequired):
        authorize(client_token, Action.MANAGE)
    persons = TokenPrincipal("t2", "client1", "p1", frozenset({"read"}), subject="acct1")
    authorize(persons, Action.MANAGE)  # then keyguard.oauth.delegation, per resource


def test_people_may_use_the_management_api_and_never_a_projects_own_api():
    person = UserPrincipal("acct1", "sess1", roles={"p1": "owner"})
    authorize(person, Action.MANAGE)
    with pytest.raises(CredentialsMissing):
        authorize(person, Action.USE, project_id="p1")


@pytest.mark.parametrize(
    ("role", "permission", "allowed"),
    [
        ("viewer", Permission.READ, True),
        ("viewer", Permission.WRITE_KEYS, False),
        ("developer", Permission.WRITE_KEYS, True),
        ("developer", Permission.WRITE_WEBHOOKS, True),
        ("developer", Permission.ROTATE_SECRETS, False),
        ("admin", Permission.ROTATE_SECRETS, True),
        ("admin", Permission.MANAGE_MEMBERS, False),
        ("owner", Permission.MANAGE_MEMBERS, True),
    ],
)
def test_each_role_grants_what_the_roles_table_says(role, permission, allowed):
    person = UserPrincipal("acct1", "sess1", roles={"p1": role})
    if allowed:
        assert authorize_person(person, "p1", permission) == Role(role)
    else:
        with pytest.raises(RoleTooLow):
            authorize_person(person, "p1", permission)


def test_a_project_a_person_is_not_a_member_of_does_not_exist():
    person = UserPrincipal("acct1", "sess1", roles={"p1": "owner"})
    with pytest.raises(NotFound):
        authorize_person(person, "p2")
