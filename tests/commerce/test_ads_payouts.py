"""Ad breaks (owner only, bounded, rate-limited), per-viewer asset lists, impressions at CPM; payouts."""

from __future__ import annotations

from typing import Any

import pytest
from live.commerce.ads import AdBreak, daterange_tags
from live.commerce.bookings import cpm_total
from live.commerce.ledger import check
from live.commerce.scte35 import crc32_mpeg2, splice_insert

Shop = Any  # the conftest fixture (tests are not a package)


async def setup(shop: Shop) -> tuple[str, str]:
    owner = await shop.user("streamer")
    await shop.channel(owner, "stream")
    return owner, await shop.user("viewer")


async def test_only_the_owner_starts_a_break_of_30_to_180_seconds_and_not_too_often(shop: Shop) -> None:
    owner, viewer = await setup(shop)
    status, _ = await shop.call("POST", "/channels/stream/ad-breaks", token=viewer, json={"duration_s": 60})
    assert status == 403
    status, _ = await shop.call("POST", "/channels/stream/ad-breaks", json={"duration_s": 60})
    assert status == 401
    for duration in (29, 181, 0, -30, 60.5, "60"):
        status, _ = await shop.call(
            "POST", "/channels/stream/ad-breaks", token=owner, json={"duration_s": duration}
        )
        assert status == 400, duration
    status, body = await shop.call("POST", "/channels/stream/ad-breaks", token=owner, json={"duration_s": 60})
    assert status == 201 and body["duration_s"] == 60
    status, body = await shop.call("POST", "/channels/stream/ad-breaks", token=owner, json={"duration_s": 60})
    assert status == 429 and int(shop.last_headers["Retry-After"]) > 0


async def test_subscribers_get_an_empty_asset_list_and_book_no_impressions(shop: Shop) -> None:
    owner, viewer = await setup(shop)
    _, ad_break = await shop.call("POST", "/channels/stream/ad-breaks", token=owner, json={"duration_s": 30})
    path = f"/ad-breaks/{ad_break['id']}"
    status, assets = await shop.call("GET", f"{path}/asset-list", token=viewer)
    assert status == 200 and [a["DURATION"] for a in assets["ASSETS"]] == [15.0, 15.0]
    status, anonymous = await shop.call("GET", f"{path}/asset-list")
    assert anonymous == assets
    subscriber = await shop.user("fan")
    await shop.call(
        "POST",
        "/channels/stream/subscriptions",
        token=subscriber,
        key="s",
        json={"tier": 1, "card": "4242424242424242"},
    )
    await shop.deliver()
    status, body = await shop.call("GET", f"{path}/asset-list", token=subscriber)
    assert status == 200 and body == {"ASSETS": []}
    status, body = await shop.call("POST", f"{path}/impressions", token=subscriber, json={"creative": 0})
    assert status == 202 and body == {"booked": False}


async def test_impressions_are_booked_once_per_viewer_at_the_cpm(shop: Shop) -> None:
    owner, viewer = await setup(shop)
    _, ad_break = await shop.call("POST", "/channels/stream/ad-breaks", token=owner, json={"duration_s": 30})
    path = f"/ad-breaks/{ad_break['id']}/impressions"
    booked = []
    for creative in (0, 1, 0, 1):
        status, body = await shop.call("POST", path, token=viewer, json={"creative": creative})
        assert status == 202
        booked.append(body["booked"])
    assert booked == [True, True, False, False]
    for creative, refused in ((2, 404), (-1, 400), ("0", 400)):
        status, _ = await shop.call("POST", path, token=viewer, json={"creative": creative})
        assert status == refused
    tokens = [await shop.user(f"viewer{i}") for i in range(8)]
    for token in tokens:
        await shop.call("POST", path, token=token, json={"creative": 0})
    _, earnings = await shop.call("GET", "/channels/stream/earnings", token=owner)
    revenue = cpm_total(10, 500)  # 10 impressions at $5 CPM: 5 cents
    assert earnings["unpaid"] == {"USD": revenue * 5500 // 10000}
    assert (await check(shop.commerce.store)).ok


def test_cpm_booking_never_loses_or_invents_a_fraction_of_a_cent() -> None:
    for cpm in (1, 333, 500, 2750):
        increments = [cpm_total(n, cpm) - cpm_total(n - 1, cpm) for n in range(1, 5001)]
        assert sum(increments) == 5000 * cpm // 1000 and min(increments) >= 0


def test_a_break_is_marked_with_an_interstitial_and_scte35_out_and_in() -> None:
    tags = daterange_tags(AdBreak(7, "stream", 1_790_000_000.5, 60))
    assert 'CLASS="com.apple.hls.interstitial"' in tags[0]
    assert 'X-ASSET-LIST="/api/v1/ad-breaks/7/asset-list"' in tags[0]
    assert 'START-DATE="2026-09-21T' in tags[0] and "DURATION=60.000" in tags[0]
    assert "SCTE35-OUT=0xFC" in tags[1] and "PLANNED-DURATION=60.000" in tags[1]
    assert "SCTE35-IN=0xFC" in tags[2] and 'ID="splice-7"' in tags[1] and 'ID="splice-7"' in tags[2]
    # behind a CDN the playlist names the platform's own site, where the cookie and creatives are
    cdn = daterange_tags(AdBreak(7, "stream", 1_790_000_000.5, 60), "http://site.example:8080")
    assert 'X-ASSET-LIST="http://site.example:8080/api/v1/ad-breaks/7/asset-list"' in cdn[0]
    assert cdn[1:] == tags[1:]


def test_splice_insert_sections_carry_a_valid_crc_and_the_break_duration() -> None:
    section = splice_insert(7, out=True, duration_s=60)
    assert section[0] == 0xFC and crc32_mpeg2(section) == 0  # a CRC over data + CRC is zero
    assert (int.from_bytes(section[1:3], "big") & 0xFFF) == len(section) - 3
    assert section[13] == 0x05  # splice_insert
    duration = int.from_bytes(section[-15:-10], "big") & ((1 << 33) - 1)
    assert duration == 60 * 90_000


async def test_payouts_book_each_channels_earnings_once_per_period(shop: Shop) -> None:
    owner, viewer = await setup(shop)
    await shop.buy(viewer, 500)
    await shop.deliver()
    await shop.call("POST", "/channels/stream/cheers", token=viewer, key="c", json={"bits": 400})
    with pytest.raises(ValueError, match="not over"):
        await shop.commerce.run_payouts("2026-09")
    shop.clock.now += 40 * 24 * 3600
    paid = await shop.commerce.run_payouts("2026-09")
    assert paid == [{"channel": "stream", "period": "2026-09", "currency": "USD", "amount": 400}]
    assert await shop.commerce.run_payouts("2026-09") == []
    earnings = await shop.commerce.earnings("stream")  # (the sessions have expired by now)
    assert earnings["unpaid"] == {"USD": 0} and earnings["payouts"][0]["amount"] == 400
    await shop.commerce.cheer(2, "viewer", "stream", 100, "", "c2")
    assert await shop.commerce.run_payouts("2026-09") == []  # earned after the period: next month's
    assert (await check(shop.commerce.store)).ok
