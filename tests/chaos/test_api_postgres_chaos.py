"""A PostgreSQL crash mid-request: clients get a clean 5xx or a success, never a half-written change.

`live serve` runs on a private PostgreSQL cluster that the test SIGKILLs (postmaster) and starts
again while clients rename a channel, rotate its stream key and create channels. Every answer
must be a 2xx or a 5xx with the API's JSON error body (no reset, no hang, no 4xx from a lost
row); afterwards the database holds, for each kind of change, the last acknowledged value or
one of the unacknowledged attempts after it, and every channel the API created exists.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from loadgen.faults import process
from loadgen.faults.services import PrivatePostgres
from loadgen.faults.timeline import Timeline

from .live_serve import LiveServe, call

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PASSWORD = "correct horse battery"


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
            clean_error = (isinstance(status, int) and status >= 500
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
