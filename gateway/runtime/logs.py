"""Structured logging: readable on a terminal, JSON lines otherwise (journald)."""

from __future__ import annotations

import logging
import sys

# structlog.dev imports `rich` when it is installed (a test tool pulls it into the venv) only to
# draw coloured tracebacks on a terminal: some 3 MB resident in a daemon that never uses it.
# Hide it while structlog is first imported; the console renderer then prints plain tracebacks.
# Later imports of rich (by anything else) are unaffected.
_HIDE_RICH = "structlog" not in sys.modules and "rich" not in sys.modules
if _HIDE_RICH:
    sys.modules["rich"] = None  # type: ignore[assignment]  # makes `import rich` raise ImportError
try:
    import structlog
finally:
    if _HIDE_RICH:
        del sys.modules["rich"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


def configure(level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog and the standard library's logging to one stream (stderr).

    ``fmt``: "console" (colours, aligned), "json" (one object per line), or "auto" — console
    when stderr is a terminal, JSON otherwise (under systemd the journal gets JSON lines).
    """
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer = (structlog.processors.JSONRenderer() if use_json
                else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.StackInfoRenderer(),
                    structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Libraries (asyncua, pymodbus, aiohttp) log through the standard library: route them
    # to the same stream and format, and keep their chatter at warning unless debugging.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processor=renderer, foreign_pre_chain=shared))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level] if level == "debug" else logging.WARNING)


def get_logger(name: str, **context) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name).bind(**context)
