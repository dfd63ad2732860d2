"""`live payouts run --period YYYY-MM`: book what each channel earned in a month to payouts.

For each channel and currency, the amount is what its earnings account was credited before the
end of the month (UTC) less everything paid out to it before; the transaction is named by
channel, currency and month, so a second run for the same month books nothing, and a run for an
earlier month after a later one finds nothing owed.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from typing import Any

from live.commerce.ledger import PLATFORM, AccountKind, Leg, post
from live.commerce.store import CommerceStore, Tx
from live.commerce.validation import period as parse_period


async def run_payouts(store: CommerceStore, period: str, clock: Callable[[], float]) -> list[dict[str, Any]]:
    """Book every channel's earnings up to the end of ``period`` (YYYY-MM, UTC) to payouts.

    Idempotent: a channel already paid for the period, or owed nothing, is skipped. Raises
    ValueError for a malformed period or one that is not over.
    """
    year, month = parse_period(period)
    end = float(calendar.timegm((year + (month == 12), month % 12 + 1, 1, 0, 0, 0)))
    if end > clock():
        raise ValueError(f"period {period} is not over yet")

    async def owed(tx: Tx) -> list[tuple[str, str]]:
        rows = await tx.all(
            "SELECT owner, currency FROM ledger_accounts WHERE kind = ? ORDER BY owner, currency",
            AccountKind.EARNINGS.value,
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    paid: list[dict[str, Any]] = []
    for channel, currency in await store.run(owed):

        async def pay(tx: Tx, channel: str = channel, currency: str = currency) -> dict[str, Any] | None:
            credited = await tx.one(
                "SELECT COALESCE(SUM(e.amount), 0) FROM journal_entries e JOIN ledger_accounts a "
                "ON a.id = e.account_id WHERE a.kind = ? AND a.owner = ? AND a.currency = ? "
                "AND e.amount > 0 AND e.created_at < ?",
                AccountKind.EARNINGS.value,
                channel,
                currency,
                end,
            )
            already = await tx.one(
                "SELECT COALESCE(SUM(amount), 0) FROM payouts WHERE channel = ? AND currency = ?",
                channel,
                currency,
            )
            assert credited is not None and already is not None
            amount = int(credited[0]) - int(already[0])
            if amount <= 0:
                return None
            legs = [
                Leg(AccountKind.EARNINGS, channel, currency, -amount),
                Leg(AccountKind.PAYOUTS, PLATFORM, currency, amount),
            ]
            txn = await post(tx, "payout", f"payout:{channel}:{currency}:{period}", legs, clock())
            if txn is None:
                return None
            await tx.execute(
                "INSERT INTO payouts (channel, period, currency, amount, transaction_id, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                channel,
                period,
                currency,
                amount,
                txn,
                clock(),
            )
            return {"channel": channel, "period": period, "currency": currency, "amount": amount}

        made = await store.run(pay)
        if made is not None:
            paid.append(made)
    return paid
