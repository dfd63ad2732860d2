"""`Platform` start-up and shut-down: whatever opened is closed, in reverse order, even on failure."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from live.api.repository import Repository
from live.chat.broker import Broker
from live.config import ChannelSeed, ServeSettings
from live.serve import Platform


class Spies:
    """Records the repository and broker the platform opens, and the order things are closed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import live.serve as serve

        self.closed: list[str] = []
        self.fail_closing: set[str] = set()
        self.repo: Repository | None = None
        self.broker: Broker | None = None
        real_open_repository = serve.open_repository
        real_open_broker = serve.open_broker

        async def open_repository(database: str | None, data_dir: Path) -> Repository:
            repo = await real_open_repository(database, data_dir)
            self.repo = repo
            self._record_close(repo, "repository")
            return repo

        def open_broker(url: str | None, history_window: int = 1000) -> Broker:
            broker = real_open_broker(url, history_window)
            self.broker = broker
            self._record_close(broker, "broker")
            return broker

        monkeypatch.setattr(serve, "open_repository", open_repository)
        monkeypatch.setattr(serve, "open_broker", open_broker)

    def _record_close(self, resource: Repository | Broker, name: str) -> None:
        close = resource.close

        async def recorded() -> None:
            self.closed.append(name)
            await close()
            if name in self.fail_closing:
                raise RuntimeError(f"{name} failed to close")

        resource.close = recorded  # type: ignore[method-assign]


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> Spies:
    return Spies(monkeypatch)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _settings(tmp_path: Path, rtmp: int, http: int, chat: int) -> ServeSettings:
    return ServeSettings(
        host="127.0.0.1",
        rtmp_port=rtmp,
        http_port=http,
        chat_port=chat,
        data_dir=tmp_path,
        channels=(ChannelSeed("demo", "demo_key_1"),),
    )


def _other_tasks() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]


@pytest.mark.parametrize("taken", ["chat", "http"])
async def test_a_port_already_taken_closes_everything_opened_before_it(
    tmp_path: Path, spies: Spies, taken_port: int, taken: str
) -> None:
    rtmp, http, chat = _free_ports(3)
    if taken == "chat":
        chat = taken_port
    else:
        http = taken_port
    before = _other_tasks()
    with pytest.raises(OSError):
        async with Platform(_settings(tmp_path, rtmp, http, chat)):
            pytest.fail("the platform started on a taken port")
    assert spies.repo is not None and spies.broker is not None
    assert spies.closed == ["broker", "repository"]  # reverse order: the repository is opened first
    assert _port_is_free(rtmp), "the RTMP listener outlived the failed start"
    if taken == "chat":
        assert _port_is_free(http), "the HTTP site outlived the failed start"
    await asyncio.sleep(0)
    assert _other_tasks() <= before, "tasks outlived the failed start"


async def test_a_bad_chat_broker_url_fails_start_up_and_closes_the_repository_and_listeners(
    tmp_path: Path, spies: Spies
) -> None:
    rtmp, http, chat = _free_ports(3)
    settings = replace(_settings(tmp_path, rtmp, http, chat), chat_broker="redis://127.0.0.1:6379")
    with pytest.raises(ValueError, match="nats://"):
        async with Platform(settings):
            pytest.fail("the platform started with a broker it cannot open")
    assert spies.closed == ["repository"]
    assert _port_is_free(rtmp) and _port_is_free(http)


async def test_a_clean_shut_down_closes_in_reverse_order_and_frees_every_port(
    tmp_path: Path, spies: Spies
) -> None:
    rtmp, http, chat = _free_ports(3)
    before = _other_tasks()
    async with Platform(_settings(tmp_path, rtmp, http, chat)) as platform:
        assert platform.ports.rtmp == rtmp and platform.ports.http == http and platform.ports.chat == chat
        assert not _port_is_free(rtmp) and not _port_is_free(chat)
    assert spies.closed == ["broker", "repository"]
    assert all(_port_is_free(port) for port in (rtmp, http, chat))
    assert platform.chat is None and platform.rtmp is None and platform.repo is None and platform.app is None
    await asyncio.sleep(0)
    assert _other_tasks() <= before


async def test_a_resource_that_fails_to_close_does_not_keep_the_others_open(
    tmp_path: Path, spies: Spies
) -> None:
    rtmp, http, chat = _free_ports(3)
    spies.fail_closing.add("broker")
    before = _other_tasks()
    with pytest.raises(RuntimeError, match="broker failed to close"):
        async with Platform(_settings(tmp_path, rtmp, http, chat)):
            pass
    assert spies.closed == ["broker", "repository"]
    assert all(_port_is_free(port) for port in (rtmp, http, chat))
    await asyncio.sleep(0)
    assert _other_tasks() <= before
