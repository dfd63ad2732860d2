"""The sandbox provider: signed deliveries retried with backoff until acknowledged; its own process."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from live.commerce.provider import ProviderEvent
from live.commerce.sandbox import CARD_DECLINED, CARD_SUCCEEDS, SandboxCore
from live.commerce.sandbox_server import Chaos, WebhookDelivery
from live.commerce.settings import PaymentsSettings
from live.commerce.signing import HEADER, SignatureError, sign, verify
from live.config import ServeSettings
from live.serve import Platform

ROOT = Path(__file__).resolve().parents[2]
SECRET = b"whsec_sandbox"


def test_signatures_verify_only_the_signed_body_within_the_tolerance() -> None:
    header = sign(SECRET, b'{"a":1}', 1000.0)
    assert verify(SECRET, header, b'{"a":1}', 1100.0, 300) == 1000
    for secret, body, now, header_sent in (
        (b"other", b'{"a":1}', 1000.0, header),
        (SECRET, b'{"a":2}', 1000.0, header),
        (SECRET, b'{"a":1}', 1301.0, header),
        (SECRET, b'{"a":1}', 1000.0, "t=1000"),
        (SECRET, b'{"a":1}', 1000.0, None),
    ):
        try:
            verify(secret, header_sent, body, now, 300)
        except SignatureError:
            continue
        raise AssertionError(f"accepted {secret!r} {body!r} at {now}")


async def test_deliveries_are_retried_with_backoff_until_acknowledged() -> None:
    seen: list[tuple[str, float]] = []

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        verify(SECRET, request.headers.get(HEADER), body, __import__("time").time(), 300)
        seen.append((ProviderEvent.parse(body).id, asyncio.get_running_loop().time()))
        return web.Response(status=200 if len(seen) > 3 else 503)

    app = web.Application()
    app.router.add_post("/hook", receive)
    async with TestServer(app) as server:
        core = SandboxCore()
        delivery = WebhookDelivery(
            core,
            str(server.make_url("/hook")),
            SECRET,
            Chaos(max_delay_s=0, duplicate=0, first_retry_s=0.05, seed=1),
        )
        core.create_intent(100, "USD", CARD_SUCCEEDS, {"purpose": "bits"}, False)
        delivery.pump()
        async with asyncio.timeout(10):
            while delivery.delivered < 1:
                await asyncio.sleep(0.01)
        await delivery.close()
    assert len(seen) == 4 and len({event for event, _ in seen}) == 1
    gaps = [b[1] - a[1] for a, b in itertools.pairwise(seen)]
    assert gaps[2] > gaps[0]  # backing off


async def test_chaos_delivers_late_twice_and_out_of_order() -> None:
    arrivals: list[str] = []

    async def receive(request: web.Request) -> web.Response:
        arrivals.append(ProviderEvent.parse(await request.read()).id)
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", receive)
    async with TestServer(app) as server:
        core = SandboxCore()
        delivery = WebhookDelivery(
            core, str(server.make_url("/hook")), SECRET, Chaos(max_delay_s=0.3, duplicate=0.5, seed=7)
        )
        for _ in range(20):
            core.create_intent(100, "USD", CARD_DECLINED, {"purpose": "bits"}, False)
        emitted = [event.id for event in core.outbox]
        delivery.pump()
        async with asyncio.timeout(10):
            while len(set(arrivals)) < 20:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.35)
        await delivery.close()
    assert len(arrivals) > 20  # some twice
    firsts = list(dict.fromkeys(arrivals))
    assert firsts != emitted and sorted(firsts) == sorted(emitted)  # reordered, none lost


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_the_platform_against_the_sandbox_running_as_its_own_process(tmp_path: Path) -> None:
    http_port, sandbox_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}",
        "LIVETWIN_WEBHOOK_SECRET": SECRET.decode(),
        "LIVETWIN_PAYMENTS_API_KEY": "sk_test_x",
    }
    sandbox = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "live.cli",
        "payments-sandbox",
        "--port",
        str(sandbox_port),
        "--webhook-url",
        f"http://127.0.0.1:{http_port}/api/v1/payments/webhook",
        "--max-delay",
        "0.3",
        "--duplicate",
        "0.5",
        "--settle-after",
        "0.5",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert sandbox.stdout is not None
        line = await asyncio.wait_for(sandbox.stdout.readline(), 30)
        assert b"payments sandbox on" in line
        payments = PaymentsSettings(
            provider_url=f"http://127.0.0.1:{sandbox_port}",
            api_key="sk_test_x",
            webhook_secret=SECRET.decode(),
        )
        settings = ServeSettings(
            rtmp_port=0, http_port=http_port, chat_port=0, data_dir=tmp_path, payments=payments
        )
        async with Platform(settings), aiohttp.ClientSession() as http:
            api = f"http://127.0.0.1:{http_port}/api/v1"
            credentials = {"username": "viewer", "password": "correct horse battery staple"}
            await http.post(f"{api}/accounts", json=credentials)
            async with http.post(f"{api}/sessions", json=credentials) as response:
                token = (await response.json())["token"]
            auth = {"Authorization": f"Bearer {token}"}

            async def buy(card: str, key: str) -> tuple[int, Any]:
                async with http.post(
                    f"{api}/me/bits",
                    json={"bits": 100, "card": card},
                    headers={**auth, "Idempotency-Key": key},
                ) as response:
                    return response.status, await response.json()

            assert (await buy(CARD_SUCCEEDS, "a"))[0] == 202
            assert (await buy("4000000000000077", "b"))[1]["payment_intent"]["status"] == "processing"
            assert (await buy(CARD_DECLINED, "c"))[0] == 402
            async with asyncio.timeout(20):
                while True:
                    async with http.get(f"{api}/me/wallet", headers=auth) as response:
                        if (await response.json())["bits"] == 200:
                            break
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # late duplicates land and book nothing
            async with http.get(f"{api}/me/wallet", headers=auth) as response:
                assert (await response.json())["bits"] == 200
    finally:
        sandbox.terminate()
        await sandbox.wait()
