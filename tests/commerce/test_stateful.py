"""The books survive anything: buy, cheer, subscribe, gift, renew, cancel, refund and payout with
webhooks delayed, duplicated and reordered, on SQLite and on PostgreSQL.

A model keeps what each wallet and each channel should hold, applying an event's effect the
first time the event is delivered (never again); after every step the books must agree with it,
every transaction must balance, every cached balance must be true and no wallet be negative.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from live.api.errors import ApiError
from live.api.storage import open_repository
from live.commerce.ledger import AccountKind, balances, check
from live.commerce.provider import INTENT_SUCCEEDED, INVOICE_PAID, ProviderEvent
from live.commerce.sandbox import (
    CARD_DECLINED,
    CARD_INSUFFICIENT_FUNDS,
    CARD_PENDING,
    CARD_SUCCEEDS,
    SandboxCore,
)
from live.commerce.service import Commerce
from live.commerce.settings import CommerceSettings, share
from live.commerce.storage import open_commerce_store

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
USERS = (1, 2, 3)
CHANNELS = ("alpha", "beta")
CARDS = (CARD_SUCCEEDS, CARD_SUCCEEDS, CARD_PENDING, CARD_DECLINED, CARD_INSUFFICIENT_FUNDS)
SETTINGS = CommerceSettings()
MONTH = 31 * 24 * 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


class Books(RuleBasedStateMachine):
    backend = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp(prefix="books-"))
        self.schema: str | None = None
        self.clock = Clock()
        self.sandbox = SandboxCore(clock=self.clock, settle_after_s=60.0)
        self.run(self._open())
        self.pending: list[ProviderEvent] = []
        self.delivered: set[str] = set()
        self.wallet: dict[int, int] = defaultdict(int)
        self.credited: dict[str, int] = defaultdict(int)  # channel earnings ever credited
        self.paid: dict[str, int] = defaultdict(int)
        self.bits_intents: list[tuple[int, str, int]] = []  # (account, intent, bits) credited ones
        self.refunded: set[str] = set()
        self.keys = 0

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    async def _open(self) -> None:
        database = None
        if self.backend == "postgres":
            admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
            self.schema = f"livetwin_books_{id(self):x}_{int(self.loop.time() * 1e6) % 10**9}"
            await admin.execute(f'CREATE SCHEMA "{self.schema}"')
            await admin.close()
            database = f"{PG_ADMIN_DSN}?search_path={self.schema}"
        self.repo = await open_repository(database, self.tmp)
        self.store = await open_commerce_store(database, self.tmp)
        for user in USERS:
            await self.repo.create_account(f"user{user}", "x")
        owner = await self.repo.create_account("owner", "x")
        for channel in CHANNELS:
            await self.repo.create_channel(channel, owner.id, f"live_key_{channel}")
        self.commerce = Commerce(self.store, self.sandbox, self.repo, SETTINGS, clock=self.clock)

    def teardown(self) -> None:
        async def close() -> None:
            await self.store.close()
            await self.repo.close()
            if self.schema is not None:
                admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
                await admin.execute(f'DROP SCHEMA "{self.schema}" CASCADE')
                await admin.close()

        self.run(close())
        self.loop.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def key(self) -> str:
        self.keys += 1
        return f"k{self.keys}"

    def collect(self) -> None:
        self.pending.extend(self.sandbox.take_events())

    # ---------------------------------------------------------------- money in

    @rule(user=st.sampled_from(USERS), bits=st.sampled_from([100, 500, 1500]), card=st.sampled_from(CARDS))
    def buy(self, user: int, bits: int, card: str) -> None:
        try:
            status, _ = self.run(self.commerce.buy_bits(user, bits, "USD", card, self.key()))
            assert status == 202
        except ApiError as error:
            assert error.status == 402 and card in (CARD_DECLINED, CARD_INSUFFICIENT_FUNDS)
        self.collect()

    @rule(
        user=st.sampled_from(USERS),
        channel=st.sampled_from(CHANNELS),
        tier=st.integers(1, 3),
        card=st.sampled_from(CARDS),
        gift_to=st.none() | st.sampled_from(USERS),
    )
    def subscribe(self, user: int, channel: str, tier: int, card: str, gift_to: int | None) -> None:
        recipient = None if gift_to is None or gift_to == user else f"user{gift_to}"
        try:
            self.run(self.commerce.subscribe(user, channel, tier, "USD", card, recipient, self.key()))
        except ApiError as error:
            assert error.status in (402, 409), error.body()
        self.collect()

    @rule(data=st.data())
    def renew(self, data: st.DataObject) -> None:
        live = [s for s in self.sandbox.subscriptions.values() if not s.canceled]
        if live:
            self.sandbox.renew(data.draw(st.sampled_from(live)).id)
            self.collect()

    @rule(user=st.sampled_from(USERS), channel=st.sampled_from(CHANNELS))
    def cancel(self, user: int, channel: str) -> None:
        try:
            self.run(self.commerce.cancel(user, channel))
        except ApiError as error:
            assert error.status == 404

    @rule(seconds=st.sampled_from([1.0, 61.0, 3600.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.now += seconds
        self.collect()  # pending cards settle

    # ---------------------------------------------------------------- webhooks

    @precondition(lambda self: self.pending)
    @rule(data=st.data(), keep_a_copy=st.booleans())
    def deliver(self, data: st.DataObject, keep_a_copy: bool) -> None:
        """Any pending event, not necessarily the oldest; sometimes it will come again later."""
        index = data.draw(st.integers(0, len(self.pending) - 1))
        event = self.pending[index] if keep_a_copy else self.pending.pop(index)
        outcome = self.run(self.commerce.apply_event(event))
        first = event.id not in self.delivered
        assert (outcome == "duplicate") == (not first)
        if first:
            self.delivered.add(event.id)
            self.model(event)

    def model(self, event: ProviderEvent) -> None:
        obj = event.object
        if event.type == INTENT_SUCCEEDED:
            meta = obj["metadata"]
            if meta["purpose"] == "bits":
                self.wallet[int(meta["account"])] += int(meta["bits"])
                self.bits_intents.append((int(meta["account"]), obj["id"], int(meta["bits"])))
                return
        elif event.type != INVOICE_PAID:
            return
        meta = obj["metadata"]
        tier = SETTINGS.tier(int(meta["tier"]))
        assert tier is not None
        self.credited[meta["channel"]] += share(int(obj["amount"]), tier.channel_share_bp)

    # ---------------------------------------------------------------- money out

    @rule(user=st.sampled_from(USERS), channel=st.sampled_from(CHANNELS), bits=st.integers(1, 700))
    def cheer(self, user: int, channel: str, bits: int) -> None:
        try:
            self.run(self.commerce.cheer(user, f"user{user}", channel, bits, "", self.key()))
        except ApiError as error:
            assert error.status == 402 and bits > self.wallet[user]
            return
        assert bits <= self.wallet[user]
        self.wallet[user] -= bits
        self.credited[channel] += share(bits * SETTINGS.bit_value, SETTINGS.bits_channel_share_bp)

    @precondition(lambda self: self.bits_intents)
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        user, intent, bits = data.draw(st.sampled_from(self.bits_intents))
        try:
            _, answer = self.run(self.commerce.refund(user, intent, self.key()))
        except ApiError as error:
            assert error.status == 409 and self.wallet[user] < bits and intent not in self.refunded, (
                error.body()
            )
            return
        if intent in self.refunded:  # refunding again is answered, and books nothing
            assert answer["refund"]["already_refunded"]
            return
        self.refunded.add(intent)
        self.wallet[user] -= bits
        self.collect()

    @rule()
    def payout(self) -> None:
        self.clock.now += MONTH
        now = datetime.fromtimestamp(self.clock.now, UTC)
        last_month = (now.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        paid = self.run(self.commerce.run_payouts(last_month))
        for payout in paid:
            self.paid[payout["channel"]] += payout["amount"]

    # ---------------------------------------------------------------- invariants

    @invariant()
    def books_balance_and_agree_with_the_model(self) -> None:
        report = self.run(check(self.store))
        assert report.ok, report.problems

        async def read(tx: Any) -> tuple[dict[int, int], dict[str, int], int]:
            wallets = {u: (await balances(tx, AccountKind.WALLET, str(u))).get("BIT", 0) for u in USERS}
            earnings = {c: (await balances(tx, AccountKind.EARNINGS, c)).get("USD", 0) for c in CHANNELS}
            row = await tx.one("SELECT COUNT(*) FROM provider_events")
            return wallets, earnings, int(row[0])

        wallets, earnings, events = self.run(self.store.run(read))
        assert wallets == {u: self.wallet[u] for u in USERS}
        assert all(bits >= 0 for bits in wallets.values())
        for channel in CHANNELS:
            assert earnings[channel] + self.paid[channel] == self.credited[channel]
        assert events == len(self.delivered)  # each provider event recorded exactly once


def _run(backend: str, examples: int) -> None:
    machine = type(f"Books_{backend}", (Books,), {"backend": backend})
    test = machine.TestCase
    test.settings = settings(
        max_examples=examples,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    test("runTest").runTest()


def test_the_books_hold_under_reordered_duplicated_webhooks_on_sqlite() -> None:
    _run("sqlite", 60)


def test_the_books_hold_under_reordered_duplicated_webhooks_on_postgres() -> None:
    try:
        asyncio.run(_probe())
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        pytest.fail(f"PostgreSQL needed at {PG_ADMIN_DSN}: {error}")
    _run("postgres", 20)


async def _probe() -> None:
    connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    await connection.close()
