"""The HTTP listener's own defence against slowloris: a deadline on request heads, connection caps.

aiohttp bounds a request head's size (``max_line_size``, ``max_field_size``) but not the time it
may take to arrive, and accepts any number of connections; one peer trickling a byte a second
on each of a few thousand sockets holds them all for as long as it likes. Two things close that:

- **Head deadline.** aiohttp's keep-alive timer (``keepalive_timeout``) is armed when a
  connection opens and again when a response ends, is not pushed back by arriving bytes, and
  closes the connection only while no request is being handled. So with it set to
  ``header_timeout_s`` a request head must be complete within that long of the connection
  opening (or of the previous response ending), however it trickles, while a response (a
  blocking LL-HLS reload held for three target durations, a large part) takes as long as it
  needs. ``tests/serve/test_http_limits.py`` pins that behaviour, so an aiohttp that changes it
  fails there.
- **Caps at accept time.** ``LimitedTCPSite`` wraps each connection's protocol so a connection
  past ``max_connections`` in all, or ``max_connections_per_address`` from one address (IPv4, or
  the IPv6 /64, as the RTMP ingest counts them), is answered ``503`` and closed before aiohttp
  sees a byte of it.

A reverse proxy in front makes every client one address: raise the per-address cap there.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import cast

from aiohttp import web

from live.ingest.rtmp.admission import Admission, AdmissionLimits

log = logging.getLogger("live.http")

_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 5\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 26\r\n\r\ntoo many connections open\n"
)


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """How long a request head may take and how many connections the HTTP listener holds."""

    header_timeout_s: float = 10.0
    max_connections: int = 4096
    max_connections_per_address: int = 256

    def __post_init__(self) -> None:
        if self.header_timeout_s <= 0:
            raise ValueError("header_timeout_s must be > 0")
        if not 1 <= self.max_connections_per_address <= self.max_connections:
            raise ValueError("max_connections_per_address must be within [1, max_connections]")


class ConnectionGate:
    """Counts open connections, in all and per address; refuses past either cap."""

    def __init__(self, max_connections: int, max_per_address: int) -> None:
        self.max_connections = max_connections
        self._per_address = Admission(AdmissionLimits(max_per_address=max_per_address))
        self.open = 0
        self.refused = 0

    def admit(self, host: str) -> str | None:
        """Count a connection from ``host``; or answer why it is refused (and not counted)."""
        if self.open >= self.max_connections:
            refusal: str | None = f"{self.open} connections open"
        else:
            refusal = self._per_address.admit(host, 0.0)
        if refusal is not None:
            self.refused += 1
            return refusal
        self.open += 1
        return None

    def release(self, host: str) -> None:
        self.open -= 1
        self._per_address.release(host)

    def open_from(self, host: str) -> int:
        return self._per_address.open_from(host)


def _peer_host(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


class _AdmittedProtocol(asyncio.Protocol):
    """Passes a connection to aiohttp's handler if the gate admits it; else 503 and close."""

    __slots__ = ("_gate", "_handler", "_host")

    def __init__(self, handler: asyncio.Protocol, gate: ConnectionGate) -> None:
        self._handler = handler
        self._gate = gate
        self._host: str | None = None  # set once admitted

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        host = _peer_host(transport)
        refusal = self._gate.admit(host)
        if refusal is not None:
            log.debug("http: refused a connection from %s: %s", host, refusal)
            cast(asyncio.Transport, transport).write(_REFUSAL)
            transport.close()
            return
        self._host = host
        self._handler.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._host is None:
            return
        self._gate.release(self._host)
        self._host = None
        self._handler.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._host is not None:
            self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self._handler.eof_received() if self._host is not None else None

    def pause_writing(self) -> None:
        if self._host is not None:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        if self._host is not None:
            self._handler.resume_writing()


def limited_runner(app: web.Application, limits: HttpLimits) -> web.AppRunner:
    """An ``AppRunner`` whose connections must complete each request head within the deadline."""
    return web.AppRunner(app, access_log=None, keepalive_timeout=limits.header_timeout_s)


class LimitedTCPSite(web.TCPSite):
    """``web.TCPSite`` whose accepted connections pass a ``ConnectionGate`` first."""

    __slots__ = ("gate",)

    def __init__(self, runner: web.BaseRunner, host: str | None, port: int, limits: HttpLimits) -> None:
        super().__init__(runner, host, port)
        self.gate = ConnectionGate(limits.max_connections, limits.max_connections_per_address)

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with the runner
        server = self._runner.server
        assert server is not None
        gate = self.gate
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _AdmittedProtocol(server(), gate), self._host, self._port, backlog=self._backlog,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
