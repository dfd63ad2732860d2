"""Schema migrations of the commerce tables, both dialects, recorded in commerce_schema_version.

Kept apart from the API's list (``live.api.migrations``, same shape and rules) so that the
books version on their own: each step runs in one transaction with the bump of its version,
and a database newer than this code is refused. The journal is append-only in the database
itself: triggers refuse UPDATE and DELETE of journal rows, so a bug cannot rewrite history.
"""

from __future__ import annotations

from live.api.migrations import Migration, SchemaTooNew

_TABLES = """
CREATE TABLE ledger_accounts (
    id {pk},
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    currency TEXT NOT NULL,
    balance {int} NOT NULL,
    min_balance {int},
    CONSTRAINT ledger_accounts_key UNIQUE (kind, owner, currency)
);
CREATE TABLE journal_transactions (
    id {pk},
    kind TEXT NOT NULL,
    reference TEXT NOT NULL CONSTRAINT journal_transactions_reference UNIQUE,
    created_at {real} NOT NULL
);
CREATE TABLE journal_entries (
    id {pk},
    transaction_id {int} NOT NULL REFERENCES journal_transactions(id),
    account_id {int} NOT NULL REFERENCES ledger_accounts(id),
    currency TEXT NOT NULL,
    amount {int} NOT NULL,
    created_at {real} NOT NULL
);
CREATE INDEX journal_entries_transaction ON journal_entries(transaction_id);
CREATE INDEX journal_entries_account ON journal_entries(account_id, created_at);
CREATE TABLE idempotency_keys (
    account_id {int} NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER,
    body TEXT,
    created_at {real} NOT NULL,
    PRIMARY KEY (account_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);
CREATE TABLE provider_events (
    event_id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    received_at {real} NOT NULL
);
CREATE TABLE payment_intents (
    id TEXT PRIMARY KEY,
    account_id {int} NOT NULL,
    purpose TEXT NOT NULL,
    channel TEXT,
    tier INTEGER,
    recipient_id {int},
    bits {int},
    amount {int} NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    refunded INTEGER NOT NULL DEFAULT 0,
    created_at {real} NOT NULL,
    updated_at {real} NOT NULL
);
CREATE INDEX payment_intents_account ON payment_intents(account_id);
CREATE TABLE subscriptions (
    id {pk},
    channel TEXT NOT NULL,
    account_id {int} NOT NULL,
    tier INTEGER NOT NULL,
    current_period_end {real} NOT NULL,
    cancel_at_period_end INTEGER NOT NULL DEFAULT 0,
    provider_subscription TEXT,
    gifted_by {int},
    created_at {real} NOT NULL,
    CONSTRAINT subscriptions_key UNIQUE (channel, account_id)
);
CREATE TABLE cheers (
    id {pk},
    channel TEXT NOT NULL,
    account_id {int} NOT NULL,
    bits {int} NOT NULL,
    message TEXT NOT NULL,
    transaction_id {int} NOT NULL REFERENCES journal_transactions(id),
    created_at {real} NOT NULL
);
CREATE TABLE ad_breaks (
    id {pk},
    channel TEXT NOT NULL,
    starts_at {real} NOT NULL,
    duration_s INTEGER NOT NULL,
    created_at {real} NOT NULL
);
CREATE INDEX ad_breaks_channel ON ad_breaks(channel, starts_at);
CREATE TABLE ad_impressions (
    ad_break_id {int} NOT NULL REFERENCES ad_breaks(id),
    viewer TEXT NOT NULL,
    creative INTEGER NOT NULL,
    created_at {real} NOT NULL,
    PRIMARY KEY (ad_break_id, viewer, creative)
);
CREATE TABLE ad_impression_counts (
    channel TEXT PRIMARY KEY,
    impressions {int} NOT NULL
);
CREATE TABLE payouts (
    channel TEXT NOT NULL,
    period TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount {int} NOT NULL,
    transaction_id {int} NOT NULL REFERENCES journal_transactions(id),
    created_at {real} NOT NULL,
    PRIMARY KEY (channel, period, currency)
)
"""

_SQLITE_GUARDS = tuple(
    f"""CREATE TRIGGER {table}_append_only_{verb.lower()} BEFORE {verb} ON {table}
        BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END"""
    for table in ("journal_entries", "journal_transactions")
    for verb in ("UPDATE", "DELETE")
)

_POSTGRES_GUARDS = (
    """CREATE FUNCTION journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'the journal is append-only'; END $$""",
    """CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON journal_entries
       FOR EACH ROW EXECUTE FUNCTION journal_append_only()""",
    """CREATE TRIGGER journal_transactions_append_only BEFORE UPDATE OR DELETE ON journal_transactions
       FOR EACH ROW EXECUTE FUNCTION journal_append_only()""",
)


def _statements(**types: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in _TABLES.format(**types).split(";") if s.strip())


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "ledger, journal, idempotency keys, provider events, purchases, subscriptions, ads, payouts",
        sqlite=_statements(pk="INTEGER PRIMARY KEY AUTOINCREMENT", int="INTEGER", real="REAL")
        + _SQLITE_GUARDS,
        postgres=_statements(pk="BIGSERIAL PRIMARY KEY", int="BIGINT", real="DOUBLE PRECISION")
        + _POSTGRES_GUARDS,
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version
VERSION_TABLE = "commerce_schema_version"


def pending(current: int) -> tuple[Migration, ...]:
    if current > LATEST_VERSION:
        raise SchemaTooNew(
            f"commerce schema is version {current}, this livetwin knows up to {LATEST_VERSION}"
        )
    return tuple(m for m in MIGRATIONS if m.version > current)
