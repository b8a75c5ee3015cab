"""Display names for uploaded files. Files are stored under generated ids, never these.

The name a browser sends is untrusted text: it may hold directories (``../../etc/passwd``,
``C:\\evil``), control or bidi characters that make a name lie, or megabytes of text.
It is only ever shown back, so it is reduced to a harmless base name.
"""

from __future__ import annotations

import unicodedata

MAX_NAME_BYTES = 200
FALLBACK = "photo"


def display_name(raw: str | None) -> str:
    """A safe base name for display.

    >>> display_name("../../etc/passwd")
    'passwd'
    """
    if not raw:
        return FALLBACK
    name = unicodedata.normalize("NFC", raw)
    # Both separators: Windows browsers send "C:\\Users\\me\\a.jpg".
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    name = name.strip().strip(".").strip()
    encoded = name.encode()
    if len(encoded) > MAX_NAME_BYTES:
        name = encoded[:MAX_NAME_BYTES].decode(errors="ignore")
    return name or FALLBACK


__all__ = ["FALLBACK", "MAX_NAME_BYTES", "display_name"]
