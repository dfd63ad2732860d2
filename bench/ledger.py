"""Ledger throughput on PostgreSQL: booked cheers per second into one hot channel, against a plain
INSERT of the same rows.

Each booked cheer is what the API does inside its one transaction: the journal transaction
(unique reference), the balance updates of five accounts with the wallet's floor checked in the
same statement (row locks taken in one global order), the five entries and the cheer record.
Every cheer credits the same channel's earnings and the platform's revenue, so those two rows
are hot: concurrent bookings queue on their row locks, which is the cost being measured. The
baseline writes the same journal, entry and cheer rows with plain INSERTs in one transaction
each and touches no balance: the floor of what any design must write.

    python bench/ledger.py [--dsn postgresql://postgres@127.0.0.1:5432/test] [--cheers 4000]
                           [--concurrency 1,8,32]

Each run uses a schema of its own, dropped afterwards. Wallets are distinct per worker (a
viewer cheers from one wallet at a time), the channel is one.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from live.commerce.bookings import cheer_legs
from live.commerce.ledger import PLATFORM, AccountKind, Leg, post
from live.commerce.postgres_store import PostgresCommerceStore
from live.commerce.settings import BITS, CommerceSettings
from live.commerce.store import Tx

CHANNEL = "hot"


async def booked(store: PostgresCommerceStore, cheers: int, workers: int) -> float:
    settings = CommerceSettings()
    for worker in range(workers):  # fund each wallet
        legs = [
            Leg(AccountKind.BITS_ISSUED, PLATFORM, BITS, -(10**9)),
            Leg(AccountKind.WALLET, str(worker), BITS, 10**9),
        ]
        await store.run(
            lambda tx, legs=legs, w=worker: post(tx, "fund", f"fund:{w}:{secrets.token_hex(4)}", legs)
        )
    per_worker = cheers // workers

    async def worker(number: int) -> None:
        for i in range(per_worker):

            async def book(tx: Tx, i: int = i) -> None:
                reference = f"cheer:{number}:{i}:{secrets.token_hex(4)}"
                txn = await post(tx, "cheer", reference, cheer_legs(settings, number, CHANNEL, 10))
                await tx.execute(
                    "INSERT INTO cheers (channel, account_id, bits, message, transaction_id, created_at) "
                    "VALUES (?, ?, ?, '', ?, ?)",
                    CHANNEL,
                    number,
                    10,
                    txn,
                    time.time(),
                )

            await store.run(book)

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(workers)))
    return per_worker * workers / (time.perf_counter() - started)


async def plain(pool: asyncpg.Pool, cheers: int, workers: int) -> float:
    account_ids = [row[0] for row in await pool.fetch("SELECT id FROM ledger_accounts ORDER BY id LIMIT 5")]
    per_worker = cheers // workers

    async def worker(number: int) -> None:
        async with pool.acquire() as connection:
            for i in range(per_worker):
                async with connection.transaction():
                    txn = await connection.fetchval(
                        "INSERT INTO journal_transactions (kind, reference, created_at) "
                        "VALUES ('plain', $1, $2) RETURNING id",
                        f"plain:{number}:{i}:{secrets.token_hex(4)}",
                        time.time(),
                    )
                    await connection.execute(
                        "INSERT INTO journal_entries (transaction_id, account_id, currency, amount, "
                        "created_at) VALUES ($1, $2, 'BIT', -10, $3), ($1, $4, 'BIT', 10, $3), "
                        "($1, $5, 'USD', -10, $3), ($1, $6, 'USD', 10, $3), ($1, $7, 'USD', 0, $3)",
                        txn,
                        account_ids[0],
                        time.time(),
                        account_ids[1],
                        account_ids[2],
                        account_ids[3],
                        account_ids[4],
                    )
                    await connection.execute(
                        "INSERT INTO cheers (channel, account_id, bits, message, transaction_id, created_at) "
                        "VALUES ($1, $2, 10, '', $3, $4)",
                        CHANNEL,
                        number,
                        txn,
                        time.time(),
                    )

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(workers)))
    return per_worker * workers / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    admin = await asyncpg.connect(args.dsn)
    print(f"ledger booking vs plain INSERT, {args.cheers} cheers into one channel, PostgreSQL")
    print(f"{'concurrency':>11} {'booked/s':>9} {'plain/s':>9} {'ratio':>6}")
    try:
        for workers in args.concurrency:
            schema = f"bench_ledger_{secrets.token_hex(4)}"
            await admin.execute(f'CREATE SCHEMA "{schema}"')
            try:
                dsn = f"{args.dsn}?search_path={schema}"
                store = await PostgresCommerceStore.open(dsn, max_size=max(workers, 1))
                try:
                    booked_rate = await booked(store, args.cheers, workers)
                finally:
                    await store.close()
                pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max(workers, 1))
                try:
                    plain_rate = await plain(pool, args.cheers, workers)
                finally:
                    await pool.close()
                print(
                    f"{workers:>11} {booked_rate:>9.0f} {plain_rate:>9.0f} {booked_rate / plain_rate:>6.2f}"
                )
            finally:
                await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--cheers", type=int, default=4000)
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32])
    asyncio.run(main(parser.parse_args()))
