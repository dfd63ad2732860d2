"""The sandbox provider's shell: webhook delivery with chaos, the HTTP API, and its process.

``WebhookDelivery`` carries ``SandboxCore``'s outbox to the platform the way real providers do:
late, sometimes twice, out of order, signed at send time, and again with exponential backoff
until the platform answers 2xx. ``sandbox_app`` is the Stripe-shaped HTTP API around the core;
``run_sandbox`` is `live payments-sandbox`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from live.commerce.provider import ProviderEvent
from live.commerce.sandbox import SandboxCore, SandboxRefusal
from live.commerce.signing import HEADER, sign

log = logging.getLogger("live.commerce.sandbox")


@dataclass(frozen=True, slots=True)
class Chaos:
    """How badly webhooks are delivered: up to ``max_delay_s`` late (so out of order), each one
    sent a second time with probability ``duplicate``; failed sends retried with backoff."""

    max_delay_s: float = 1.0
    duplicate: float = 0.3
    first_retry_s: float = 0.25
    max_retry_s: float = 30.0
    max_attempts: int = 20
    seed: int | None = None


class WebhookDelivery:
    """Sends the core's events to ``url``, signed, with the chaos configured; retries until 2xx."""

    def __init__(self, core: SandboxCore, url: str, secret: bytes, chaos: Chaos = Chaos()) -> None:
        self.core = core
        self.url = url
        self.secret = secret
        self.chaos = chaos
        self._random = random.Random(chaos.seed)
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self.delivered = 0
        self.attempts = 0

    def pump(self) -> None:
        """Schedule every event the core has emitted since the last pump."""
        for event in self.core.take_events():
            copies = 2 if self._random.random() < self.chaos.duplicate else 1
            for _ in range(copies):
                task = asyncio.ensure_future(
                    self._deliver(event, self._random.uniform(0, self.chaos.max_delay_s))
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(self, event: ProviderEvent, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        body = event.encode()
        wait = self.chaos.first_retry_s
        for _ in range(self.chaos.max_attempts):
            self.attempts += 1
            try:
                headers = {"Content-Type": "application/json", HEADER: sign(self.secret, body, time.time())}
                async with self._session.post(self.url, data=body, headers=headers) as response:
                    if 200 <= response.status < 300:
                        self.delivered += 1
                        return
                    log.info(
                        "webhook %s to %s: %d, retrying in %.2f s", event.id, self.url, response.status, wait
                    )
            except (aiohttp.ClientError, TimeoutError) as error:
                log.info("webhook %s to %s: %s, retrying in %.2f s", event.id, self.url, error, wait)
            await asyncio.sleep(wait * self._random.uniform(0.5, 1.0))
            wait = min(wait * 2, self.chaos.max_retry_s)
        log.warning(
            "webhook %s to %s: giving up after %d attempts", event.id, self.url, self.chaos.max_attempts
        )

    async def run(self, interval_s: float = 0.1) -> None:
        """Pump forever (settling pending intents as they fall due)."""
        while True:
            self.pump()
            await asyncio.sleep(interval_s)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()


SANDBOX_KEY = web.AppKey("sandbox", SandboxCore)
DELIVERY_KEY = web.AppKey("sandbox_delivery", WebhookDelivery)


def sandbox_app(core: SandboxCore, delivery: WebhookDelivery, api_key: str) -> web.Application:
    """The sandbox's HTTP API (paths as Stripe's, JSON bodies)."""

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {api_key}":
            return web.json_response({"error": "unauthorized", "message": "bad API key"}, status=401)
        try:
            response: web.StreamResponse = await handler(request)
        except SandboxRefusal as refusal:
            return web.json_response({"error": "invalid_request", "message": str(refusal)}, status=400)
        except (ValueError, KeyError, TypeError) as error:
            return web.json_response({"error": "invalid_request", "message": str(error)}, status=400)
        delivery.pump()
        return response

    async def body(request: web.Request) -> dict[str, Any]:
        data = await request.json()
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data

    async def create_intent(request: web.Request) -> web.Response:
        data = await body(request)
        metadata = data.get("metadata") or {}
        intent = core.create_intent(
            data["amount"],
            data["currency"],
            data["card"],
            {str(k): str(v) for k, v in metadata.items()},
            bool(data.get("recurring")),
            request.headers.get("Idempotency-Key"),
        )
        return web.json_response(intent)

    async def get_intent(request: web.Request) -> web.Response:
        intent = core.intents.get(request.match_info["id"])
        if intent is None:
            raise SandboxRefusal("no such payment intent")
        return web.json_response(intent)

    async def settle(request: web.Request) -> web.Response:
        return web.json_response(core.settle(request.match_info["id"]))

    async def refund(request: web.Request) -> web.Response:
        data = await body(request)
        return web.json_response(
            core.create_refund(str(data["payment_intent"]), request.headers.get("Idempotency-Key"))
        )

    async def cancel(request: web.Request) -> web.Response:
        core.cancel_subscription_now(request.match_info["id"])
        return web.json_response({"id": request.match_info["id"], "canceled": True})

    async def renew(request: web.Request) -> web.Response:
        return web.json_response(core.renew(request.match_info["id"]))

    app = web.Application(middlewares=[guard])
    app[SANDBOX_KEY] = core
    app[DELIVERY_KEY] = delivery
    app.router.add_post("/v1/payment_intents", create_intent)
    app.router.add_get("/v1/payment_intents/{id}", get_intent)
    app.router.add_post("/v1/refunds", refund)
    app.router.add_post("/v1/subscriptions/{id}/cancel", cancel)
    app.router.add_post("/v1/test/payment_intents/{id}/settle", settle)
    app.router.add_post("/v1/test/subscriptions/{id}/renew", renew)

    async def pumping(app: web.Application) -> Any:
        task = asyncio.ensure_future(delivery.run())
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await delivery.close()

    app.cleanup_ctx.append(pumping)
    return app


async def run_sandbox(
    host: str,
    port: int,
    webhook_url: str,
    secret: str,
    api_key: str,
    chaos: Chaos,
    settle_after_s: float,
    duration_s: float | None = None,
) -> None:
    """`live payments-sandbox`: serve until interrupted (or ``duration_s``)."""
    core = SandboxCore(settle_after_s=settle_after_s)
    delivery = WebhookDelivery(core, webhook_url, secret.encode(), chaos)
    runner = web.AppRunner(sandbox_app(core, delivery, api_key), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = [a for a in runner.addresses if isinstance(a, tuple)]
        print(
            f"payments sandbox on http://{host}:{bound[0][1] if bound else port} "
            f"-> webhooks to {webhook_url}",
            flush=True,
        )
        stop = asyncio.Event()
        try:
            async with asyncio.timeout(duration_s):
                await stop.wait()
        except TimeoutError:
            pass
    finally:
        await runner.cleanup()
