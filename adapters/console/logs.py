"""Console logging: in a terminal chat the terminal is the conversation, so logs go to a file."""

from __future__ import annotations

import logging
from pathlib import Path

import structlog

LOG_FILE = Path("flywheel.log")
_LOG_HANDLER = "flywheel-console"


def log_to_file(path: Path = LOG_FILE) -> None:
    """Send structlog and standard-library logs to `path`: in a console, the terminal is the
    chat. Keeps the processors already configured (redaction included), rendered as JSON."""
    root = logging.getLogger()
    if any(handler.get_name() == _LOG_HANDLER for handler in root.handlers):
        return
    try:
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        # Nowhere to write: keep the terminal, but only for what needs attention.
        root.setLevel(logging.WARNING)
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        return
    handler.set_name(_LOG_HANDLER)
    formatter = next(
        (
            h.formatter
            for h in root.handlers
            if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter)
        ),
        None,
    )
    if formatter is not None:
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processors=[_as_json(p) for p in formatter.processors],
                foreign_pre_chain=formatter.foreign_pre_chain,
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.handlers[:] = [handler]
    processors = structlog.get_config()["processors"]
    structlog.configure(
        processors=[_as_json(p) for p in processors],
        logger_factory=structlog.PrintLoggerFactory(handler.stream),
    )


def _as_json(processor: structlog.typing.Processor) -> structlog.typing.Processor:
    if isinstance(processor, structlog.dev.ConsoleRenderer):
        return structlog.processors.JSONRenderer()
    return processor
