"""Concurrent money: one Idempotency-Key is one charge; concurrent cheers never overdraw a wallet.

Run on both stores; on PostgreSQL the requests really do run in parallel transactions (a pool
of connections, row locks deciding), which is the case that matters.
"""

from __future__ import annotations

import asyncio
from typing import Any

from live.commerce.ledger import check
from live.commerce.store import Tx

Shop = Any  # the conftest fixture (tests are not a package)
N = 50


async def transactions(shop: Shop, kind: str) -> int:
    async def count(tx: Tx) -> int:
        row = await tx.one("SELECT COUNT(*) FROM journal_transactions WHERE kind = ?", kind)
        return int(row[0]) if row else 0

    result: int = await shop.commerce.store.run(count)
    return result


async def test_fifty_concurrent_identical_purchases_with_one_key_charge_once(shop: Shop) -> None:
    viewer = await shop.user("viewer")
    answers = await asyncio.gather(*(shop.buy(viewer, 500, key="same-key") for _ in range(N)))
    assert len(set(map(repr, answers))) == 1 and answers[0][0] == 202
    assert len(shop.sandbox.intents) == 1
    await shop.deliver()
    assert await transactions(shop, "bits_purchase") == 1
    status, wallet = await shop.call("GET", "/me/wallet", token=viewer)
    assert wallet["bits"] == 500


async def test_fifty_concurrent_identical_cheers_with_one_key_book_one_set_of_entries(shop: Shop) -> None:
    owner = await shop.user("streamer")
    await shop.channel(owner, "stream")
    viewer = await shop.user("viewer")
    await shop.buy(viewer, 500)
    await shop.deliver()
    answers = await asyncio.gather(
        *(
            shop.call("POST", "/channels/stream/cheers", token=viewer, key="one-cheer", json={"bits": 100})
            for _ in range(N)
        )
    )
    assert len(set(map(repr, answers))) == 1 and answers[0][0] == 201
    assert await transactions(shop, "cheer") == 1
    assert len(shop.cheers) == 1
    _, wallet = await shop.call("GET", "/me/wallet", token=viewer)
    assert wallet["bits"] == 400


async def test_fifty_distinct_concurrent_cheers_never_overdraw_one_wallet(shop: Shop) -> None:
    owner = await shop.user("streamer")
    await shop.channel(owner, "stream")
    viewer = await shop.user("viewer")
    await shop.buy(viewer, 500)
    await shop.deliver()
    answers = await asyncio.gather(
        *(
            shop.call("POST", "/channels/stream/cheers", token=viewer, key=f"cheer-{i}", json={"bits": 30})
            for i in range(N)
        )
    )
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] * 16 + [402] * (N - 16)
    _, wallet = await shop.call("GET", "/me/wallet", token=viewer)
    assert wallet["bits"] == 500 - 16 * 30
    _, earnings = await shop.call("GET", "/channels/stream/earnings", token=owner)
    assert earnings["unpaid"] == {"USD": 16 * 30}
    report = await check(shop.commerce.store)
    assert report.ok, report.problems
