"""A short human description of a User-Agent ("Chrome on Linux") for sessions and alerts.

Deliberately small: it names the common browsers and systems and falls back to "Unknown
browser"; the full header is kept beside it for anyone who needs more.
"""

from __future__ import annotations

from keyguard.i18n import translate

# Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari".
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("HeadlessChrome/", "Chrome (headless)"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def describe(user_agent: str) -> str:
    browser = next((name for mark, name in _BROWSERS if mark in user_agent), None)
    browser = browser or translate("useragent.unknown")
    system = next((name for mark, name in _SYSTEMS if mark in user_agent), None)
    return translate("useragent.on", browser=browser, system=system) if system else browser
