"""The commerce service: what the API and the CLI ask of monetization, provider calls included.

Each operation validates, talks to the provider when money must move, and books through one
store transaction (``live.commerce.bookings``). Refusals are ``ApiError``s with the 4xx a client
should see; nothing is booked on any of them. Webhook events go through ``apply_event``, which
records the event id in the same transaction as what it books: a duplicate is acknowledged
and books nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from live.api.errors import ApiError, not_found
from live.api.repository import Repository
from live.commerce import bookings, statements
from live.commerce.ledger import AccountKind, InsufficientFunds, balances, post
from live.commerce.payouts import run_payouts
from live.commerce.provider import (
    INTENT_FAILED,
    INTENT_PROCESSING,
    INTENT_SUCCEEDED,
    INVOICE_PAID,
    PaymentIntent,
    PaymentProvider,
    ProviderError,
    ProviderEvent,
)
from live.commerce.settings import BITS, CommerceSettings
from live.commerce.store import CommerceStore, Tx

log = logging.getLogger("live.commerce")


@dataclass(frozen=True, slots=True)
class CheerNotice:
    """What chat shows for a booked cheer."""

    channel: str
    account_id: int
    user: str
    bits: int
    message: str
    at: float


Announce = Callable[[CheerNotice], Awaitable[None]]


def _intent_view(intent: PaymentIntent) -> dict[str, Any]:
    return {
        "id": intent.id,
        "status": intent.status,
        "failure_code": intent.failure_code,
        "amount": intent.amount,
        "currency": intent.currency,
    }


def _declined(intent: PaymentIntent) -> ApiError:
    code = intent.failure_code or "card_declined"
    return ApiError(402, code, f"the card was declined ({code}); nothing was charged")


class Commerce:
    def __init__(
        self,
        store: CommerceStore,
        provider: PaymentProvider,
        repo: Repository,
        settings: CommerceSettings,
        *,
        announce: Announce | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.provider = provider
        self.repo = repo
        self.settings = settings
        self.announce = announce
        self.clock = clock

    # ---------------------------------------------------------------- reads

    async def wallet(self, account_id: int) -> dict[str, Any]:
        """The wallet's statement and what can be bought (so a page never hard-codes a price)."""
        answer = await self.store.run(lambda tx: statements.wallet(tx, account_id))
        answer["offers"] = self.offers()
        return answer

    def offers(self) -> dict[str, Any]:
        """Bit packs and subscription tiers at their prices, in minor units of the one currency."""
        s = self.settings
        return {
            "currency": s.currency,
            "bit_packs": [{"bits": p.bits, "price": p.price} for p in s.bit_packs],
            "tiers": [{"tier": t.number, "price": t.price} for t in s.tiers],
            "max_cheer_bits": s.max_cheer_bits,
        }

    async def earnings(self, channel: str) -> dict[str, Any]:
        return await self.store.run(lambda tx: statements.earnings(tx, channel, self.clock()))

    async def subscription(self, channel: str, account_id: int) -> dict[str, Any] | None:
        async def read(tx: Tx) -> Any:
            return await tx.one(
                "SELECT tier, current_period_end, cancel_at_period_end, gifted_by, "
                "provider_subscription FROM subscriptions WHERE channel = ? AND account_id = ?",
                channel,
                account_id,
            )

        row = await self.store.run(read)
        if row is None:
            return None
        active = row[1] > self.clock()
        state = "expired" if not active else "canceling" if row[2] else "active"
        return {
            "channel": channel,
            "tier": row[0],
            "state": state,
            "current_period_end": row[1],
            "cancel_at_period_end": bool(row[2]),
            "gifted": row[3] is not None,
            "renews": active and not row[2] and row[4] is not None,
        }

    async def is_subscriber(self, channel: str, account_id: int) -> bool:
        async def read(tx: Tx) -> float | None:
            return await bookings.subscription_end(tx, channel, account_id)

        end = await self.store.run(read)
        return end is not None and end > self.clock()

    # ---------------------------------------------------------------- bits

    async def buy_bits(
        self, account_id: int, bits: int, currency: str, card: str, key: str
    ) -> tuple[int, dict[str, Any]]:
        pack = self.settings.pack(bits)
        if pack is None:
            sizes = ", ".join(str(p.bits) for p in self.settings.bit_packs)
            raise ApiError(400, "unknown_pack", f"bits: packs come in {sizes}", field="bits")
        intent = await self._charge(
            account_id,
            key,
            pack.price,
            currency,
            card,
            recurring=False,
            metadata={"purpose": "bits", "account": str(account_id), "bits": str(bits)},
        )
        return 202, {
            "payment_intent": _intent_view(intent),
            "bits": bits,
            "note": "bits are credited when the payment succeeds",
        }

    async def _charge(
        self,
        account_id: int,
        key: str,
        amount: int,
        currency: str,
        card: str,
        *,
        recurring: bool,
        metadata: dict[str, str],
    ) -> PaymentIntent:
        try:
            intent = await self.provider.create_payment_intent(
                amount=amount,
                currency=currency,
                card=card,
                metadata=metadata,
                recurring=recurring,
                idempotency_key=f"livetwin:{account_id}:{key}",
            )
        except ProviderError as error:
            log.warning("payment provider: %s", error)
            raise ApiError(
                502,
                "provider_unavailable",
                "the payment provider did not answer; retry with the same Idempotency-Key",
            ) from None
        raw = {
            "id": intent.id,
            "amount": intent.amount,
            "currency": intent.currency,
            "status": intent.status,
            "metadata": intent.metadata,
        }
        now = self.clock()
        await self.store.run(lambda tx: bookings.upsert_intent(tx, raw, now))
        if intent.status == "requires_payment_method":
            raise _declined(intent)
        return intent

    async def cheer(
        self, account_id: int, username: str, channel: str, bits: int, message: str, key: str
    ) -> tuple[int, dict[str, Any]]:
        if await self.repo.channel(channel) is None:
            raise not_found(f"no channel {channel!r}")
        reference = f"cheer:{account_id}:{key}"
        now = self.clock()

        async def book(tx: Tx) -> tuple[int, int]:
            legs = bookings.cheer_legs(self.settings, account_id, channel, bits)
            txn = await post(tx, "cheer", reference, legs, now)
            if txn is None:  # booked by an earlier attempt with this key whose answer was lost
                row = await tx.one(
                    "SELECT c.id FROM cheers c JOIN journal_transactions t ON t.id = c.transaction_id "
                    "WHERE t.reference = ?",
                    reference,
                )
                assert row is not None
                return int(row[0]), (await balances(tx, AccountKind.WALLET, str(account_id))).get(BITS, 0)
            row = await tx.one(
                "INSERT INTO cheers (channel, account_id, bits, message, transaction_id, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                channel,
                account_id,
                bits,
                message,
                txn,
                now,
            )
            assert row is not None
            return int(row[0]), (await balances(tx, AccountKind.WALLET, str(account_id))).get(BITS, 0)

        try:
            cheer_id, left = await self.store.run(book)
        except InsufficientFunds:
            raise ApiError(
                402,
                "insufficient_bits",
                f"cheering {bits} bits needs {bits} in the wallet; buy more bits first",
                field="bits",
            ) from None
        if self.announce is not None:
            try:
                await self.announce(CheerNotice(channel, account_id, username, bits, message, now))
            except Exception:  # booked either way; chat being down must not undo a cheer
                log.exception("cheer %d booked but not announced in chat", cheer_id)
        return 201, {
            "cheer": {
                "id": cheer_id,
                "channel": channel,
                "bits": bits,
                "message": message,
                "created_at": now,
            },
            "wallet": {"bits": left},
        }

    async def refund(self, account_id: int, intent_id: str, key: str) -> tuple[int, dict[str, Any]]:
        """Refund a bit purchase whose bits are all still in the wallet (they are taken back)."""

        async def book(tx: Tx) -> tuple[str, int] | None:
            row = await tx.one(
                "SELECT purpose, bits, amount, currency, status, refunded FROM payment_intents "
                "WHERE id = ? AND account_id = ?",
                intent_id,
                account_id,
            )
            if row is None:
                raise not_found(f"no purchase {intent_id!r} of yours")
            purpose, bits, amount, currency, status, _ = row
            if purpose != "bits":
                raise ApiError(409, "not_refundable", "only bit purchases can be refunded")
            settled = await tx.one(
                "SELECT 1 FROM journal_transactions WHERE reference = ?", f"charge:{intent_id}"
            )
            if status != "succeeded" or settled is None:
                raise ApiError(
                    409, "not_refundable", "the purchase has not been credited yet; nothing to refund"
                )
            legs = bookings.refund_legs(self.settings, account_id, int(bits), int(amount), str(currency))
            if await post(tx, "refund", f"refund:{intent_id}", legs, self.clock()) is None:
                return None
            await tx.execute("UPDATE payment_intents SET refunded = 1 WHERE id = ?", intent_id)
            return str(currency), int(amount)

        try:
            booked = await self.store.run(book)
        except InsufficientFunds:
            raise ApiError(
                409, "bits_spent", "some of this purchase's bits were cheered; it can no longer be refunded"
            ) from None
        try:
            refund = await self.provider.refund(intent_id, idempotency_key=f"livetwin:refund:{intent_id}")
        except ProviderError as error:
            log.warning("refund of %s booked, provider call failed: %s", intent_id, error)
            raise ApiError(
                502,
                "provider_unavailable",
                "refund booked; the provider did not answer, retry with the same Idempotency-Key",
            ) from None
        return 200, {
            "refund": {
                "id": refund.id,
                "payment_intent": intent_id,
                "amount": refund.amount,
                "status": refund.status,
                "already_refunded": booked is None,
            }
        }

    # ---------------------------------------------------------------- subscriptions

    async def subscribe(
        self,
        account_id: int,
        channel: str,
        tier_number: int,
        currency: str,
        card: str,
        gift_to: str | None,
        key: str,
    ) -> tuple[int, dict[str, Any]]:
        tier = self.settings.tier(tier_number)
        if tier is None:
            raise ApiError(400, "unknown_tier", "tier: must be 1, 2 or 3", field="tier")
        if await self.repo.channel(channel) is None:
            raise not_found(f"no channel {channel!r}")
        recipient = account_id
        if gift_to is not None:
            found = await self.repo.account_by_username(gift_to)
            if found is None:
                raise not_found(f"no account {gift_to[:64]!r} to gift to")
            recipient = found[0].id
            if recipient == account_id:
                raise ApiError(
                    400, "invalid_field", "gift_to: gift to someone else, or subscribe", field="gift_to"
                )
        if await self.is_subscriber(channel, recipient):
            raise ApiError(
                409,
                "already_subscribed",
                f"{'they are' if gift_to else 'you are'} already subscribed to {channel}",
            )
        purpose = "gift" if gift_to is not None else "subscription"
        intent = await self._charge(
            account_id,
            key,
            tier.price,
            currency,
            card,
            recurring=gift_to is None,
            metadata={
                "purpose": purpose,
                "account": str(account_id),
                "recipient": str(recipient),
                "channel": channel,
                "tier": str(tier.number),
            },
        )
        return 202, {
            "payment_intent": _intent_view(intent),
            "channel": channel,
            "tier": tier.number,
            "gift_to": gift_to,
            "note": "the subscription starts when the payment succeeds",
        }

    async def cancel(self, account_id: int, channel: str) -> dict[str, Any]:
        async def mark(tx: Tx) -> str | None:
            row = await tx.one(
                "SELECT provider_subscription FROM subscriptions WHERE channel = ? AND account_id = ? "
                "AND current_period_end > ?",
                channel,
                account_id,
                self.clock(),
            )
            if row is None:
                raise not_found(f"no active subscription to {channel!r}")
            await tx.execute(
                "UPDATE subscriptions SET cancel_at_period_end = 1 WHERE channel = ? AND account_id = ?",
                channel,
                account_id,
            )
            return None if row[0] is None else str(row[0])

        provider_subscription = await self.store.run(mark)
        if provider_subscription is not None:
            try:
                await self.provider.cancel_subscription(provider_subscription)
            except ProviderError as error:
                raise ApiError(502, "provider_unavailable", f"cancel again later: {error}") from None
        view = await self.subscription(channel, account_id)
        assert view is not None
        return view

    # ---------------------------------------------------------------- webhooks

    async def apply_event(self, event: ProviderEvent) -> str:
        """Book what ``event`` says, exactly once; answers what happened (for logs and tests)."""
        now = self.clock()

        async def apply(tx: Tx) -> str:
            first = await tx.one(
                "INSERT INTO provider_events (event_id, type, object_id, received_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                event.id,
                event.type,
                str(event.object.get("id", "")),
                now,
            )
            if first is None:
                return "duplicate"
            obj = event.object
            if event.type in (INTENT_PROCESSING, INTENT_FAILED, INTENT_SUCCEEDED):
                await bookings.upsert_intent(tx, obj, now)
                if event.type == INTENT_SUCCEEDED:
                    return (
                        "booked"
                        if await bookings.book_charge(tx, self.settings, obj, now)
                        else "already booked"
                    )
                return "recorded"
            if event.type == INVOICE_PAID:
                return (
                    "booked" if await bookings.book_invoice(tx, self.settings, obj, now) else "already booked"
                )
            return "ignored"

        try:
            return await self.store.run(apply)
        except (KeyError, TypeError, ValueError) as error:
            raise ApiError(400, "bad_event", f"event {event.id} is malformed: {error!r}") from None

    # ---------------------------------------------------------------- payouts

    async def run_payouts(self, period: str) -> list[dict[str, Any]]:
        """See ``live.commerce.payouts.run_payouts``."""
        return await run_payouts(self.store, period, self.clock)
