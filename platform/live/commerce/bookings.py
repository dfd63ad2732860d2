"""What each business fact books: the legs of its journal transaction and its business record.

Every function here runs inside one store transaction (``Tx``) and writes the ledger entries
and the record they belong to together. Each names its transaction by the fact it books
(``charge:<intent>``, ``invoice:<id>``, ``cheer:<account>:<key>``, ``payout:...``), so booking
a fact a second time, whatever path it comes by, books nothing.

Signs: a positive amount raises an account's balance. A bit purchase takes the price out of
provider clearing into the bits' face value (a liability until cheered) plus the markup
(platform revenue), and issues the bits into the wallet; a cheer retires the bits and moves
their face value to the channel and the platform at the configured share.
"""

from __future__ import annotations

from typing import Any

from live.commerce.ledger import PLATFORM, AccountKind, Leg, post
from live.commerce.settings import BITS, CommerceSettings, share
from live.commerce.store import Tx

K = AccountKind


def purchase_legs(
    settings: CommerceSettings, account_id: int, bits: int, price: int, currency: str
) -> list[Leg]:
    face = bits * settings.bit_value
    return [
        Leg(K.PROVIDER_CLEARING, PLATFORM, currency, -price),
        Leg(K.BITS_LIABILITY, PLATFORM, currency, face),
        Leg(K.PLATFORM_REVENUE, PLATFORM, currency, price - face),
        Leg(K.BITS_ISSUED, PLATFORM, BITS, -bits),
        Leg(K.WALLET, str(account_id), BITS, bits),
    ]


def split_legs(
    source: AccountKind, channel: str, currency: str, amount: int, channel_share_bp: int
) -> list[Leg]:
    to_channel = share(amount, channel_share_bp)
    return [
        Leg(source, PLATFORM, currency, -amount),
        Leg(K.EARNINGS, channel, currency, to_channel),
        Leg(K.PLATFORM_REVENUE, PLATFORM, currency, amount - to_channel),
    ]


async def upsert_intent(tx: Tx, intent: dict[str, Any], now: float) -> None:
    """Record a payment intent; a final status (succeeded / failed) is never walked back."""
    metadata = intent.get("metadata") or {}
    await tx.execute(
        "INSERT INTO payment_intents (id, account_id, purpose, channel, tier, recipient_id, bits, amount, "
        "currency, status, refunded, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET status = CASE WHEN payment_intents.status = 'processing' "
        "THEN excluded.status ELSE payment_intents.status END, updated_at = excluded.updated_at",
        str(intent["id"]),
        int(metadata["account"]),
        str(metadata["purpose"]),
        metadata.get("channel"),
        _opt_int(metadata.get("tier")),
        _opt_int(metadata.get("recipient")),
        _opt_int(metadata.get("bits")),
        int(intent["amount"]),
        str(intent["currency"]),
        str(intent["status"]),
        now,
        now,
    )


def _opt_int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


async def book_charge(tx: Tx, settings: CommerceSettings, intent: dict[str, Any], now: float) -> bool:
    """A succeeded payment intent: credit the bits, or start / extend the (gifted) subscription."""
    metadata = intent["metadata"]
    purpose = metadata["purpose"]
    amount, currency = int(intent["amount"]), str(intent["currency"])
    reference = f"charge:{intent['id']}"
    if purpose == "bits":
        legs = purchase_legs(settings, int(metadata["account"]), int(metadata["bits"]), amount, currency)
        return await post(tx, "bits_purchase", reference, legs, now) is not None
    tier = settings.tier(int(metadata["tier"]))
    if tier is None:
        raise ValueError(f"intent {intent['id']} names unknown tier {metadata['tier']}")
    channel = str(metadata["channel"])
    legs = split_legs(K.PROVIDER_CLEARING, channel, currency, amount, tier.channel_share_bp)
    if await post(tx, purpose, reference, legs, now) is None:
        return False
    recipient = int(metadata["recipient"])
    if purpose == "gift":
        current = await subscription_end(tx, channel, recipient)
        end = max(current or 0.0, now) + settings.subscription_period_s
        await upsert_subscription(
            tx, channel, recipient, tier.number, end, None, int(metadata["account"]), now, renewal=False
        )
    else:
        end = float(intent.get("period_end") or now + settings.subscription_period_s)
        await upsert_subscription(
            tx, channel, recipient, tier.number, end, intent.get("subscription"), None, now, renewal=False
        )
    return True


async def book_invoice(tx: Tx, settings: CommerceSettings, invoice: dict[str, Any], now: float) -> bool:
    """A renewal the provider charged: book it and extend the subscription to the invoice's end."""
    metadata = invoice["metadata"]
    tier = settings.tier(int(metadata["tier"]))
    if tier is None:
        raise ValueError(f"invoice {invoice['id']} names unknown tier {metadata['tier']}")
    channel = str(metadata["channel"])
    legs = split_legs(
        K.PROVIDER_CLEARING, channel, str(invoice["currency"]), int(invoice["amount"]), tier.channel_share_bp
    )
    if await post(tx, "subscription_renewal", f"invoice:{invoice['id']}", legs, now) is None:
        return False
    await upsert_subscription(
        tx,
        channel,
        int(metadata["recipient"]),
        tier.number,
        float(invoice["period_end"]),
        str(invoice["subscription"]),
        None,
        now,
        renewal=True,
    )
    return True


