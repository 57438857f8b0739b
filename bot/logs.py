"""Structured logs: JSON when not on a terminal, never a token or a secret."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from aiohttp.http_exceptions import HttpProcessingError

_SECRET_KEYS = re.compile(r"token|secret|password|authorization|api_key|cookie", re.I)
_SECRET_VALUES = re.compile(r"xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|sk-[A-Za-z0-9_-]{8,}")


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask values under secret-sounding keys and anything shaped like a Slack or API token."""
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key):
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = _SECRET_VALUES.sub("***", value)
    return event


def configure(level: str = "INFO", json: bool | None = None) -> None:
    """Configure structlog and the standard library's logging once, at start-up."""
    if json is None:
        json = not sys.stderr.isatty()
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries (aiohttp, slack_sdk, apscheduler) log through the standard library.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                *shared[1:],
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
            foreign_pre_chain=[structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(logging.getLevelName(level.upper()), logging.INFO))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # Alembic narrates every migration step at INFO; operators need only problems.
    for noisy in ("alembic", "alembic.runtime.migration", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class WorldsFault(logging.Filter):
    """aiohttp's server logs a malformed request (a bad request line, a bad header) and a
    client that hangs up mid-request as errors with a traceback. Neither is this process's
    fault, and anyone can cause either: each becomes one warning line saying what happened.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if record.levelno >= logging.ERROR and isinstance(
            error, HttpProcessingError | ConnectionError
        ):
            reason = " ".join(str(error).split())[:200]
            record.msg = f"{record.getMessage()}: {type(error).__name__}: {reason}"
            record.args = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


def demote_worlds_faults() -> None:
    """Install `WorldsFault` on aiohttp's server logger, once."""
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, WorldsFault) for f in server.filters):
        server.addFilter(WorldsFault())
