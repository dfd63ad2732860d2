"""The sandbox payment provider: a Stripe-shaped fake that behaves like the real thing's worst day.

``SandboxCore`` is the provider's state as a pure core (clock passed in, no I/O): payment
intents decided by test card number, subscriptions it renews when told to (a test clock),
refunds, idempotency keys, and an outbox of events. ``WebhookDelivery`` carries the outbox to
the platform the way real providers do: late, sometimes twice, out of order, and again with
exponential backoff until the platform answers 2xx. ``sandbox_app`` is the HTTP API;
`live payments-sandbox --port P` runs it as its own process.

Test cards:

=================  ==============================================================
4242424242424242   succeeds
4000000000000002   declined (``card_declined``)
4000000000009995   declined for insufficient funds (``insufficient_funds``)
4000000000000077   stays ``processing``, settles as succeeded after ``settle_after_s``
=================  ==============================================================
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from live.commerce.provider import (
    CHARGE_REFUNDED,
    INTENT_FAILED,
    INTENT_PROCESSING,
    INTENT_SUCCEEDED,
    INVOICE_PAID,
    PaymentIntent,
    ProviderEvent,
    Refund,
    intent_from_json,
)
from live.commerce.signing import HEADER, sign

log = logging.getLogger("live.commerce.sandbox")

CARD_SUCCEEDS = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_INSUFFICIENT_FUNDS = "4000000000009995"
CARD_PENDING = "4000000000000077"


class SandboxRefusal(Exception):
    """A request the sandbox refuses (400): bad parameters or a reused idempotency key."""


@dataclass(slots=True)
class _Subscription:
    id: str
    intent: dict[str, Any]
    period_end: float
    periods: int = 1
    canceled: bool = False


@dataclass(slots=True)
class SandboxCore:
    clock: Callable[[], float] = time.time
    period_s: float = 30 * 24 * 3600.0
    settle_after_s: float = 2.0
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, _Subscription] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: list[ProviderEvent] = field(default_factory=list)
    _keys: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    _settling: dict[str, float] = field(default_factory=dict)  # intent id -> due

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{secrets.token_hex(10)}"

    def _emit(self, kind: str, obj: dict[str, Any]) -> None:
        self.outbox.append(ProviderEvent(self._id("evt"), kind, self.clock(), json.loads(json.dumps(obj))))

    def _once(
        self, key: str | None, params: dict[str, Any], make: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        if key is None:
            return make()
        fingerprint = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
        stored = self._keys.get(key)
        if stored is not None:
            if stored[0] != fingerprint:
                raise SandboxRefusal(f"idempotency key {key!r} was used with other parameters")
            return stored[1]
        made = make()
        self._keys[key] = (fingerprint, made)
        return made

    # ---------------------------------------------------------------- API

    def create_intent(
        self,
        amount: int,
        currency: str,
        card: str,
        metadata: dict[str, str],
        recurring: bool,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        if (
            type(amount) is not int
            or amount <= 0
            or not isinstance(currency, str)
            or not isinstance(card, str)
        ):
            raise SandboxRefusal("amount must be a positive integer, currency and card strings")
        params = {
            "amount": amount,
            "currency": currency,
            "card": card,
            "metadata": metadata,
            "recurring": recurring,
        }
        return self._once(
            idempotency_key, params, lambda: self._new_intent(amount, currency, card, metadata, recurring)
        )

    def _new_intent(
        self, amount: int, currency: str, card: str, metadata: dict[str, str], recurring: bool
    ) -> dict[str, Any]:
        intent: dict[str, Any] = {
            "id": self._id("pi"),
            "amount": amount,
            "currency": currency,
            "metadata": dict(metadata),
            "recurring": recurring,
            "status": "processing",
            "failure_code": None,
            "subscription": None,
            "period_end": None,
        }
        self.intents[intent["id"]] = intent
        if card == CARD_SUCCEEDS:
            self._succeed(intent)
        elif card == CARD_PENDING:
            self._settling[intent["id"]] = self.clock() + self.settle_after_s
            self._emit(INTENT_PROCESSING, intent)
        else:
            intent["status"] = "requires_payment_method"
            intent["failure_code"] = {
                CARD_DECLINED: "card_declined",
                CARD_INSUFFICIENT_FUNDS: "insufficient_funds",
            }.get(card, "incorrect_number")
            self._emit(INTENT_FAILED, intent)
        return dict(intent)

    def _succeed(self, intent: dict[str, Any]) -> None:
        intent["status"] = "succeeded"
        if intent["recurring"]:
            sub = _Subscription(self._id("sub"), intent, self.clock() + self.period_s)
            self.subscriptions[sub.id] = sub
            intent["subscription"] = sub.id
            intent["period_end"] = sub.period_end
        self._emit(INTENT_SUCCEEDED, intent)

    def settle(self, intent_id: str) -> dict[str, Any]:
        intent = self.intents.get(intent_id)
        if intent is None:
            raise SandboxRefusal(f"no payment intent {intent_id!r}")
        if intent["status"] == "processing":
            self._settling.pop(intent_id, None)
            self._succeed(intent)
        return dict(intent)

    def settle_due(self) -> None:
        now = self.clock()
        for intent_id, due in list(self._settling.items()):
            if due <= now:
                self.settle(intent_id)

    def renew(self, subscription_id: str) -> dict[str, Any]:
        """The test clock: charge the next period of a subscription now (``invoice.paid``)."""
        sub = self.subscriptions.get(subscription_id)
        if sub is None:
            raise SandboxRefusal(f"no subscription {subscription_id!r}")
        if sub.canceled:
            raise SandboxRefusal(f"subscription {subscription_id!r} is canceled")
        sub.periods += 1
        sub.period_end += self.period_s
        invoice = {
            "id": self._id("in"),
            "subscription": sub.id,
            "period": sub.periods,
            "period_end": sub.period_end,
            "amount": sub.intent["amount"],
            "currency": sub.intent["currency"],
            "metadata": sub.intent["metadata"],
        }
        self._emit(INVOICE_PAID, invoice)
        return invoice

    def cancel_subscription_now(self, subscription_id: str) -> None:
        sub = self.subscriptions.get(subscription_id)
        if sub is None:
            raise SandboxRefusal(f"no subscription {subscription_id!r}")
        sub.canceled = True

    def create_refund(self, intent_id: str, idempotency_key: str | None = None) -> dict[str, Any]:
        def make() -> dict[str, Any]:
            intent = self.intents.get(intent_id)
            if intent is None or intent["status"] != "succeeded":
                raise SandboxRefusal(f"payment intent {intent_id!r} has no charge to refund")
            if any(r["payment_intent"] == intent_id for r in self.refunds.values()):
                raise SandboxRefusal(f"payment intent {intent_id!r} is already refunded")
            refund = {
                "id": self._id("re"),
                "payment_intent": intent_id,
                "amount": intent["amount"],
                "currency": intent["currency"],
                "status": "succeeded",
            }
            self.refunds[refund["id"]] = refund
            self._emit(CHARGE_REFUNDED, refund)
            return refund

        return self._once(idempotency_key, {"payment_intent": intent_id}, make)

    def take_events(self) -> list[ProviderEvent]:
        self.settle_due()
        events, self.outbox = self.outbox, []
        return events

    # ---------------------------------------------------------------- PaymentProvider

    async def create_payment_intent(
        self,
        *,
        amount: int,
        currency: str,
        card: str,
        metadata: dict[str, str],
        recurring: bool,
        idempotency_key: str,
    ) -> PaymentIntent:
        return intent_from_json(
            self.create_intent(amount, currency, card, metadata, recurring, idempotency_key)
        )

    async def refund(self, payment_intent: str, *, idempotency_key: str) -> Refund:
        made = self.create_refund(payment_intent, idempotency_key)
        return Refund(made["id"], made["payment_intent"], made["amount"], made["status"])

    async def cancel_subscription(self, subscription: str) -> None:
        self.cancel_subscription_now(subscription)


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
