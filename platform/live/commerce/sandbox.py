"""The sandbox payment provider: a Stripe-shaped fake that behaves like the real thing's worst day.

``SandboxCore`` is the provider's state as a pure core (clock passed in, no I/O): payment
intents decided by test card number, subscriptions it renews when told to (a test clock),
refunds, idempotency keys, and an outbox of events. ``WebhookDelivery`` carries the outbox to
the platform the way real providers do: late, sometimes twice, out of order, and again with
exponential backoff until the platform answers 2xx (``live.commerce.sandbox_server``, with the
HTTP API that `live payments-sandbox --port P` runs as its own process).

Test cards:

=================  ==============================================================
4242424242424242   succeeds
4000000000000002   declined (``card_declined``)
4000000000009995   declined for insufficient funds (``insufficient_funds``)
4000000000000077   stays ``processing``, settles as succeeded after ``settle_after_s``
=================  ==============================================================
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
