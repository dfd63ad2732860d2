"""The double-entry ledger: accounts, balanced transactions, derived balances and their check.

Every movement of money is one journal transaction: a set of entries, one per account touched,
whose amounts sum to zero in every currency (a positive amount raises an account's balance, a
negative one lowers it). Entries are never updated or deleted (the database refuses it); a
mistake is corrected by another transaction. Each transaction carries a unique ``reference``
naming the business fact it books ("purchase:pi_123", "cheer:42"), so booking the same fact
twice is impossible at the database level: the second attempt books nothing.

Balances are cached on the account row, updated in the same transaction as the entries, with
the floor checked in the same statement (wallets and earnings never go below zero); ``check``
proves every cached balance equals the sum of its entries. Accounts are locked in one global
order (sorted by kind, owner, currency), so two transactions never wait on each other in a
cycle.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum

from live.commerce.store import CommerceStore, Tx


class AccountKind(StrEnum):
    WALLET = "wallet"  # a viewer's bits (owner: account id)
    EARNINGS = "earnings"  # what a channel has earned and not been paid (owner: channel name)
    PLATFORM_REVENUE = "platform_revenue"  # the platform's share of everything
    PROVIDER_CLEARING = "provider_clearing"  # money the payment provider holds for us
    PAYOUTS = "payouts"  # money paid out to channels
    REFUNDS = "refunds"  # money given back to buyers (contra revenue)
    BITS_LIABILITY = "bits_liability"  # face value of bits sold and not yet cheered
    BITS_ISSUED = "bits_issued"  # the bits currency's source: minus every bit outstanding
    AD_RECEIVABLE = "ad_receivable"  # what advertisers owe for impressions served


#: Kinds whose balance may never go below zero.
FLOORED = frozenset({AccountKind.WALLET, AccountKind.EARNINGS})

PLATFORM = "platform"


@dataclass(frozen=True, slots=True)
class Leg:
    """One entry of a transaction before it is written: ``amount`` minor units into an account."""

    kind: AccountKind
    owner: str
    currency: str
    amount: int


class Unbalanced(Exception):
    """A transaction whose entries do not sum to zero per currency: a bug in our code, never input."""


class InsufficientFunds(Exception):
    """A floored account would go below zero: the caller asked to spend more than it holds."""

    def __init__(self, kind: AccountKind, owner: str, currency: str) -> None:
        super().__init__(f"{kind} {owner} holds too little {currency}")
        self.kind = kind
        self.owner = owner
        self.currency = currency


def transfer(
    currency: str,
    amount: int,
    source: tuple[AccountKind, str],
    *destinations: tuple[tuple[AccountKind, str], int],
) -> list[Leg]:
    """``amount`` out of ``source`` into the destinations (which must add up to it)."""
    legs = [Leg(source[0], source[1], currency, -amount)]
    legs.extend(Leg(kind, owner, currency, part) for (kind, owner), part in destinations)
    return legs


def balanced(legs: list[Leg]) -> bool:
    totals: dict[str, int] = defaultdict(int)
    for leg in legs:
        totals[leg.currency] += leg.amount
    return not any(totals.values())


async def post(tx: Tx, kind: str, reference: str, legs: list[Leg], now: float | None = None) -> int | None:
    """Book ``legs`` as one transaction; None when ``reference`` was booked before (nothing done).

    Raises ``InsufficientFunds`` (the caller's transaction must then roll back) when a floored
    account would go negative, and ``Unbalanced`` for a set of legs that does not sum to zero.
    """
    if not legs or not balanced(legs):
        raise Unbalanced(f"{reference}: entries do not sum to zero per currency: {legs}")
    if any(type(leg.amount) is not int for leg in legs):
        raise Unbalanced(f"{reference}: amounts must be integers of minor units")
    at = time.time() if now is None else now
    row = await tx.one(
        "INSERT INTO journal_transactions (kind, reference, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT (reference) DO NOTHING RETURNING id",
        kind,
        reference,
        at,
    )
    if row is None:
        return None
    transaction_id = int(row[0])
    merged: dict[tuple[str, str, str], int] = defaultdict(int)
    for leg in legs:
        merged[(leg.kind.value, leg.owner, leg.currency)] += leg.amount
    values: list[object] = []
    for key in sorted(merged):
        account_kind, owner, currency = key
        amount = merged[key]
        floor = 0 if AccountKind(account_kind) in FLOORED else None
        updated = await tx.one(
            "INSERT INTO ledger_accounts (kind, owner, currency, balance, min_balance) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, owner, currency) "
            "DO UPDATE SET balance = ledger_accounts.balance + excluded.balance "
            "RETURNING id, balance",
            account_kind,
            owner,
            currency,
            amount,
            floor,
        )
        assert updated is not None
        if floor is not None and updated[1] < floor:
            raise InsufficientFunds(AccountKind(account_kind), owner, currency)
        values.extend((transaction_id, updated[0], currency, amount, at))
    rows = ", ".join(["(?, ?, ?, ?, ?)"] * (len(values) // 5))
    await tx.execute(
        "INSERT INTO journal_entries (transaction_id, account_id, currency, amount, created_at) "
        f"VALUES {rows}",
        *values,
    )
    return transaction_id


async def balance(tx: Tx, kind: AccountKind, owner: str, currency: str) -> int:
    row = await tx.one(
        "SELECT balance FROM ledger_accounts WHERE kind = ? AND owner = ? AND currency = ?",
        kind.value,
        owner,
        currency,
    )
    return int(row[0]) if row else 0


async def balances(tx: Tx, kind: AccountKind, owner: str) -> dict[str, int]:
    rows = await tx.all(
        "SELECT currency, balance FROM ledger_accounts WHERE kind = ? AND owner = ? ORDER BY currency",
        kind.value,
        owner,
    )
    return {str(currency): int(amount) for currency, amount in rows}


@dataclass(frozen=True, slots=True)
class CheckReport:
    transactions: int
    entries: int
    accounts: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


async def check(store: CommerceStore, limit: int = 50) -> CheckReport:
    """Prove the books: every transaction balances per currency and has entries, every cached
    balance equals the sum of its entries, entries match their account's currency, no floored
    account is below its floor. Answers up to ``limit`` problems of each sort."""

    async def run(tx: Tx) -> CheckReport:
        problems: list[str] = []
        for txn, currency, total in await tx.all(
            "SELECT transaction_id, currency, SUM(amount) FROM journal_entries "
            "GROUP BY transaction_id, currency HAVING SUM(amount) <> 0 ORDER BY transaction_id "
            f"LIMIT {limit}"
        ):
            problems.append(f"transaction {txn} does not balance: {currency} entries sum to {total}")
        for (txn,) in await tx.all(
            "SELECT t.id FROM journal_transactions t WHERE NOT EXISTS "
            f"(SELECT 1 FROM journal_entries e WHERE e.transaction_id = t.id) LIMIT {limit}"
        ):
            problems.append(f"transaction {txn} has no entries")
        for account, kind, owner, cached, derived in await tx.all(
            "SELECT a.id, a.kind, a.owner, a.balance, COALESCE(SUM(e.amount), 0) "
            "FROM ledger_accounts a LEFT JOIN journal_entries e ON e.account_id = a.id "
            "GROUP BY a.id, a.kind, a.owner, a.balance "
            f"HAVING a.balance <> COALESCE(SUM(e.amount), 0) ORDER BY a.id LIMIT {limit}"
        ):
            problems.append(
                f"account {account} ({kind} {owner}) caches {cached}, its entries sum to {derived}"
            )
        for entry, account in await tx.all(
            "SELECT e.id, a.id FROM journal_entries e JOIN ledger_accounts a ON a.id = e.account_id "
            f"WHERE e.currency <> a.currency LIMIT {limit}"
        ):
            problems.append(f"entry {entry} is not in the currency of account {account}")
        for account, kind, owner, held in await tx.all(
            "SELECT id, kind, owner, balance FROM ledger_accounts "
            f"WHERE min_balance IS NOT NULL AND balance < min_balance LIMIT {limit}"
        ):
            problems.append(f"account {account} ({kind} {owner}) is below its floor: {held}")
        counts = await tx.one(
            "SELECT (SELECT COUNT(*) FROM journal_transactions), "
            "(SELECT COUNT(*) FROM journal_entries), (SELECT COUNT(*) FROM ledger_accounts)"
        )
        assert counts is not None
        return CheckReport(int(counts[0]), int(counts[1]), int(counts[2]), tuple(problems))

    return await store.run(run)
