"""The log filter `live serve` installs: what it redacts, and that it reaches library loggers."""

from __future__ import annotations

import logging

import pytest
from live.redaction import REDACTED, redact, secrets_redacted


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("< GET /chat/lobby?token=s3cr3t-Tok_en HTTP/1.1", "s3cr3t-Tok_en"),
        ("< GET /chat/lobby?after=3&token=s3cr3t HTTP/1.1", "s3cr3t"),
        ('< TEXT \'{"type": "auth", "token": "s3cr3t-token"}\' [39 bytes]', "s3cr3t-token"),
        ('< TEXT \'{"type": "auth", "token": "s3cr3t...tail"\' [99 bytes]', "s3cr3t"),
        ('{"password": "hunter2 hunter2"}', "hunter2"),
        ('{"stream_key": "live_abcdef"}', "live_abcdef"),
        ("Authorization: Bearer abc.DEF-123", "abc.DEF-123"),
        ("GET /metrics?metrics_token=m3tr1cs", "m3tr1cs"),
        ("< Cookie: livetwin_csrf=c5rf-Tok; livetwin_session=s3ss10n_Tok-en", "s3ss10n_Tok-en"),
        ("< Cookie: livetwin_session=s3ss10n; theme=dark", "s3ss10n"),
        ("< Cookie: livetwin_csrf=c5rf-Tok", "c5rf-Tok"),
    ],
)
def test_tokens_passwords_and_keys_are_redacted(line: str, secret: str) -> None:
    redacted = redact(line)
    assert secret not in redacted and REDACTED in redacted


def test_lines_without_secrets_are_left_as_they_are() -> None:
    line = "< GET /chat/lobby?after=12 HTTP/1.1"
    assert redact(line) == line


def test_the_filter_redacts_records_of_library_loggers_for_every_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with secrets_redacted(), caplog.at_level(logging.DEBUG):
        logging.getLogger("websockets.server").debug("< GET %s HTTP/1.1", "/chat/x?token=abcdef")
        logging.getLogger("live.chat").info("plain %s", "words")
    first, second = caplog.records
    assert first.getMessage() == f"< GET /chat/x?token={REDACTED} HTTP/1.1" and not first.args
    assert second.getMessage() == "plain words"
    logging.getLogger("websockets.server").warning("after: token=%s", "?token=visible")
    assert "visible" in caplog.records[-1].getMessage()  # removed again with the platform
