"""The ledger's own guarantees, on both stores: balanced or refused, floors held, history fixed."""

from __future__ import annotations

import pytest
from live.commerce.ledger import PLATFORM, AccountKind, InsufficientFunds, Leg, Unbalanced, check, post
from live.commerce.store import CommerceStore, Tx

K = AccountKind


async def test_a_balanced_transaction_is_booked_once_per_reference(books: CommerceStore) -> None:
    legs = [Leg(K.BITS_ISSUED, PLATFORM, "BIT", -100), Leg(K.WALLET, "1", "BIT", 100)]
    first = await books.run(lambda tx: post(tx, "test", "ref:1", legs))
    again = await books.run(lambda tx: post(tx, "test", "ref:1", legs))
    assert first is not None and again is None
    report = await check(books)
    assert report.ok, report.problems
    assert (report.transactions, report.entries) == (1, 2)


async def test_an_unbalanced_transaction_is_refused_and_books_nothing(books: CommerceStore) -> None:
    legs = [Leg(K.BITS_ISSUED, PLATFORM, "BIT", -100), Leg(K.WALLET, "1", "BIT", 99)]
    with pytest.raises(Unbalanced):
        await books.run(lambda tx: post(tx, "test", "ref:1", legs))
    mixed = [Leg(K.PROVIDER_CLEARING, PLATFORM, "USD", -100), Leg(K.WALLET, "1", "BIT", 100)]
    with pytest.raises(Unbalanced):
        await books.run(lambda tx: post(tx, "test", "ref:2", mixed))
    assert (await check(books)).transactions == 0


async def test_a_wallet_never_goes_negative_and_a_refused_spend_books_nothing(books: CommerceStore) -> None:
    await books.run(
        lambda tx: post(
            tx, "t", "buy", [Leg(K.BITS_ISSUED, PLATFORM, "BIT", -10), Leg(K.WALLET, "1", "BIT", 10)]
        )
    )
    spend = [Leg(K.WALLET, "1", "BIT", -11), Leg(K.BITS_ISSUED, PLATFORM, "BIT", 11)]
    with pytest.raises(InsufficientFunds):
        await books.run(lambda tx: post(tx, "t", "spend", spend))
    report = await check(books)
    assert report.ok and report.transactions == 1


async def test_journal_rows_cannot_be_updated_or_deleted(books: CommerceStore) -> None:
    await books.run(
        lambda tx: post(
            tx, "t", "buy", [Leg(K.BITS_ISSUED, PLATFORM, "BIT", -10), Leg(K.WALLET, "1", "BIT", 10)]
        )
    )
    for statement in (
        "UPDATE journal_entries SET amount = 1000",
        "DELETE FROM journal_entries",
        "DELETE FROM journal_transactions",
    ):

        async def tamper(tx: Tx, statement: str = statement) -> int:
            return await tx.execute(statement)

        with pytest.raises(Exception, match="append-only"):
            await books.run(tamper)
    assert (await check(books)).ok


@pytest.mark.corrupts_books
async def test_check_finds_a_hand_corrupted_entry_and_a_wrong_cached_balance(books: CommerceStore) -> None:
    await books.run(
        lambda tx: post(
            tx, "t", "buy", [Leg(K.BITS_ISSUED, PLATFORM, "BIT", -10), Leg(K.WALLET, "1", "BIT", 10)]
        )
    )

    async def corrupt(tx: Tx) -> None:
        row = await tx.one("SELECT id, account_id FROM journal_entries ORDER BY id LIMIT 1")
        assert row is not None
        await tx.execute(
            "INSERT INTO journal_entries (transaction_id, account_id, currency, amount, created_at) "
            "SELECT transaction_id, account_id, currency, 5, created_at FROM journal_entries "
            "WHERE id = ?",
            row[0],
        )

    await books.run(corrupt)
    problems = (await check(books)).problems
    assert any("does not balance" in p for p in problems)
    assert any("caches" in p for p in problems)
