"""What `live ledger check` and `live payouts run` do, against the store `live serve` uses."""

from __future__ import annotations

import sys
from pathlib import Path

from live.api.storage import open_repository
from live.commerce.ledger import check
from live.commerce.sandbox import SandboxCore
from live.commerce.service import Commerce
from live.commerce.settings import CommerceSettings
from live.commerce.storage import open_commerce_store


async def ledger_check(database: str | None, data_dir: Path) -> int:
    """Print the check's verdict; 0 when the books are sound, 1 when not."""
    store = await open_commerce_store(database, data_dir)
    try:
        report = await check(store)
    finally:
        await store.close()
    for problem in report.problems:
        print(f"  {problem}")
    verdict = "ok" if report.ok else f"BROKEN ({len(report.problems)} problems)"
    print(
        f"ledger {verdict}: {report.transactions} transactions, {report.entries} entries, "
        f"{report.accounts} accounts"
    )
    return 0 if report.ok else 1


async def payouts_run(database: str | None, data_dir: Path, period: str) -> int:
    repo = await open_repository(database, data_dir)
    store = await open_commerce_store(database, data_dir)
    try:
        # payouts move money inside the books only: no provider call is made
        commerce = Commerce(store, SandboxCore(), repo, CommerceSettings())
        try:
            paid = await commerce.run_payouts(period)
        except ValueError as error:
            print(f"live payouts run: {error}", file=sys.stderr)
            return 2
    finally:
        await store.close()
        await repo.close()
    for payout in paid:
        print(f"  {payout['channel']}: {payout['amount']} {payout['currency']} (minor units)")
    print(f"payouts for {period}: {len(paid)} booked")
    return 0
