"""`live serve`'s SRT options: on by default at 9000 (skipped with a warning when that port is
taken), any port with --srt-port (then a taken port is an error), off with --srt-port off."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
from live.cli import _serve_settings, build_parser
from live.config import ServeSettings
from live.ingest.srt import libsrt
from live.serve import Platform

try:
    libsrt.load()
    HAVE_LIBSRT = True
except libsrt.SrtUnavailable:
    HAVE_LIBSRT = False


def settings_for(*argv: str) -> ServeSettings:
    return _serve_settings(build_parser().parse_args(["serve", *argv]))


def test_srt_is_on_at_9000_by_default_and_optional() -> None:
    settings = settings_for()
    assert (settings.srt_port, settings.srt_port_required) == (9000, False)
    assert (settings.srt_latency_ms, settings.srt_passphrase) == (120, None)


@pytest.mark.parametrize(("argv", "port", "required"), [
    (("--srt-port", "0"), 0, True),
    (("--srt-port", "9100"), 9100, True),
    (("--srt-port", "off"), None, False),
])
def test_an_explicit_srt_port_is_required_and_off_turns_it_off(
        argv: tuple[str, ...], port: int | None, required: bool) -> None:
    settings = settings_for(*argv)
    assert (settings.srt_port, settings.srt_port_required) == (port, required)


@pytest.mark.parametrize("argv", [("--srt-passphrase", "short"), ("--srt-latency-ms", "-1"),
                                  ("--srt-port", "70000")])
def test_bad_srt_options_are_refused_by_the_parser(argv: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit):
        settings_for(*argv)


@pytest.mark.skipif(not HAVE_LIBSRT, reason="libsrt1.5-openssl is not installed")
async def test_a_taken_default_port_serves_without_srt_and_a_taken_explicit_one_fails(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "live.serve")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        base = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path,
                             srt_port=port, srt_port_required=False)
        async with Platform(base) as platform:
            assert platform.srt is None and platform.ports.srt == 0
        assert "SRT ingest off" in caplog.text
        required = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path,
                                 srt_port=port)
        with pytest.raises(OSError):
            async with Platform(required):
                pass
