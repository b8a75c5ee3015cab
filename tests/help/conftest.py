"""The help article's tests: its webhook receivers are run against real deliveries, so
the shared webhook fixtures (loopback allowed, a scriptable receiver, the worker)."""

import sys
from pathlib import Path

from webhook_fixtures import dns, receiver, runtime, settings, worker

# Let the test modules import the sibling `help_article` module.
sys.path.insert(0, str(Path(__file__).parent))

__all__ = ["dns", "receiver", "runtime", "settings", "worker"]
