"""Redirect URIs (RFC 9700 §2.1, §4.1): registered exactly, compared exactly.

Registration takes ``https`` URLs, ``http`` only on a loopback address (a native app's
local server, RFC 8252 §7.3) and private-use schemes (``com.example.app:/cb``, RFC
8252 §7.1); never a fragment, never a wildcard. At ``/authorize`` the URI must equal a
registered one character for character, except that a loopback URI may use any port
(the app picks a free one when it starts).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

MAX_URI = 2000
_LOOPBACK_HOSTS = ("127.0.0.1", "::1")


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_registered(uri: str) -> str:
    """``uri`` as registered, or ValueError saying why it cannot be."""
    if len(uri) > MAX_URI or any(c.isspace() or ord(c) < 0x20 for c in uri):
        raise ValueError("redirect URIs are at most 2000 characters, without spaces")
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        raise ValueError("a redirect URI must not contain a fragment")
    if "*" in uri:
        raise ValueError("a redirect URI must not contain a wildcard")
    scheme = parts.scheme.lower()
    if scheme == "https":
        if not parts.hostname:
            raise ValueError("an https redirect URI needs a host")
    elif scheme == "http":
        if not _is_loopback(parts.hostname):
            raise ValueError("http redirect URIs are allowed only on 127.0.0.1 or [::1]")
    elif "." in scheme and not parts.netloc:
        pass  # a private-use scheme (reverse domain name) of a native app
    else:
        raise ValueError(
            "a redirect URI must be https, http on a loopback address, or a private-use "
            "scheme such as com.example.app:/callback"
        )
    return uri


def matches(registered: list[str], presented: str) -> bool:
    """Whether ``presented`` is one of the ``registered`` URIs (exactly; any port on a
    loopback URI)."""
    if presented in registered:
        return True
    parts = urlsplit(presented)
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK_HOSTS:
        return False
    if "@" in parts.netloc or parts.fragment or "#" in presented:
        return False  # user info or a fragment: never the URI that was registered
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return False
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    without_port = urlunsplit((parts.scheme, host, parts.path, parts.query, ""))
    for uri in registered:
        reg = urlsplit(uri)
        if reg.scheme != "http" or reg.hostname != parts.hostname:
            continue
        reg_host = f"[{reg.hostname}]" if ":" in (reg.hostname or "") else reg.hostname
        if urlunsplit((reg.scheme, reg_host, reg.path, reg.query, "")) == without_port:
            return True
    return False
