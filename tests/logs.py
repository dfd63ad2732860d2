"""Log capture for the "secrets never logged" tests: every logger at DEBUG, records as text."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def every_logger_at_debug() -> Iterator[None]:
    """Root and every logger made so far (websockets', aiohttp's, ours) at DEBUG, then restored."""
    loggers = [logging.root, *(logging.getLogger(name) for name in list(logging.root.manager.loggerDict))]
    for name in ("websockets.server", "websockets.client", "aiohttp.access", "aiohttp.server"):
        loggers.append(logging.getLogger(name))
    levels = [(logger, logger.level, logger.disabled) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
    try:
        yield
    finally:
        for logger, level, disabled in levels:
            logger.setLevel(level)
            logger.disabled = disabled


def logged_text(records: list[logging.LogRecord]) -> str:
    """What any handler could write: each message, its arguments' reprs and any traceback."""
    formatter = logging.Formatter("%(name)s %(message)s")
    return "\n".join(formatter.format(record) + repr(record.args) for record in records)
