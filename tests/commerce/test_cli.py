"""`live ledger check` and `live payouts run` as a user runs them, against the store serve uses."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from live.commerce.store import Tx

Shop = Any  # the conftest fixture (tests are not a package)
ROOT = Path(__file__).resolve().parents[2]


async def live(*args: str) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "live.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


def store_args(database: str | None, tmp_path: Path) -> list[str]:
    return ["--database", database] if database else ["--data", str(tmp_path)]


@pytest.mark.corrupts_books
async def test_ledger_check_passes_after_every_kind_of_movement_and_fails_on_a_corrupted_entry(
    shop: Shop, database: str | None, tmp_path: Path
) -> None:
    owner = await shop.user("streamer")
    await shop.channel(owner, "stream")
    viewer = await shop.user("viewer")
    _, first = await shop.buy(viewer, 500)
    await shop.buy(viewer, 100)
    await shop.call(
        "POST",
        "/channels/stream/subscriptions",
        token=viewer,
        key="s",
        json={"tier": 3, "card": "4242424242424242"},
    )
    await shop.deliver()
    await shop.call("POST", "/channels/stream/cheers", token=viewer, key="c", json={"bits": 50})
    _, purchases = await shop.call("GET", "/me/wallet", token=viewer)
    hundred = next(p["id"] for p in purchases["purchases"] if p["bits"] == 100)
    status, _ = await shop.call("POST", f"/me/purchases/{hundred}/refund", token=viewer, key="r")
    assert status == 200
    _, ad_break = await shop.call("POST", "/channels/stream/ad-breaks", token=owner, json={"duration_s": 30})
    for i in range(3):
        token = await shop.user(f"adviewer{i}")
        await shop.call("POST", f"/ad-breaks/{ad_break['id']}/impressions", token=token, json={"creative": 0})

    code, out = await live("ledger", "check", *store_args(database, tmp_path))
    assert code == 0, out
    assert "ledger ok" in out

    code, out = await live("payouts", "run", "--period", "2026-08", *store_args(database, tmp_path))
    assert code == 0 and "0 booked" in out, out
    code, out = await live("payouts", "run", "--period", "2026-09", *store_args(database, tmp_path))
    assert code == 0 and "1 booked" in out and "stream:" in out, out
    code, out = await live("payouts", "run", "--period", "2026-09", *store_args(database, tmp_path))
    assert code == 0 and "0 booked" in out, out  # idempotent
    assert (await shop.commerce.earnings("stream"))["unpaid"] == {"USD": 0}
    code, out = await live("ledger", "check", *store_args(database, tmp_path))
    assert code == 0, out
    code, out = await live("payouts", "run", "--period", "2026-13", *store_args(database, tmp_path))
    assert code == 2, out

    async def corrupt(tx: Tx) -> None:
        await tx.execute(
            "INSERT INTO journal_entries (transaction_id, account_id, currency, amount, created_at) "
            "SELECT transaction_id, account_id, currency, 1, created_at FROM journal_entries "
            "ORDER BY id LIMIT 1"
        )

    await shop.commerce.store.run(corrupt)
    code, out = await live("ledger", "check", *store_args(database, tmp_path))
    assert code == 1, out
    assert "BROKEN" in out and "does not balance" in out
