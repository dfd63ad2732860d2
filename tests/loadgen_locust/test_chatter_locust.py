"""Locust chatters run headless against a real platform's chat server."""

from __future__ import annotations

import asyncio
import csv
import os
import sys
from pathlib import Path

import aiohttp
import pytest
from live.config import ChannelSeed, ServeSettings
from live.serve import Platform

from loadgen.locustfiles.chat_wire import chat_url

pytestmark = [pytest.mark.slow]

LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadgen" / "locustfiles" / "chatter.py"
LOCUST = Path(sys.executable).with_name("locust")


def test_chat_url_targets_the_chat_port_and_carries_the_token() -> None:
    assert chat_url("http://h:1", "demo", "a b", 2) == "ws://h:2/chat/demo?token=a%20b"
    assert chat_url("https://h", "x", None, None) == "wss://h/chat/x"


@pytest.mark.timeout(60)
async def test_locust_chatters_send_and_report_delivery_latency(tmp_path: Path) -> None:
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path / "data",
                             channels=(ChannelSeed("demo", "demo_key_123"),))
    async with Platform(settings) as platform:
        api = f"http://127.0.0.1:{platform.ports.http}/api/v1"
        creds = {"username": "locusty", "password": "correct horse battery"}
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{api}/accounts", json=creds) as resp:
                assert resp.status == 201, await resp.text()
            async with http.post(f"{api}/sessions", json=creds) as resp:
                assert resp.status == 201, await resp.text()
                token = (await resp.json())["token"]
        prefix = tmp_path / "chat"
        env = os.environ | {"LIVETWIN_CHAT_TOKEN": token, "LIVETWIN_CHAT_RATE": "1",
                            "LIVETWIN_CHAT_PORT": str(platform.ports.chat)}
        locust = await asyncio.create_subprocess_exec(
            str(LOCUST), "-f", str(LOCUSTFILE), "--headless", "-u", "2", "-r", "2", "-t", "6s",
            "--csv", str(prefix), "--host", f"http://127.0.0.1:{platform.ports.http}",
            "--stop-timeout", "3", "--only-summary", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(locust.communicate(), 40)
    log = out.decode(errors="replace")
    assert locust.returncode == 0, log[-3000:]
    with Path(f"{prefix}_stats.csv").open(newline="") as handle:
        stats = {(r["Type"], r["Name"]): r for r in csv.DictReader(handle)}
    assert int(stats[("WS", "connect")]["Request Count"]) >= 2, log[-2000:]
    delivered = stats.get(("CHAT_DELIVERY", "message"))
    assert delivered is not None and int(delivered["Request Count"]) > 0, (stats.keys(), log[-2000:])
    with Path(f"{prefix}_failures.csv").open(newline="") as handle:
        assert list(csv.DictReader(handle)) == []
