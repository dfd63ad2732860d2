"""Who may read /metrics: by default anyone on the HTTP port (as `loadgen run` scrapes it);
`--metrics-listen` moves it to another address, `--metrics-token` asks for a bearer token."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
import pytest
from live.cli import _serve_settings as serve_settings
from live.cli import build_parser
from live.config import ServeSettings
from live.serve import Platform

TOKEN = "metrics-token-0123456789"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _status(url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        await response.read()
        return response.status


async def test_by_default_metrics_are_on_the_http_port_without_a_token(tmp_path: Path) -> None:
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path)
    async with Platform(settings) as platform:
        assert platform.ports.metrics == platform.ports.http
        assert await _status(f"http://127.0.0.1:{platform.ports.http}/metrics") == 200


async def test_metrics_can_listen_on_another_address_and_leave_the_http_port(tmp_path: Path) -> None:
    port = _free_port()
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path,
                             metrics_listen=("127.0.0.1", port))
    async with Platform(settings) as platform:
        assert platform.ports.metrics == port != platform.ports.http
        assert await _status(f"http://127.0.0.1:{port}/metrics") == 200
        assert await _status(f"http://127.0.0.1:{platform.ports.http}/metrics") == 404
        assert await _status(f"http://127.0.0.1:{platform.ports.http}/api/v1/streams") == 200


@pytest.mark.parametrize("elsewhere", [False, True])
async def test_a_metrics_token_is_required_when_set(tmp_path: Path, elsewhere: bool) -> None:
    listen = ("127.0.0.1", _free_port()) if elsewhere else None
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path,
                             metrics_listen=listen, metrics_token=TOKEN)
    async with Platform(settings) as platform:
        url = f"http://127.0.0.1:{platform.ports.metrics}/metrics"
        assert await _status(url) == 401
        assert await _status(url, "not-" + TOKEN) == 401
        assert await _status(url, TOKEN) == 200


def test_the_cli_reads_the_metrics_address_and_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "metrics.token"
    token_file.write_text(TOKEN + "\n")
    args = build_parser().parse_args(
        ["serve", "--metrics-listen", "[::1]:9100", "--metrics-token", f"@{token_file}",
         "--chat-rate-store", "redis://127.0.0.1:6379/0"])
    settings = serve_settings(args)
    assert settings.metrics_listen == ("::1", 9100) and settings.metrics_token == TOKEN
    assert settings.chat_rate_store == "redis://127.0.0.1:6379/0"
    monkeypatch.setenv("LIVETWIN_METRICS_TOKEN", TOKEN)
    assert serve_settings(build_parser().parse_args(["serve"])).metrics_token == TOKEN
    monkeypatch.setenv("LIVETWIN_METRICS_TOKEN", "short")
    with pytest.raises(ValueError, match="at least 16"):
        serve_settings(build_parser().parse_args(["serve"]))
    monkeypatch.delenv("LIVETWIN_METRICS_TOKEN")
    plain = serve_settings(build_parser().parse_args(["serve"]))
    assert plain.metrics_listen is None and plain.metrics_token is None and plain.chat_rate_store is None
    for bad in (["--metrics-listen", "9100"], ["--chat-rate-store", "nats://x:1"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["serve", *bad])
