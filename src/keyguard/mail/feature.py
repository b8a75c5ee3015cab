"""What the mail feature registers: nothing on the HTTP side (its page is the account's)."""

from __future__ import annotations

from keyguard.feature import Feature

FEATURE = Feature(name="mail")
