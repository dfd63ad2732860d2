"""The HTTP listener against slowloris: request heads have a deadline, connections have caps,
and neither touches ordinary requests or responses held long (LL-HLS blocking reloads)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from live.config import ServeSettings
from live.http_limits import ConnectionGate, HttpLimits, LimitedTCPSite, limited_runner
from live.serve import Platform

HEAD = b"GET /api/v1/streams HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n\r\n"


async def _closed_after(
    port: int, preamble: bytes, trickle: bytes, every_s: float, give_up_s: float
) -> float | None:
    """Send ``preamble`` then ``trickle`` a byte every ``every_s``; answers the seconds until the
    server closed the connection (from the first trickled byte), or None if it had not after
    ``give_up_s``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if preamble:
            writer.write(preamble)
            await reader.readuntil(b"\r\n\r\n")  # the response head; its body is read below
        start = time.monotonic()
        for byte in trickle:
            writer.write(bytes([byte]))
            try:
                await writer.drain()
                data = await asyncio.wait_for(reader.read(65536), every_s)
            except TimeoutError:
                data = None
            except ConnectionError:
                return time.monotonic() - start
            if data == b"":
                return time.monotonic() - start
            if time.monotonic() - start > give_up_s:
                return None
        return None
    finally:
        writer.close()


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    limits = HttpLimits(header_timeout_s=2.0, max_connections=20, max_connections_per_address=4)
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path, http_limits=limits)
    async with Platform(settings) as running:
        yield running


async def test_a_request_head_trickled_a_byte_a_second_is_cut_at_the_deadline(platform: Platform) -> None:
    closed = await _closed_after(platform.ports.http, b"", HEAD, every_s=1.0, give_up_s=8.0)
    assert closed is not None, "a trickled request head was still open after 8 s (deadline 2 s)"
    assert 1.0 <= closed <= 4.0


async def test_a_second_request_trickled_on_a_kept_alive_connection_is_cut_too(platform: Platform) -> None:
    body_and_head = HEAD  # the first request is answered at once; the second one trickles
    closed = await _closed_after(platform.ports.http, HEAD, body_and_head, every_s=1.0, give_up_s=8.0)
    assert closed is not None and closed <= 4.0


async def test_connections_past_the_per_address_cap_are_answered_503(platform: Platform) -> None:
    port = platform.ports.http
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        refusal = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert refusal.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 5" in refusal
        held[0][1].close()
        await held[0][1].wait_closed()
        await asyncio.sleep(0.1)
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{port}/api/v1/streams") as response:
            assert response.status == 200  # a freed slot is usable again
    finally:
        for _, writer in held:
            writer.close()


async def test_ordinary_requests_on_a_kept_alive_connection_are_served(platform: Platform) -> None:
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as http:
        for _ in range(20):
            async with http.get(f"http://127.0.0.1:{platform.ports.http}/api/v1/streams") as response:
                assert response.status == 200
                await response.read()


@dataclass
class _Held:
    port: int
    gate: ConnectionGate


@pytest.fixture
async def held_response_server() -> AsyncIterator[_Held]:
    """A handler that answers after 3 s, as a blocking LL-HLS reload may (3 target durations)."""

    async def blocking(request: web.Request) -> web.Response:
        await asyncio.sleep(3.0)
        return web.Response(text="held")

    app = web.Application()
    app.router.add_get("/held", blocking)
    limits = HttpLimits(header_timeout_s=1.0, max_connections=3, max_connections_per_address=3)
    runner = limited_runner(app, limits)
    await runner.setup()
    site = LimitedTCPSite(runner, "127.0.0.1", 0, limits)
    await site.start()
    try:
        yield _Held(site.port, site.gate)
    finally:
        await runner.cleanup()


async def test_a_response_held_past_the_head_deadline_is_not_cut(held_response_server: _Held) -> None:
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as http:
        for _ in range(2):  # the second on the same connection: the deadline restarts after each
            async with http.get(f"http://127.0.0.1:{held_response_server.port}/held") as response:
                assert response.status == 200 and await response.text() == "held"


async def test_connections_past_the_total_cap_are_refused(held_response_server: _Held) -> None:
    port = held_response_server.port
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 503 ")
        writer.close()
        assert held_response_server.gate.open == 3 and held_response_server.gate.refused == 1
    finally:
        for _, held_writer in held:
            held_writer.close()


def test_the_gate_counts_in_all_and_per_address_and_ipv6_by_64() -> None:
    gate = ConnectionGate(max_connections=3, max_per_address=2)
    assert gate.admit("2001:db8::1") is None and gate.admit("2001:db8::2") is None
    assert gate.admit("2001:db8::3") is not None  # the same /64
    assert gate.admit("192.0.2.1") is None
    assert gate.admit("192.0.2.2") == "3 connections open"
    gate.release("2001:db8::1")
    assert gate.open == 2 and gate.open_from("2001:db8::ffff") == 1 and gate.refused == 2


def test_limits_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        HttpLimits(header_timeout_s=0)
    with pytest.raises(ValueError):
        HttpLimits(max_connections=10, max_connections_per_address=11)