async def subscription_end(tx: Tx, channel: str, account_id: int) -> float | None:
    row = await tx.one(
        "SELECT current_period_end FROM subscriptions WHERE channel = ? AND account_id = ?",
        channel,
        account_id,
    )
    return None if row is None else float(row[0])


async def upsert_subscription(
    tx: Tx,
    channel: str,
    account_id: int,
    tier: int,
    period_end: float,
    provider_subscription: str | None,
    gifted_by: int | None,
    now: float,
    *,
    renewal: bool,
) -> None:
    """Periods only ever extend (events commute: whichever arrives last, the latest end wins).

    A renewal keeps a pending cancellation; a charge that starts another provider subscription
    (a resubscription after a lapse) clears it, a late event about the same one does not; a gift
    does not renew, so it names no provider subscription and nothing is pending.
    """
    greatest = "max" if tx.dialect == "sqlite" else "GREATEST"
    distinct = "IS NOT" if tx.dialect == "sqlite" else "IS DISTINCT FROM"
    if renewal:
        cancel = "subscriptions.cancel_at_period_end"
    elif provider_subscription is None:
        cancel = "0"
    else:
        cancel = (
            f"CASE WHEN subscriptions.provider_subscription {distinct} excluded.provider_subscription "
            "THEN 0 ELSE subscriptions.cancel_at_period_end END"
        )
    await tx.execute(
        "INSERT INTO subscriptions (channel, account_id, tier, current_period_end, cancel_at_period_end, "
        "provider_subscription, gifted_by, created_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?) "
        "ON CONFLICT (channel, account_id) DO UPDATE SET "
        f"current_period_end = {greatest}(subscriptions.current_period_end, excluded.current_period_end), "
        "tier = excluded.tier, "
        f"cancel_at_period_end = {cancel}, "
        "provider_subscription = excluded.provider_subscription, "
        "gifted_by = excluded.gifted_by",
        channel,
        account_id,
        tier,
        period_end,
        provider_subscription,
        gifted_by,
        now,
    )


def cheer_legs(settings: CommerceSettings, account_id: int, channel: str, bits: int) -> list[Leg]:
    face = bits * settings.bit_value
    return [
        Leg(K.WALLET, str(account_id), BITS, -bits),
        Leg(K.BITS_ISSUED, PLATFORM, BITS, bits),
        *split_legs(K.BITS_LIABILITY, channel, settings.currency, face, settings.bits_channel_share_bp),
    ]


def refund_legs(
    settings: CommerceSettings, account_id: int, bits: int, price: int, currency: str
) -> list[Leg]:
    face = bits * settings.bit_value
    return [
        Leg(K.WALLET, str(account_id), BITS, -bits),
        Leg(K.BITS_ISSUED, PLATFORM, BITS, bits),
        Leg(K.BITS_LIABILITY, PLATFORM, currency, -face),
        Leg(K.REFUNDS, PLATFORM, currency, -(price - face)),
        Leg(K.PROVIDER_CLEARING, PLATFORM, currency, price),
    ]


def cpm_total(impressions: int, cpm: int) -> int:
    """Revenue of ``impressions`` at ``cpm`` per thousand, in whole minor units (rounded down).

    Impressions are booked one at a time as the difference of this total before and after, so
    fractions of a cent are never lost and never invented, however the impressions arrive.
    """
    return impressions * cpm // 1000


async def book_impression(tx: Tx, settings: CommerceSettings, channel: str, now: float) -> int:
    """Count one impression for ``channel``; book the whole cents it completes. Answers them."""
    row = await tx.one(
        "INSERT INTO ad_impression_counts (channel, impressions) VALUES (?, 1) ON CONFLICT (channel) "
        "DO UPDATE SET impressions = ad_impression_counts.impressions + 1 RETURNING impressions",
        channel,
    )
    assert row is not None
    count = int(row[0])
    before, after = cpm_total(count - 1, settings.ad_cpm), cpm_total(count, settings.ad_cpm)
    if after == before:
        return 0
    to_channel = share(after, settings.ads_channel_share_bp) - share(before, settings.ads_channel_share_bp)
    legs = [
        Leg(K.AD_RECEIVABLE, PLATFORM, settings.currency, -(after - before)),
        Leg(K.EARNINGS, channel, settings.currency, to_channel),
        Leg(K.PLATFORM_REVENUE, PLATFORM, settings.currency, after - before - to_channel),
    ]
    await post(tx, "ad_impressions", f"ads:{channel}:{count}", [leg for leg in legs if leg.amount], now)
    return after - before
