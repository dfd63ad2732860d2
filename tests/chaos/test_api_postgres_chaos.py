"""A PostgreSQL crash mid-request: clients get a clean 5xx or a success, never a half-written change.

`live serve` runs on a private PostgreSQL cluster that the test SIGKILLs (postmaster) and starts
again while clients rename a channel, rotate its stream key and create channels. Every answer
must be a 2xx or a 5xx with the API's JSON error body (no reset, no hang, no 4xx from a lost
row); afterwards the database holds, for each kind of change, the last acknowledged value or
one of the unacknowledged attempts after it, and every channel the API created exists.
After every crash `live ledger check`'s core (`live.commerce.ledger.check`) proves the books;
cheers sent through the crash, each retried with its Idempotency-Key until answered, are
booked exactly once each: no money moved half-way, none twice.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from live.commerce.ledger import CheckReport, check
from live.commerce.sandbox import CARD_SUCCEEDS
from live.commerce.storage import open_commerce_store

from loadgen.faults import process
from loadgen.faults.services import PrivatePostgres
from loadgen.faults.timeline import Timeline

from .live_serve import LiveServe, call

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PASSWORD = "correct horse battery"
BITS_BOUGHT = 1500  # a pack (100, 500, 1500, 5000)
CHEER_RETRY_S = 20.0  # a cheer is retried with its key this long before the test gives up


async def ledger_report(postgres: PrivatePostgres, tmp_path: Path) -> CheckReport:
    """What `live ledger check --database URL` proves, on the books `live serve` wrote."""
    store = await open_commerce_store(postgres.url, tmp_path / "origin-data")
    try:
        return await check(store)
    finally:
        await store.close()


class Outcomes:
    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.lock = threading.Lock()
        self.log: list[tuple[float, str, str, int | str, Any]] = []  # (t, kind, value, status, body)

    def record(self, kind: str, value: str, status: int | str, body: Any) -> None:
        with self.lock:
            self.log.append((time.monotonic(), kind, value, status, body))

    def unclean(self) -> list[tuple[str, str, int | str, Any]]:
        bad = []
        for _, kind, value, status, body in self.log:
            # a clean 5xx (the API's JSON error), or the cheer rate's 429 (try again later)
            clean_error = (isinstance(status, int) and (status >= 500 or (status == 429 and kind == "cheer"))
                           and isinstance(body, dict) and "error" in body)
            if not (isinstance(status, int) and 200 <= status < 300) and not clean_error:
                bad.append((kind, value, status, body))
        return bad

    def possible_final(self, kind: str) -> set[str]:
        """The last acknowledged value and every attempt after it that got no success."""
        tries = [(value, status) for _, k, value, status, _ in self.log if k == kind]
        last_ok = max((i for i, (_, s) in enumerate(tries) if isinstance(s, int) and s < 300), default=-1)
        return {v for v, _ in tries[max(last_ok, 0):]}


def _worker(base: str, token: str, channel: str, kind: str, stop: threading.Event, out: Outcomes) -> None:
    k = 0
    while not stop.is_set():
        k += 1
        value, status, body = f"{kind}-{k}", "no answer", None
        try:
            if kind == "title":
                status, body = call(base, "PATCH", f"/channels/{channel}", {"title": value}, token)
            elif kind == "key":
                status, body = call(base, "POST", f"/channels/{channel}/stream-key", None, token)
                if isinstance(body, dict) and "stream_key" in body:
                    value = body["stream_key"]
        except OSError as error:
            body = repr(error)
        out.record(kind, value, status, body)
        time.sleep(0.05)


async def test_a_postgres_crash_mid_request_gives_clean_errors_and_no_half_written_change(
    postgres: PrivatePostgres, tmp_path: Path
) -> None:
    timeline = Timeline("api-postgres-kill")
    serve = LiveServe(tmp_path, "--database", postgres.url)
    out = Outcomes(timeline)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        serve.start()
        base = serve.base
        assert call(base, "POST", "/accounts", {"username": "chaos", "password": PASSWORD})[0] == 201
        token = call(base, "POST", "/sessions", {"username": "chaos", "password": PASSWORD})[1]["token"]
        assert call(base, "POST", "/channels", {"name": "chaosch"}, token)[0] == 201
        threads = [threading.Thread(target=_worker, args=(base, token, "chaosch", kind, stop, out))
                   for kind in ("title", "key")]
        for thread in threads:
            thread.start()
        time.sleep(2)
        created: dict[str, int | str] = {}
        killer = threading.Thread(target=process.kill, args=(postgres, 2.0, timeline))
        killer.start()
        for i in range(3):  # channel creations while the database is down or coming back
            time.sleep(0.6)
            try:
                created[f"made{i}"] = call(base, "POST", "/channels", {"name": f"made{i}"}, token)[0]
            except OSError as error:
                created[f"made{i}"] = repr(error)
        killer.join()
        back = time.monotonic()
        time.sleep(3)
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        first_ok = min((t for t, _, _, s, _ in out.log if t >= back and isinstance(s, int) and s < 300),
                       default=None)
        db = await asyncpg.connect(postgres.url)
        try:
            row = await db.fetchrow("SELECT title, stream_key_hash FROM channels WHERE name = 'chaosch'")
            names = {r["name"] for r in await db.fetch("SELECT name FROM channels")}
        finally:
            await db.close()
        import hashlib

        key_hashes = {hashlib.sha256(k.encode()).digest(): k for k in out.possible_final("key")}
        statuses: dict[str, int] = {}
        for _, kind, _, status, _ in out.log:
            statuses[f"{kind} {status}"] = statuses.get(f"{kind} {status}", 0) + 1
        timeline.result(
            statuses=statuses, creations=created, unclean=out.unclean()[:5],
            first_success_after_restart_s=None if first_ok is None else round(first_ok - back, 3),
            final_title=row["title"], title_is_possible=row["title"] in out.possible_final("title"),
            key_is_possible=bytes(row["stream_key_hash"]) in key_hashes,
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        serve.close()
        timeline.write()
    results = timeline.results
    assert not out.unclean(), f"answers that were neither 2xx nor a clean 5xx: {out.unclean()[:5]}"
    assert any(s >= 500 for _, _, _, s, _ in out.log if isinstance(s, int)), "the crash was not seen"
    assert results["title_is_possible"] and results["key_is_possible"], results
    for name, status in created.items():
        assert status in (201, 500, 503) or (isinstance(status, int) and status >= 500), (name, status)
        if status == 201:
            assert name in names
    assert results["first_success_after_restart_s"] is not None
    assert results["first_success_after_restart_s"] < 5.0, results
    report = await ledger_report(postgres, tmp_path)
    assert report.ok, report.problems


def _user(base: str, name: str) -> str:
    assert call(base, "POST", "/accounts", {"username": name, "password": PASSWORD})[0] == 201
    token: str = call(base, "POST", "/sessions", {"username": name, "password": PASSWORD})[1]["token"]
    return token


def _cheer_until_answered(base: str, token: str, key: str, out: Outcomes) -> int | str:
    """One cheer, retried with the same Idempotency-Key until a 2xx or 4xx other than 429
    (bounded in time)."""
    deadline = time.monotonic() + CHEER_RETRY_S
    status: int | str = "no answer"
    while time.monotonic() < deadline:
        body: Any = None
        try:
            status, body = call(base, "POST", "/channels/cheerch/cheers", {"bits": 1, "message": key},
                                token, headers={"Idempotency-Key": key})
        except OSError as error:
            status, body = "no answer", repr(error)
        out.record("cheer", key, status, body)
        if status == 429:  # the account's cheer rate (20 per 30 s): come back, same key
            time.sleep(1.0)
            continue
        if isinstance(status, int) and status < 500:
            return status
        time.sleep(0.1)
    return status


async def test_cheers_through_a_postgres_crash_are_booked_once_each_and_the_ledger_holds(
    postgres: PrivatePostgres, tmp_path: Path
) -> None:
    timeline = Timeline("api-postgres-kill-money")
    serve = LiveServe(tmp_path, "--database", postgres.url)
    out = Outcomes(timeline)
    answers: dict[str, int | str] = {}
    stop = threading.Event()

    def cheers() -> None:
        for k in range(10_000):  # bounded; stops when told
            if stop.is_set():
                return
            key = f"cheer-{k:05d}"
            answers[key] = _cheer_until_answered(serve.base, viewer, key, out)
            time.sleep(0.02)

    cheerer = threading.Thread(target=cheers)
    try:
        serve.start()
        streamer = _user(serve.base, "streamer")
        assert call(serve.base, "POST", "/channels", {"name": "cheerch"}, streamer)[0] == 201
        viewer = _user(serve.base, "viewer")
        status, body = call(serve.base, "POST", "/me/bits", {"bits": BITS_BOUGHT, "card": CARD_SUCCEEDS},
                            viewer, headers={"Idempotency-Key": "buy-1"})
        assert status == 202, body
        for _ in range(100):  # the embedded sandbox's webhook credits the bits (bounded: 10 s)
            if call(serve.base, "GET", "/me/wallet", None, viewer)[1]["bits"] == BITS_BOUGHT:
                break
            time.sleep(0.1)
        assert call(serve.base, "GET", "/me/wallet", None, viewer)[1]["bits"] == BITS_BOUGHT
        cheerer.start()
        time.sleep(2)
        process.kill(postgres, 2.0, timeline)
        back = time.monotonic()
        time.sleep(3)
        stop.set()
        cheerer.join(timeout=CHEER_RETRY_S + 15)
        wallet = call(serve.base, "GET", "/me/wallet", None, viewer)[1]["bits"]
        report = await ledger_report(postgres, tmp_path)
        db = await asyncpg.connect(postgres.url)
        try:
            booked = {r["message"]: r["n"] for r in await db.fetch(
                "SELECT message, COUNT(*) AS n FROM cheers GROUP BY message")}
        finally:
            await db.close()
        statuses: dict[str, int] = {}
        for _, _, _, status, _ in out.log:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        timeline.result(
            first_success_after_restart_s=min(
                (round(t - back, 3) for t, _, _, s, _ in out.log if t >= back and s == 201), default=None),
            cheers=len(answers), attempts=statuses,
            unanswered=[k for k, s in answers.items() if s != 201][:5],
            booked=sum(booked.values()), booked_twice=[k for k, n in booked.items() if n > 1][:5],
            wallet_bits=wallet, ledger_ok=report.ok, ledger_problems=list(report.problems[:5]),
            ledger_transactions=report.transactions,
        )
    finally:
        stop.set()
        if cheerer.is_alive():
            cheerer.join(timeout=CHEER_RETRY_S + 15)
        serve.close()
        timeline.write()
    results = timeline.results
    assert not out.unclean(), f"answers that were neither 2xx nor a clean 5xx: {out.unclean()[:5]}"
    assert any(isinstance(s, int) and s >= 500 for _, _, _, s, _ in out.log), "the crash was not seen"
    assert all(status == 201 for status in answers.values()), results
    assert report.ok, report.problems
    assert set(booked) == set(answers) and not results["booked_twice"], results
    assert wallet == BITS_BOUGHT - len(answers), results
