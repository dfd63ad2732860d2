"""Bits over HTTP: credited only by the succeeded webhook, cheered into chat, refused when abused."""

from __future__ import annotations

from typing import Any

import pytest
from live.api.ratelimit import Rate
from live.commerce.ledger import check
from live.commerce.sandbox import CARD_DECLINED, CARD_INSUFFICIENT_FUNDS, CARD_PENDING

Shop = Any  # the conftest fixture (tests are not a package)


async def wallet_bits(shop: Shop, token: str) -> int:
    status, body = await shop.call("GET", "/me/wallet", token=token)
    assert status == 200
    bits: int = body["bits"]
    return bits


async def test_bits_are_credited_on_the_succeeded_webhook_never_before(shop: Shop) -> None:
    viewer = await shop.user("viewer")
    status, body = await shop.buy(viewer, 500)
    assert status == 202 and body["payment_intent"]["status"] == "succeeded"
    assert await wallet_bits(shop, viewer) == 0
    await shop.deliver()
    assert await wallet_bits(shop, viewer) == 500
    assert (await check(shop.commerce.store)).ok


async def test_a_webhook_delivered_twice_credits_once(shop: Shop) -> None:
    viewer = await shop.user("viewer")
    await shop.buy(viewer, 100)
    (event,) = shop.pending()
    for _ in range(3):
        status, _ = await shop.post_event(event)
        assert status == 200
    assert await wallet_bits(shop, viewer) == 100


async def test_a_pending_card_credits_when_it_settles(shop: Shop) -> None:
    viewer = await shop.user("viewer")
    status, body = await shop.buy(viewer, 100, card=CARD_PENDING)
    assert status == 202 and body["payment_intent"]["status"] == "processing"
    await shop.deliver()
    assert await wallet_bits(shop, viewer) == 0
    shop.clock.now += 10
    await shop.deliver()
    assert await wallet_bits(shop, viewer) == 100


@pytest.mark.parametrize(
    "card, code", [(CARD_DECLINED, "card_declined"), (CARD_INSUFFICIENT_FUNDS, "insufficient_funds")]
)
async def test_a_declined_card_answers_402_and_books_nothing(shop: Shop, card: str, code: str) -> None:
    viewer = await shop.user("viewer")
    status, body = await shop.buy(viewer, 100, card=card)
    assert status == 402 and body["error"] == code
    await shop.deliver()
    assert await wallet_bits(shop, viewer) == 0
    assert (await check(shop.commerce.store)).transactions == 0


async def test_one_idempotency_key_charges_once_and_replays_the_first_answer(shop: Shop) -> None:
    viewer = await shop.user("viewer")
    first = await shop.buy(viewer, 100, key="k1")
    again = await shop.buy(viewer, 100, key="k1")
    assert first == again
    assert len(shop.sandbox.intents) == 1
    status, body = await shop.buy(viewer, 500, key="k1")
    assert status == 422 and body["error"] == "idempotency_key_reused"
    status, body = await shop.call(
        "POST", "/me/bits", token=viewer, json={"bits": 100, "card": "4242424242424242"}
    )
    assert status == 400 and body["error"] == "idempotency_key_required"


@pytest.mark.parametrize("bits", [0, -100, 1.5, 100.0, "100", True, None, 10**12, 101])
async def test_bad_amounts_are_refused_and_book_nothing(shop: Shop, bits: Any) -> None:
    viewer = await shop.user("viewer")
    status, body = await shop.call(
        "POST", "/me/bits", token=viewer, key="k", json={"bits": bits, "card": "4242424242424242"}
    )
    assert status == 400 and body["field"] == "bits"
    assert not shop.sandbox.intents


@pytest.mark.parametrize(
    "currency, code",
    [
        ("XYZ", "unknown_currency"),
        ("EUR", "unsupported_currency"),
        ("BIT", "unknown_currency"),
        (5, "unknown_currency"),
    ],
)
async def test_unknown_and_unsupported_currencies_are_refused(shop: Shop, currency: Any, code: str) -> None:
    viewer = await shop.user("viewer")
    status, body = await shop.call(
        "POST",
        "/me/bits",
        token=viewer,
        key="k",
        json={"bits": 100, "currency": currency, "card": "4242424242424242"},
    )
    assert status == 400 and body["error"] == code
    assert not shop.sandbox.intents


async def test_a_cheer_moves_bits_to_the_channel_and_shows_in_chat(shop: Shop) -> None:
    owner = await shop.user("streamer")
    await shop.channel(owner, "stream")
    viewer = await shop.user("viewer")
    await shop.buy(viewer, 500)
    await shop.deliver()
    status, body = await shop.call(
        "POST",
        "/channels/stream/cheers",
        token=viewer,
        key="c1",
        json={"bits": 300, "message": "great  play"},
    )
    assert status == 201 and body["wallet"]["bits"] == 200
    assert [(c.channel, c.user, c.bits, c.message) for c in shop.cheers] == [
        ("stream", "viewer", 300, "great play")
    ]
    status, body = await shop.call("GET", "/channels/stream/earnings", token=owner)
    assert status == 200 and body["unpaid"] == {"USD": 300}
    status, _ = await shop.call("GET", "/channels/stream/earnings", token=viewer)
    assert status == 403
    assert (await check(shop.commerce.store)).ok


