"""The repository contract, proved identically on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import stat
from pathlib import Path

import asyncpg
import pytest
from live.api.migrations import LATEST_VERSION, MIGRATIONS, SchemaTooNew, check_sequence, pending
from live.api.postgres_store import PostgresRepository
from live.api.repository import Conflict, NotFound, Repository
from live.api.sqlite_store import SqliteRepository
from live.api.storage import SQLITE_FILE_NAME, open_repository


def th(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def test_migrations_are_numbered_one_by_one_and_cover_both_dialects() -> None:
    check_sequence()
    assert all(m.sqlite and m.postgres for m in MIGRATIONS)
    assert pending(0) == MIGRATIONS
    assert pending(LATEST_VERSION) == ()
    with pytest.raises(SchemaTooNew):
        pending(LATEST_VERSION + 1)


async def test_open_migrates_to_the_latest_version_and_reopening_keeps_data(
    database: str | None, tmp_path: Path
) -> None:
    first = await open_repository(database, tmp_path)
    try:
        assert await first.schema_version() == LATEST_VERSION  # type: ignore[attr-defined]
        account = await first.create_account("Keeper", "hash")
    finally:
        await first.close()
    second = await open_repository(database, tmp_path)
    try:
        assert await second.schema_version() == LATEST_VERSION  # type: ignore[attr-defined]
        found = await second.account_by_username("keeper")
        assert found is not None and found[0] == account
    finally:
        await second.close()


async def test_sqlite_store_lives_in_the_data_directory(tmp_path: Path) -> None:
    repo = await open_repository(None, tmp_path / "data")
    await repo.close()
    assert (tmp_path / "data" / SQLITE_FILE_NAME).is_file()


async def test_the_data_directory_is_0700_and_the_database_file_0600(tmp_path: Path) -> None:
    data = tmp_path / "data"
    repo = await open_repository(None, data)
    try:
        await repo.create_account("modes", "h")
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        for path in data.iterdir():  # the database and its -wal/-shm companions
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        await repo.close()
    (data / SQLITE_FILE_NAME).chmod(0o644)  # made by an older livetwin: tightened on open
    await (await open_repository(None, data)).close()
    assert stat.S_IMODE((data / SQLITE_FILE_NAME).stat().st_mode) == 0o600


async def test_stream_keys_are_stored_only_as_hashes(database: str | None, tmp_path: Path) -> None:
    repo = await open_repository(database, tmp_path)
    try:
        await repo.create_channel("hashed", None, "live_plaintext_key_1")
        await repo.ensure_channel("seeded", "seeded_plaintext_key")
        await repo.set_stream_key("hashed", "live_plaintext_key_2")
    finally:
        await repo.close()
    if database is None:
        dump = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    else:
        admin = await asyncpg.connect(database.split("?", 1)[0],
                                      server_settings={"search_path": database.split("=", 1)[1]})
        try:
            columns = {r["column_name"] for r in await admin.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'channels' "
                "AND table_schema = current_schema()")}
            assert "stream_key" not in columns
            dump = repr(await admin.fetch("SELECT * FROM channels")).encode()
        finally:
            await admin.close()
    for key in (b"live_plaintext_key_1", b"live_plaintext_key_2", b"seeded_plaintext_key"):
        assert key not in dump


async def test_a_version_1_database_keeps_its_channels_with_keys_hashed(tmp_path: Path) -> None:
    path = tmp_path / SQLITE_FILE_NAME
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for statement in MIGRATIONS[0].sqlite:
        db.execute(statement)
    db.execute("INSERT INTO schema_version VALUES (1)")
    db.execute("INSERT INTO channels (name, owner_id, stream_key, title, created_at) "
               "VALUES ('oldchan', NULL, 'old_plaintext_key_123', 'Old', 1.0)")
    db.commit()
    db.close()
    repo = await SqliteRepository.open(path)
    try:
        channel = await repo.channel_by_stream_key("old_plaintext_key_123")
        assert channel is not None and (channel.name, channel.title) == ("oldchan", "Old")
        assert channel.stream_key_hash == th("old_plaintext_key_123")
    finally:
        await repo.close()


@pytest.mark.postgres
async def test_a_version_1_postgres_database_keeps_its_channels_with_keys_hashed(
    database: str | None, tmp_path: Path
) -> None:
    assert database is not None
    dsn, schema = database.split("?", 1)[0], database.split("=", 1)[1]
    admin = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        await admin.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for statement in MIGRATIONS[0].postgres:
            await admin.execute(statement)
        await admin.execute("INSERT INTO schema_version VALUES (1)")
        await admin.execute("INSERT INTO channels (name, owner_id, stream_key, title, created_at) "
                            "VALUES ('oldchan', NULL, 'old_plaintext_key_123', 'Old', 1.0)")
    finally:
        await admin.close()
    repo = await open_repository(database, tmp_path)
    try:
        channel = await repo.channel_by_stream_key("old_plaintext_key_123")
        assert channel is not None and (channel.name, channel.title) == ("oldchan", "Old")
        assert channel.stream_key_hash == th("old_plaintext_key_123")
    finally:
        await repo.close()


async def test_revoking_an_accounts_sessions_can_spare_one(repo: Repository) -> None:
    mine = await repo.create_account("reva", "h")
    other = await repo.create_account("revb", "h")
    for token in ("a1", "a2", "a3"):
        await repo.create_session(mine.id, th(token), 100.0)
    await repo.create_session(other.id, th("b1"), 100.0)
    assert await repo.delete_sessions_of(mine.id, keep=th("a2")) == 2
    assert await repo.session_by_token_hash(th("a2"), 1.0) is not None
    assert await repo.session_by_token_hash(th("a1"), 1.0) is None
    assert await repo.delete_sessions_of(mine.id) == 1
    assert await repo.session_by_token_hash(th("a2"), 1.0) is None
    assert await repo.session_by_token_hash(th("b1"), 1.0) is not None


async def test_a_database_from_a_newer_livetwin_is_refused(tmp_path: Path) -> None:
    path = tmp_path / SQLITE_FILE_NAME
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (?)", (LATEST_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(SchemaTooNew):
        await SqliteRepository.open(path)


@pytest.mark.postgres  # concurrent migration is a PostgreSQL concern (SQLite has one process)
async def test_postgres_nodes_starting_together_migrate_once(database: str | None, tmp_path: Path) -> None:
    repos = await asyncio.gather(*(open_repository(database, tmp_path) for _ in range(4)))
    try:
        versions = await repos[0]._pool.fetch("SELECT version FROM schema_version")  # type: ignore[attr-defined]
        assert sorted(r["version"] for r in versions) == [m.version for m in MIGRATIONS]
    finally:
        for repo in repos:
            await repo.close()


def test_unknown_database_url_is_refused_without_echoing_credentials(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as caught:
        asyncio.run(open_repository("mysql://user:secret@db/x", tmp_path))
    assert "secret" not in str(caught.value)


async def test_usernames_are_unique_without_regard_to_case(repo: Repository) -> None:
    account = await repo.create_account("Alice_1", "h1")
    assert account.username == "Alice_1"
    with pytest.raises(Conflict) as caught:
        await repo.create_account("alice_1", "h2")
    assert caught.value.field == "username"
    found = await repo.account_by_username("ALICE_1")
    assert found == (account, "h1")
    assert await repo.account_by_username("bob") is None


async def test_password_hash_can_be_replaced(repo: Repository) -> None:
    account = await repo.create_account("carol", "old")
    await repo.set_password_hash(account.id, "new")
    assert await repo.account_by_username("carol") == (account, "new")
    with pytest.raises(NotFound):
        await repo.set_password_hash(account.id + 1000, "x")


async def test_sessions_resolve_until_expiry_or_deletion(repo: Repository) -> None:
    account = await repo.create_account("dave", "h")
    await repo.create_session(account.id, th("t1"), expires_at=2000.0)
    await repo.create_session(account.id, th("t2"), expires_at=3000.0)
    session = await repo.session_by_token_hash(th("t1"), now=1999.0)
    assert session is not None and session.account == account and session.expires_at == 2000.0
    assert await repo.session_by_token_hash(th("t1"), now=2000.0) is None  # expired at the instant
    assert await repo.session_by_token_hash(th("nope"), now=0.0) is None
    await repo.delete_session(th("t2"))
    assert await repo.session_by_token_hash(th("t2"), now=0.0) is None


async def test_expired_sessions_are_swept_and_live_ones_kept(repo: Repository) -> None:
    account = await repo.create_account("erin", "h")
    for i, expiry in enumerate((10.0, 20.0, 30.0)):
        await repo.create_session(account.id, th(f"s{i}"), expires_at=expiry)
    assert await repo.delete_expired_sessions(now=20.0) == 2
    assert await repo.session_by_token_hash(th("s2"), now=20.0) is not None


async def test_channel_creation_rejects_a_taken_name_or_key(repo: Repository) -> None:
    owner = await repo.create_account("frank", "h")
    channel = await repo.create_channel("frankstv", owner.id, "live_key_one")
    assert (channel.name, channel.owner_id, channel.stream_key_hash, channel.title) == (
        "frankstv", owner.id, th("live_key_one"), "")
    with pytest.raises(Conflict) as by_name:
        await repo.create_channel("frankstv", owner.id, "live_key_two")
    assert by_name.value.field == "name"
    with pytest.raises(Conflict) as by_key:
        await repo.create_channel("other", owner.id, "live_key_one")
    assert by_key.value.field == "stream_key"
    assert await repo.channel("frankstv") == channel
    assert await repo.channel("missing") is None
    assert await repo.channels_owned_by(owner.id) == [channel]


async def test_rotating_a_key_makes_the_old_one_resolve_to_nothing(repo: Repository) -> None:
    await repo.create_channel("gina", None, "live_old_key")
    assert (await repo.channel_by_stream_key("live_old_key")) is not None
    rotated = await repo.set_stream_key("gina", "live_new_key")
    assert rotated.stream_key_hash == th("live_new_key")
    assert await repo.channel_by_stream_key("live_old_key") is None
    resolved = await repo.channel_by_stream_key("live_new_key")
    assert resolved is not None and resolved.name == "gina"
    with pytest.raises(NotFound):
        await repo.set_stream_key("nobody", "live_other")


async def test_ensure_channel_creates_then_resets_the_key(repo: Repository) -> None:
    created = await repo.ensure_channel("seeded", "seed_key_1")
    assert created.owner_id is None
    again = await repo.ensure_channel("seeded", "seed_key_2")
    assert again.stream_key_hash == th("seed_key_2") and again.created_at == created.created_at
    assert await repo.channel_by_stream_key("seed_key_1") is None
    await repo.create_channel("another", None, "seed_key_3")
    with pytest.raises(Conflict):
        await repo.ensure_channel("seeded", "seed_key_3")


async def test_titles_change_and_channels_list_in_name_order(repo: Repository) -> None:
    await repo.create_channel("zeta", None, "k_zeta_123")
    await repo.create_channel("alpha", None, "k_alpha_123")
    titled = await repo.set_title("zeta", "Late night")
    assert titled.title == "Late night"
    assert [c.name for c in await repo.list_channels()] == ["alpha", "zeta"]
    with pytest.raises(NotFound):
        await repo.set_title("nobody", "x")


async def test_text_round_trips_unicode_exactly(repo: Repository) -> None:
    await repo.create_channel("uni", None, "k_uni_1234")
    title = "Живой эфир 🎮 ñ \u200d"
    assert (await repo.set_title("uni", title)).title == title
    assert (await repo.channel("uni")).title == title  # type: ignore[union-attr]


@pytest.mark.postgres
async def test_postgres_errors_other_than_uniqueness_are_not_disguised(database: str | None,
                                                                        tmp_path: Path) -> None:
    repo = await open_repository(database, tmp_path)
    try:
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await repo.create_session(999_999, th("x"), 1.0)
    finally:
        await repo.close()


async def test_channel_pages_walk_every_channel_once_in_name_order(repo: Repository) -> None:
    names = [f"chan_{i:02d}" for i in range(7)]
    for name in reversed(names):
        await repo.create_channel(name, None, f"key_{name}")
    seen: list[str] = []
    after: str | None = None
    while True:
        page = await repo.channels_page(after, 3)
        seen.extend(c.name for c in page)
        if len(page) < 3:
            break
        after = page[-1].name
    assert seen == names


async def _fail_session_deletes(repo: Repository) -> None:
    """A database fault mid-change: every DELETE on sessions raises inside the database."""
    if isinstance(repo, SqliteRepository):
        await repo._run(repo._change, "CREATE TRIGGER injected_fault BEFORE DELETE ON sessions "
                        "BEGIN SELECT RAISE(ABORT, 'injected fault'); END", ())
    else:
        assert isinstance(repo, PostgresRepository)
        await repo._pool.execute(
            "CREATE FUNCTION injected_fault() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'injected fault'; END $$; "
            "CREATE TRIGGER injected_fault BEFORE DELETE ON sessions "
            "FOR EACH ROW EXECUTE FUNCTION injected_fault();")


async def test_a_password_change_that_fails_half_way_changes_nothing(repo: Repository) -> None:
    account = await repo.create_account("dora", "old")
    for token in ("d1", "d2"):
        await repo.create_session(account.id, th(token), 100.0)
    assert await repo.change_password(account.id, "new", keep=th("d1")) == 1
    assert await repo.account_by_username("dora") == (account, "new")
    await repo.create_session(account.id, th("d3"), 100.0)
    await _fail_session_deletes(repo)
    with pytest.raises(Exception, match="injected fault"):
        await repo.change_password(account.id, "newer", keep=th("d1"))
    assert await repo.account_by_username("dora") == (account, "new")  # not half-written
    assert await repo.session_by_token_hash(th("d3"), 1.0) is not None
    with pytest.raises(NotFound):
        await repo.change_password(account.id + 1000, "x", keep=None)
