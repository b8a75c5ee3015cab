"""What a long-running server does with the objects it made while starting.

Imported modules, the settings, the runtime and the app are made once and live until
the process ends; the garbage collector would still walk them on every full
collection, and a forked worker would copy every page it touched doing so.
``gc.freeze()`` moves them out of its sight (Python's documentation recommends it for
exactly this, before forking too). Only for the real server process: in a test process
frozen objects would never be freed.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Collect what starting left behind, then keep the rest out of later collections."""
    gc.collect()
    gc.freeze()


__all__ = ["freeze_startup_objects"]
