"""Subscriptions: started and renewed by webhooks, gifted, canceled at period end; benefits follow."""

from __future__ import annotations

from typing import Any

from live.chat.auth import ChatUser
from live.commerce.ledger import check
from live.commerce.sandbox import CARD_DECLINED
from live.commerce.settings import CommerceSettings
from live.commerce.wiring import SubscriberRelationships

Shop = Any  # the conftest fixture (tests are not a package)
CARD = "4242424242424242"
PERIOD = CommerceSettings().subscription_period_s


async def subscribe(shop: Shop, token: str, tier: Any = 1, **extra: Any) -> tuple[int, Any]:
    return await shop.call(
        "POST",
        "/channels/stream/subscriptions",
        token=token,
        key=f"sub-{tier}-{extra}",
        json={"tier": tier, "card": CARD, **extra},
    )


async def state(shop: Shop, token: str) -> str | None:
    status, body = await shop.call("GET", "/channels/stream/subscription", token=token)
    return body["state"] if status == 200 else None


async def setup(shop: Shop) -> tuple[str, str]:
    owner = await shop.user("streamer")
    await shop.channel(owner, "stream")
    return owner, await shop.user("viewer")


async def test_a_subscription_starts_on_the_webhook_and_splits_revenue_by_tier(shop: Shop) -> None:
    owner, viewer = await setup(shop)
    status, body = await subscribe(shop, viewer, 2)
    assert status == 202, body
    assert await state(shop, viewer) is None
    await shop.deliver()
    assert await state(shop, viewer) == "active"
    _, earnings = await shop.call("GET", "/channels/stream/earnings", token=owner)
    assert earnings["unpaid"] == {"USD": 999 * 6000 // 10000} and earnings["active_subscribers"] == 1
    assert (await check(shop.commerce.store)).ok


async def test_renewals_extend_the_period_in_any_order_and_each_is_booked_once(shop: Shop) -> None:
    owner, viewer = await setup(shop)
    await subscribe(shop, viewer, 1)
    (start,) = shop.pending()
    (sub_id,) = shop.sandbox.subscriptions
    shop.sandbox.renew(sub_id)
    shop.sandbox.renew(sub_id)
    renewals = shop.pending()[1:]
    for event in (renewals[1], renewals[0], renewals[1], start, renewals[0]):
        status, _ = await shop.post_event(event)
        assert status == 200
    view = await shop.commerce.subscription("stream", 2)
    assert view["current_period_end"] == shop.sandbox.subscriptions[sub_id].period_end
    _, earnings = await shop.call("GET", "/channels/stream/earnings", token=owner)
    assert earnings["unpaid"] == {"USD": 3 * (499 * 5000 // 10000)}


async def test_cancel_keeps_benefits_until_period_end_then_they_lapse(shop: Shop) -> None:
    _, viewer = await setup(shop)
    await subscribe(shop, viewer, 1)
    await shop.deliver()
    relationships = SubscriberRelationships(shop.commerce)
    user = ChatUser(2, "viewer")
    status, body = await shop.call("DELETE", "/channels/stream/subscription", token=viewer)
    assert status == 200 and body["state"] == "canceling" and not body["renews"]
    assert (await relationships.relationship("stream", user)).subscriber
    (sub_id,) = shop.sandbox.subscriptions
    assert shop.sandbox.subscriptions[sub_id].canceled
    shop.clock.now += PERIOD + 1  # (past the session's lifetime too: ask the service)
    assert (await shop.commerce.subscription("stream", user.account_id))["state"] == "expired"
    assert not (await relationships.relationship("stream", user)).subscriber


async def test_a_late_first_charge_after_a_cancel_does_not_undo_the_cancel(shop: Shop) -> None:
    _, viewer = await setup(shop)
    await subscribe(shop, viewer, 1)
    (start,) = shop.pending()
    (sub_id,) = shop.sandbox.subscriptions
    shop.sandbox.renew(sub_id)
    (renewal,) = shop.pending()[1:]
    assert (await shop.post_event(renewal))[0] == 200  # the renewal overtook the first charge
    status, body = await shop.call("DELETE", "/channels/stream/subscription", token=viewer)
    assert status == 200 and body["state"] == "canceling"
    assert (await shop.post_event(start))[0] == 200
    assert await state(shop, viewer) == "canceling"


async def test_a_gift_subscribes_the_recipient_and_charges_the_giver(shop: Shop) -> None:
    _, giver = await setup(shop)
    friend = await shop.user("friend")
    status, body = await subscribe(shop, giver, 3, gift_to="friend")
    assert status == 202, body
    await shop.deliver()
    assert await state(shop, friend) == "active"
    assert await state(shop, giver) is None
    status, body = await subscribe(shop, giver, 1, gift_to="friend")
    assert status == 409 and body["error"] == "already_subscribed"
    status, body = await subscribe(shop, giver, 1, gift_to="nobody_here")
    assert status == 404


async def test_unknown_tiers_and_declined_cards_book_nothing(shop: Shop) -> None:
    _, viewer = await setup(shop)
    for tier in (0, 4, "1", 1.0, None):
        status, body = await subscribe(shop, viewer, tier)
        assert status == 400 and body["error"] == "unknown_tier", (tier, body)
    status, body = await shop.call(
        "POST",
        "/channels/stream/subscriptions",
        token=viewer,
        key="d",
        json={"tier": 1, "card": CARD_DECLINED},
    )
    assert status == 402
    await shop.deliver()
    assert await state(shop, viewer) is None
    assert (await check(shop.commerce.store)).transactions == 0
