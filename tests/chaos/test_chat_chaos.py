"""Chat keeps its promise through a NATS crash, a NATS hang and a chat-node crash (issue 23).

Two chat nodes (own processes) share a room through a private nats-server. Readers stay
connected throughout and come back with ``?after=`` (to the other node when theirs is gone);
senders talk on both nodes. The promise: every message acknowledged to its sender (echoed back
to it with an id) reaches every reader exactly once and in id order, with no id missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from loadgen.faults import process
from loadgen.faults.services import ChildService, PrivateNats, free_port
from loadgen.faults.timeline import Timeline

from .harness import PYTHON, ROOT, child_env

pytestmark = [pytest.mark.slow, pytest.mark.nats]

ROOM = "chaosroom"
SENDERS = ("alice", "bob")
READERS = 4
SEND_INTERVAL_S = 0.05


async def _open(port: int, after: int, token: str | None,
                host: str = "127.0.0.1") -> tuple[ClientConnection, dict[str, Any]]:
    url = f"ws://{host}:{port}/chat/{ROOM}" + (f"?after={after}" if after else "")
    ws = await connect(url, compression=None, open_timeout=3, max_queue=None)
    welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert welcome["type"] == "welcome", welcome
    if token:
        await ws.send(json.dumps({"type": "auth", "token": token}))
    return ws, welcome


class Member:
    """A chat client that keeps every message it saw and always comes back with ``?after=``."""

    def __init__(self, name: str, ports: list[int], home: int, timeline: Timeline,
                 token: str | None = None, hosts: dict[int, str] | None = None) -> None:
        self.name, self.ports, self.home, self.timeline, self.token = name, ports, home, timeline, token
        self.hosts = hosts or {}  # port -> address, where a node does not listen on loopback
        self.ids: list[int] = []
        self.texts: list[str] = []
        self.acked: dict[str, float] = {}
        self.refused = 0
        self.gaps: list[float] = []
        self.ws: ClientConnection | None = None
        self.authenticated = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        node = self.home
        while not stop.is_set():
            try:
                self.ws, _ = await self._open(node)
                if not self.token:
                    self.authenticated.set()
                async for raw in self.ws:
                    self._frame(json.loads(raw))
            except (OSError, TimeoutError, Exception) as error:
                if stop.is_set():
                    return
                lost_at = time.monotonic()
                self.authenticated.clear()
                self.ws = None
                node = (node + 1) % len(self.ports)  # the other node, then back
                self.timeline.note("chat disconnect", who=self.name, error=type(error).__name__)
                while not stop.is_set():
                    await asyncio.sleep(0.1)
                    try:
                        self.ws, _ = await self._open(node)
                        break
                    except Exception:
                        node = (node + 1) % len(self.ports)
                gap = time.monotonic() - lost_at
                self.gaps.append(gap)
                self.timeline.note("chat reconnect", who=self.name, node=node, gap_s=round(gap, 3))
                if self.ws is not None:
                    with contextlib.suppress(Exception):
                        if not self.token:
                            self.authenticated.set()
                        async for raw in self.ws:
                            self._frame(json.loads(raw))
                    # the inner connection ended too: loop round and reconnect
            finally:
                if self.ws is not None:
                    with contextlib.suppress(Exception):
                        await self.ws.close()

    async def _open(self, node: int) -> tuple[ClientConnection, dict[str, Any]]:
        port = self.ports[node]
        host = self.hosts.get(port, "127.0.0.1")
        return await _open(port, self.ids[-1] if self.ids else 0, self.token, host)

    def _frame(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "authenticated":
            self.authenticated.set()
        elif frame["type"] == "messages":
            for message in frame["messages"]:
                self.ids.append(message["id"])
                self.texts.append(message["text"])
                if message["user"] == self.name:
                    self.acked.setdefault(message["text"], time.monotonic())
        elif frame["type"] == "error":
            self.refused += 1


async def _talk(sender: Member, stop: asyncio.Event, sent: list[str]) -> None:
    k = 0
    while not stop.is_set():
        await asyncio.sleep(SEND_INTERVAL_S)
        if sender.ws is None or not sender.authenticated.is_set():
            continue
        text = f"{sender.name} {k}"
        with contextlib.suppress(Exception):
            await sender.ws.send(json.dumps({"type": "send", "text": text}))
            sent.append(text)
            k += 1


async def test_acknowledged_messages_reach_every_reader_once_in_order_across_nats_and_node_crashes(
    nats_server: PrivateNats, tmp_path: Path
) -> None:
    timeline = Timeline("chat-nats-kill-hang-node-kill")
    ports = [free_port(), free_port()]
    nodes = [ChildService(f"chat-node-{i}", [PYTHON, str(ROOT / "tests/chaos/chat_node.py"), "127.0.0.1",
                                           str(port), nats_server.url, ROOM, *SENDERS],
                          tmp_path / f"chat-node-{i}.log", ports=[port], env=child_env())
             for i, port in enumerate(ports)]
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        for node in nodes:
            node.start()
        readers = [Member(f"reader{i}", ports, i % 2, timeline) for i in range(READERS)]
        senders = [Member(name, ports, i % 2, timeline, token=f"token-{name}")
                   for i, name in enumerate(SENDERS)]
        sent: list[str] = []
        tasks = [asyncio.create_task(m.run(stop)) for m in (*readers, *senders)]
        tasks += [asyncio.create_task(_talk(s, stop, sent)) for s in senders]
        await asyncio.sleep(2)
        nats_restart = await asyncio.to_thread(process.kill, nats_server, 3.0, timeline)
        nats_back = time.monotonic()
        await asyncio.sleep(4)
        await asyncio.to_thread(process.hang, nats_server, 3.0, timeline)
        hang_end = time.monotonic()
        await asyncio.sleep(4)
        await asyncio.to_thread(process.kill, nodes[0], 2.0, timeline)
        await asyncio.sleep(4)
        stop.set()
        for sender in senders:
            if sender.ws is not None:
                with contextlib.suppress(Exception):
                    await sender.ws.close()
        # the readers are still connected: give them the tail, then close
        acked = {text for s in senders for text in s.acked}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(acked <= set(r.texts) for r in readers):
            await asyncio.sleep(0.2)
        for reader in readers:
            if reader.ws is not None:
                await reader.ws.close()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)

        def first_ack_after(t: float) -> float | None:
            after = [at for s in senders for at in s.acked.values() if at >= t]
            return round(min(after) - t, 3) if after else None

        missing = {r.name: sorted(acked - set(r.texts))[:10] for r in readers if acked - set(r.texts)}
        disorder = {r.name: r.ids for r in readers if r.ids != list(range(r.ids[0], r.ids[0] + len(r.ids)))}
        timeline.result(
            sent=len(sent), acknowledged=len(acked), refused=sum(s.refused for s in senders),
            unacknowledged=len(sent) - len(acked), nats_restart_s=round(nats_restart, 3),
            first_ack_after_nats_kill_s=first_ack_after(nats_back),
            first_ack_after_nats_hang_s=first_ack_after(hang_end),
            reader_max_gap_s=round(max((g for r in readers for g in r.gaps), default=0.0), 3),
            readers_missing_acked=missing, readers_out_of_order=list(disorder),
        )
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        for node in nodes:
            node.close()
        timeline.write()
    assert len(acked) > 100, timeline.results
    assert not missing, f"acknowledged messages lost: {missing}"
    assert not disorder, f"readers saw ids out of order, twice or with holes: {list(disorder)}"
    assert timeline.results["first_ack_after_nats_kill_s"] is not None
    assert timeline.results["first_ack_after_nats_kill_s"] < 5.0
