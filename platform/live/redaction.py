"""Secrets never reach the log: a `logging.Filter` that redacts them from every record.

The platform's own loggers never format a password, session token or stream key, but libraries
log what they are given: websockets writes the request line (``GET /chat/x?token=...``) and every
frame (``{"type": "auth", "token": "..."}``) at DEBUG, and aiohttp logs request lines. So
`live serve` installs ``SecretRedactor`` on every logger the platform and its libraries create
(a logger's filters see only the records logged on that very logger, not its children's, hence
one per logger rather than one on the root), and the redacted text is what every handler gets.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

#: What a secret is replaced with.
REDACTED = "[redacted]"
#: Loggers whose records may carry a request line, a header or a frame.
LOGGER_PREFIXES = ("live", "websockets", "aiohttp", "asyncpg", "nats")
#: Named explicitly so they exist (and are filtered) before the library first logs on them.
KNOWN_LOGGERS = (
    "live", "live.api", "live.chat", "live.chat.nats", "live.ingest.rtmp", "live.origin", "live.serve",
    "websockets", "websockets.server", "websockets.client",
    "aiohttp", "aiohttp.access", "aiohttp.server", "aiohttp.web", "aiohttp.internal", "aiohttp.client",
)

_SECRET_NAMES = r"token|ticket|password|old_password|new_password|stream_key|key|metrics_token"
_PATTERNS = (
    # query strings and form bodies: ?token=abc&after=3
    (re.compile(rf"(?i)([?&;](?:{_SECRET_NAMES})=)[^&;#\s\"'<>]+"), rf"\g<1>{REDACTED}"),
    # JSON members: "token": "abc" (also a frame cut short by a library's repr)
    (re.compile(rf"(?i)(\"(?:{_SECRET_NAMES})\"\s*:\s*\")[^\"]*"), rf"\g<1>{REDACTED}"),
    # Authorization: Bearer abc
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-]+"), rf"\g<1>{REDACTED}"),
    # Cookie: livetwin_session=abc; livetwin_csrf=def (the web pages' session, live.api.websession)
    (re.compile(r"(?i)(livetwin_(?:session|csrf)=)[^;,\s\"'<>]+"), rf"\g<1>{REDACTED}"),
)
_QUICK = re.compile(rf"(?i)(?:{_SECRET_NAMES}|bearer|livetwin_)")


def redact(text: str) -> str:
    """``text`` with every token, password and key value replaced by ``REDACTED``."""
    if _QUICK.search(text) is None:
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class SecretRedactor(logging.Filter):
    """Rewrites a record's message with its secrets redacted (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let logging report it as it would
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def _platform_loggers(extra: Iterable[str]) -> list[logging.Logger]:
    names = set(KNOWN_LOGGERS) | set(extra)
    names.update(name for name in logging.root.manager.loggerDict
                 if name.split(".", 1)[0] in LOGGER_PREFIXES)
    return [logging.getLogger(name) for name in sorted(names)]


def install_redaction(extra: Iterable[str] = ()) -> SecretRedactor:
    """Put one ``SecretRedactor`` on every platform and library logger that exists (and the known
    ones, made now); answers it so ``remove_redaction`` can take it off again."""
    redactor = SecretRedactor()
    for logger in _platform_loggers(extra):
        logger.addFilter(redactor)
    return redactor


def remove_redaction(redactor: SecretRedactor) -> None:
    for logger in _platform_loggers(()):
        logger.removeFilter(redactor)


@contextmanager
def secrets_redacted() -> Iterator[SecretRedactor]:
    redactor = install_redaction()
    try:
        yield redactor
    finally:
        remove_redaction(redactor)
