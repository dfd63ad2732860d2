"""Account statements: what a viewer's wallet and a channel's earnings show, read in one transaction."""

from __future__ import annotations

from typing import Any

from live.commerce.ledger import AccountKind, balances
from live.commerce.settings import BITS
from live.commerce.store import Tx


async def wallet(tx: Tx, account_id: int) -> dict[str, Any]:
    """Bits held (the cached balances `live ledger check` proves) and the latest purchases."""
    held = await balances(tx, AccountKind.WALLET, str(account_id))
    rows = await tx.all(
        "SELECT id, purpose, bits, amount, currency, status, refunded, created_at "
        "FROM payment_intents "
        "WHERE account_id = ? ORDER BY created_at DESC LIMIT 20",
        account_id,
    )
    return {
        "bits": held.get(BITS, 0),
        "balances": held,
        "purchases": [
            {
                "id": r[0],
                "purpose": r[1],
                "bits": r[2],
                "amount": r[3],
                "currency": r[4],
                "status": r[5],
                "refunded": bool(r[6]),
                "created_at": r[7],
            }
            for r in rows
        ],
    }


async def earnings(tx: Tx, channel: str, now: float) -> dict[str, Any]:
    """Unpaid earnings per currency, subscribers now, and the latest payouts."""
    held = await balances(tx, AccountKind.EARNINGS, channel)
    rows = await tx.all(
        "SELECT period, currency, amount, created_at FROM payouts WHERE channel = ? "
        "ORDER BY period DESC LIMIT 24",
        channel,
    )
    subs = await tx.one(
        "SELECT COUNT(*) FROM subscriptions WHERE channel = ? AND current_period_end > ?",
        channel,
        now,
    )
    return {
        "channel": channel,
        "unpaid": held,
        "active_subscribers": int(subs[0]) if subs else 0,
        "payouts": [{"period": r[0], "currency": r[1], "amount": r[2], "paid_at": r[3]} for r in rows],
    }