async def test_cheering_more_than_the_wallet_holds_is_refused_and_books_nothing(shop: Shop) -> None:
    owner = await shop.user("streamer")
    await shop.channel(owner, "stream")
    viewer = await shop.user("viewer")
    await shop.buy(viewer, 100)
    await shop.deliver()
    before = (await check(shop.commerce.store)).transactions
    status, body = await shop.call(
        "POST", "/channels/stream/cheers", token=viewer, key="c1", json={"bits": 101}
    )
    assert status == 402 and body["error"] == "insufficient_bits"
    assert await wallet_bits(shop, viewer) == 100
    assert (await check(shop.commerce.store)).transactions == before
    assert not shop.cheers


@pytest.mark.parametrize("cheer_rate", [Rate(2, 1 / 3600)])
async def test_cheers_past_the_accounts_budget_are_429_and_book_nothing(shop: Shop) -> None:
    owner = await shop.user("streamer")
    await shop.channel(owner, "stream")
    viewer = await shop.user("viewer")
    other = await shop.user("other")
    for token in (viewer, other):
        await shop.buy(token, 100)
    await shop.deliver()
    for key in ("c1", "c2"):
        status, _ = await shop.call(
            "POST", "/channels/stream/cheers", token=viewer, key=key, json={"bits": 1}
        )
        assert status == 201
    before = (await check(shop.commerce.store)).transactions
    response = await shop.http.post(
        "/api/v1/channels/stream/cheers",
        json={"bits": 1},
        headers={"Authorization": f"Bearer {viewer}", "Idempotency-Key": "c3"},
    )
    body = await response.json()
    assert response.status == 429 and body["error"] == "rate_limited", body
    assert "this account" in body["message"] and int(response.headers["Retry-After"]) >= 1
    assert (await check(shop.commerce.store)).transactions == before
    assert await wallet_bits(shop, viewer) == 98 and len(shop.cheers) == 2
    # the budget is per account: another viewer still cheers
    status, _ = await shop.call("POST", "/channels/stream/cheers", token=other, key="c3", json={"bits": 1})
    assert status == 201


async def test_a_refund_takes_the_unspent_bits_back_and_a_spent_purchase_cannot_be_refunded(
    shop: Shop,
) -> None:
    owner = await shop.user("streamer")
    await shop.channel(owner, "stream")
    viewer = await shop.user("viewer")
    _, first = await shop.buy(viewer, 100)
    _, second = await shop.buy(viewer, 100)
    await shop.deliver()
    status, _ = await shop.call("POST", "/channels/stream/cheers", token=viewer, key="c", json={"bits": 150})
    assert status == 201
    status, body = await shop.call(
        "POST", f"/me/purchases/{first['payment_intent']['id']}/refund", token=viewer, key="r1"
    )
    assert status == 409 and body["error"] == "bits_spent"
    await shop.buy(viewer, 100)
    await shop.deliver()
    status, body = await shop.call(
        "POST", f"/me/purchases/{second['payment_intent']['id']}/refund", token=viewer, key="r2"
    )
    assert status == 200, body
    assert await wallet_bits(shop, viewer) == 50
    await shop.deliver()  # the provider's charge.refunded books nothing more
    report = await check(shop.commerce.store)
    assert report.ok, report.problems


async def test_webhooks_with_a_bad_signature_or_a_stale_timestamp_are_refused(shop: Shop) -> None:
    viewer = await shop.user("viewer")
    await shop.buy(viewer, 100)
    (event,) = shop.pending()
    status, body = await shop.post_event(event, secret=b"not the secret")
    assert status == 400 and body["error"] == "bad_signature"
    status, body = await shop.post_event(event, at=shop.clock.now - 301)
    assert status == 400 and body["error"] == "bad_signature"
    status, body = await shop.post_event(event, at=shop.clock.now + 301)
    assert status == 400
    assert await wallet_bits(shop, viewer) == 0
    status, _ = await shop.post_event(event, at=shop.clock.now - 299)
    assert status == 200
    assert await wallet_bits(shop, viewer) == 100


async def test_a_cheer_message_with_control_characters_is_refused(shop: Shop) -> None:
    owner = await shop.user("streamer")
    await shop.channel(owner, "stream")
    status, body = await shop.call(
        "POST", "/channels/stream/cheers", token=owner, key="c", json={"bits": 1, "message": "hi\x00there"}
    )
    assert status == 400 and body["field"] == "message"


async def test_other_methods_on_commerce_routes_are_405_with_allow(shop: Shop) -> None:
    status, body = await shop.call("PUT", "/me/wallet")
    assert status == 405 and body["error"] == "method_not_allowed"
    assert shop.last_headers["Allow"] == "GET"
    status, _ = await shop.call("PATCH", "/channels/stream/subscription")
    assert status == 405 and shop.last_headers["Allow"] == "DELETE, GET"
