"""The payment provider seam, shaped after a real one (Stripe's payment intents and webhooks).

A charge is a *payment intent*: creating one answers at once with a status that is not yet the
outcome the platform may act on (``processing`` for a card that settles later, ``succeeded``
or ``requires_payment_method`` for one that settled). The platform credits only when the
signed webhook that says so arrives; webhooks arrive late, twice and out of order, and each
carries an event id that the books record exactly once. Recurring intents create a provider
subscription that the provider renews on its own schedule (``invoice.paid``).

``HttpPaymentProvider`` talks to the sandbox (``live payments-sandbox``) over HTTP with an
``Idempotency-Key`` on every create, so a retried request never charges twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

#: Event types the platform books; others are acknowledged and ignored.
INTENT_PROCESSING = "payment_intent.processing"
INTENT_SUCCEEDED = "payment_intent.succeeded"
INTENT_FAILED = "payment_intent.payment_failed"
INVOICE_PAID = "invoice.paid"
CHARGE_REFUNDED = "charge.refunded"


class ProviderError(Exception):
    """The provider could not be reached or answered nonsense: a 502 for our client, retryable."""


@dataclass(frozen=True, slots=True)
class PaymentIntent:
    id: str
    amount: int
    currency: str
    status: str  # processing | succeeded | requires_payment_method
    failure_code: str | None = None
    subscription: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Refund:
    id: str
    payment_intent: str
    amount: int
    status: str


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """A webhook's payload: ``object`` is the intent, invoice or refund it is about."""

    id: str
    type: str
    created: float
    object: dict[str, Any]

    @classmethod
    def parse(cls, body: bytes) -> ProviderEvent:
        try:
            raw = json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"event is not JSON: {error}") from None
        if not isinstance(raw, dict):
            raise ValueError("event must be a JSON object")
        event_id, kind, created, obj = raw.get("id"), raw.get("type"), raw.get("created"), raw.get("object")
        if not isinstance(event_id, str) or not 1 <= len(event_id) <= 128:
            raise ValueError("event id must be a string of 1-128 characters")
        if not isinstance(kind, str) or not isinstance(obj, dict):
            raise ValueError("event needs a type and an object")
        if not isinstance(created, (int, float)) or isinstance(created, bool):
            raise ValueError("event needs a numeric created time")
        return cls(event_id, kind, float(created), obj)

    def encode(self) -> bytes:
        return json.dumps(
            {"id": self.id, "type": self.type, "created": self.created, "object": self.object},
            separators=(",", ":"),
        ).encode()


class PaymentProvider(Protocol):
    async def create_payment_intent(
        self,
        *,
        amount: int,
        currency: str,
        card: str,
        metadata: dict[str, str],
        recurring: bool,
        idempotency_key: str,
    ) -> PaymentIntent: ...

    async def refund(self, payment_intent: str, *, idempotency_key: str) -> Refund: ...

    async def cancel_subscription(self, subscription: str) -> None: ...


def intent_from_json(raw: dict[str, Any]) -> PaymentIntent:
    metadata = raw.get("metadata") or {}
    return PaymentIntent(
        id=str(raw["id"]),
        amount=int(raw["amount"]),
        currency=str(raw["currency"]),
        status=str(raw["status"]),
        failure_code=raw.get("failure_code"),
        subscription=raw.get("subscription"),
        metadata={str(k): str(v) for k, v in metadata.items()},
    )


class HttpPaymentProvider:
    """The provider API over HTTP (the sandbox's, which is Stripe-shaped)."""

    def __init__(self, base_url: str, api_key: str, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def _post(self, path: str, body: dict[str, Any], idempotency_key: str | None = None) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = dict(self._headers)
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        try:
            async with self._session.post(self.base_url + path, json=body, headers=headers) as response:
                payload = await response.json(content_type=None)
                if response.status >= 500 or not isinstance(payload, dict):
                    raise ProviderError(f"provider answered {response.status} to {path}")
                if response.status >= 400:
                    raise ProviderError(f"provider refused {path}: {payload.get('message', payload)}")
                return payload
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise ProviderError(f"provider unreachable at {path}: {error}") from None

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
        payload = await self._post(
            "/v1/payment_intents",
            {
                "amount": amount,
                "currency": currency,
                "card": card,
                "metadata": metadata,
                "recurring": recurring,
            },
            idempotency_key,
        )
        return intent_from_json(payload)

    async def refund(self, payment_intent: str, *, idempotency_key: str) -> Refund:
        payload = await self._post("/v1/refunds", {"payment_intent": payment_intent}, idempotency_key)
        return Refund(
            str(payload["id"]), str(payload["payment_intent"]), int(payload["amount"]), str(payload["status"])
        )

    async def cancel_subscription(self, subscription: str) -> None:
        await self._post(f"/v1/subscriptions/{subscription}/cancel", {})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
