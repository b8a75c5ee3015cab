"""Settings and runtime start-up for the commands, with configuration errors made plain.

A wrong ``KEYGUARD_*`` value is the operator's to fix, not a bug: the commands report it
as one line (``keyguard <command>: <message>``, exit 2) instead of a traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from keyguard.settings import Settings

if TYPE_CHECKING:
    from keyguard.runtime import Runtime
    from keyguard.server.access_log import AccessLog


class ConfigurationError(Exception):
    """Keyguard cannot run with this configuration; the message says why."""


# SQLAlchemy's own message quotes the URL, password included.
BAD_DATABASE_URL = (
    "KEYGUARD_DATABASE_URL is not a database URL Keyguard can use "
    "(sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER:PASSWORD@HOST/DB)"
)


def _describe(error: ValidationError) -> str:
    # Names the setting and the rule, never the value (it may be a secret).
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        field = str(item["loc"][0]) if item["loc"] else ""
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"KEYGUARD_{field.upper()}: {message}" if field else message)
    return "; ".join(parts)


def load_settings(data: Path | None = None, **overrides: Any) -> Settings:
    """``KEYGUARD_*`` settings, with the command's options (those given) on top."""
    values = {k: v for k, v in overrides.items() if v is not None}
    if data is not None:
        values["data_dir"] = data
    try:
        return Settings(**values)
    except ValidationError as error:
        raise ConfigurationError(_describe(error)) from None


def sqlite_database_path(settings: Settings) -> Path | None:
    """The SQLite database file of these settings; None for another database."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(settings.effective_database_url)
    except (ArgumentError, ValueError):  # ValueError: e.g. a port that is not a number
        raise ConfigurationError(BAD_DATABASE_URL) from None
    if url.get_backend_name() != "sqlite":
        return None
    # An in-memory database (no file) is never an existing Keyguard database.
    return Path(url.database or ":memory:")


async def start_runtime(settings: Settings) -> Runtime:
    """``Runtime.start``; a setting it cannot work with (no master key for a shared
    database, a malformed master key, database or Redis URL) is a ``ConfigurationError``."""
    from sqlalchemy.exc import ArgumentError

    from keyguard.runtime import Runtime

    sqlite_database_path(settings)  # a URL that does not parse: said plainly, first
    try:
        return await Runtime.start(settings)
    except ArgumentError:
        raise ConfigurationError(BAD_DATABASE_URL) from None
    except ValueError as error:
        raise ConfigurationError(str(error)) from None


def existing_database_settings(data: Path | None, *, hint: str = "") -> Settings:
    """Settings for a command that reads what exists. No database file means nothing to
    read, and starting a runtime would create one (and a master key) instead."""
    settings = load_settings(data)
    path = sqlite_database_path(settings)
    if path is not None and not path.is_file():
        raise ConfigurationError(f"no Keyguard database at {path}{hint}")
    return settings


def server_logs(settings: Settings) -> AccessLog | None:
    """Configure the process's log (``KEYGUARD_LOG_LEVEL``, ``KEYGUARD_LOG_FORMAT``) and
    return the access log for the server, or None when the level hides it."""
    from keyguard.server import logs
    from keyguard.server.access_log import AccessLog

    logs.configure(settings.log_level, settings.log_format)
    if logging.getLogger().isEnabledFor(logging.INFO):
        return AccessLog(log_format=settings.log_format)
    return None
