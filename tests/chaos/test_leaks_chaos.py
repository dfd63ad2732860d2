"""No leak across 20 fault cycles: `live serve`'s descriptors and memory after NATS and PostgreSQL
crashes come back to where they were (issue 23).

One `live serve` uses a private PostgreSQL (API) and a private nats-server (chat). Each cycle
SIGKILLs and restarts NATS, then PostgreSQL, then proves both paths work again (a chat message
sent and read back, an API write), so every reconnect path runs 20 times. Descriptors are
counted in /proc/PID/fd and RSS read from /proc/PID/status after a warm-up cycle and after the
last; the JSON timeline keeps every cycle's numbers.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from loadgen.faults import process
from loadgen.faults.services import PrivateNats, PrivatePostgres
from loadgen.faults.timeline import Timeline

from .live_serve import LiveServe, call

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.nats]

CYCLES = 20
PASSWORD = "correct horse battery"
MAX_FD_GROWTH = 8  # a pool connection or two may be open or not at the moment of reading
MAX_RSS_GROWTH_KIB = 24 * 1024


async def _until_ok(what: str, attempt: object, deadline_s: float = 20.0) -> float:
    """Retry ``attempt`` (an async callable answering True on success); answers seconds taken."""
    began = time.monotonic()
    while True:
        try:
            if await attempt():  # type: ignore[operator]
                return time.monotonic() - began
        except Exception:
            pass
        if time.monotonic() - began > deadline_s:
            raise AssertionError(f"{what} did not work again within {deadline_s:g} s of the restart")
        await asyncio.sleep(0.1)


async def test_no_descriptor_or_memory_leak_across_20_nats_and_postgres_crashes(
    nats_server: PrivateNats, postgres: PrivatePostgres, tmp_path: Path
) -> None:
    timeline = Timeline("leaks-20-cycles")
    serve = LiveServe(tmp_path, "--database", postgres.url, "--chat-broker", nats_server.url)
    samples: list[dict[str, int]] = []
    try:
        serve.start()
        base = serve.base
        assert call(base, "POST", "/accounts", {"username": "leaky", "password": PASSWORD})[0] == 201
        token = call(base, "POST", "/sessions", {"username": "leaky", "password": PASSWORD})[1]["token"]
        assert call(base, "POST", "/channels", {"name": "leakroom"}, token)[0] == 201
        sent = 0

        async def chat_round_trip() -> bool:
            nonlocal sent
            url = f"ws://127.0.0.1:{serve.chat}/chat/leakroom"
            async with connect(url, open_timeout=3, compression=None) as ws:
                await ws.send(json.dumps({"type": "auth", "token": token}))
                sent += 1
                text = f"cycle message {sent}"
                await ws.send(json.dumps({"type": "send", "text": text}))
                async with asyncio.timeout(3):
                    async for raw in ws:
                        frame = json.loads(raw)
                        if frame["type"] == "messages" and any(m["text"] == text for m in frame["messages"]):
                            return True
                        if frame["type"] == "error" and frame["code"] != "auth_required":
                            return False
            return False

        async def api_write() -> bool:
            status, _ = await asyncio.to_thread(call, base, "PATCH", "/channels/leakroom",
                                                {"title": f"t{time.monotonic()}"}, token)
            return status == 200

        recoveries: dict[str, list[float]] = {"chat": [], "api": []}
        for cycle in range(CYCLES + 1):
            await asyncio.to_thread(process.kill, nats_server, 0.2, timeline if cycle < 2 else None)
            recoveries["chat"].append(await _until_ok("chat through NATS", chat_round_trip))
            await asyncio.to_thread(process.kill, postgres, 0.2, timeline if cycle < 2 else None)
            recoveries["api"].append(await _until_ok("the API on PostgreSQL", api_write))
            pid = serve.pid
            assert pid is not None, "live serve died"
            used = process.resources(pid)
            samples.append({"cycle": cycle, "fds": used.fds, "rss_kib": used.rss_kib})
            timeline.note("cycle", **samples[-1])
        base_sample, last = samples[1], samples[-1]  # cycle 0 warms every path up
        timeline.result(
            fds_after_warmup=base_sample["fds"], fds_after_20=last["fds"],
            rss_kib_after_warmup=base_sample["rss_kib"], rss_kib_after_20=last["rss_kib"],
            chat_recovery_s_max=round(max(recoveries["chat"]), 3),
            api_recovery_s_max=round(max(recoveries["api"]), 3),
            nats_pid_changes=nats_server.starts - 1,
        )
    finally:
        serve.close()
        timeline.write()
    assert last["fds"] - base_sample["fds"] <= MAX_FD_GROWTH, samples
    assert last["rss_kib"] - base_sample["rss_kib"] <= MAX_RSS_GROWTH_KIB, samples
