"""Idempotency keys, as Stripe keeps them: the first answer for a key is stored and replayed.

A money-moving request must carry ``Idempotency-Key``. The first request with a key claims it
(one INSERT; the primary key decides the race), does the work and stores its status and body;
every later request with that key gets exactly that answer back, byte for byte, while the key
is kept (``idempotency_ttl_s``, at least 24 h). Requests that arrive while the first is still
working wait for its answer rather than doing the work again. The same key with different
parameters is the client's bug and is refused (422). Validation failures happen before the
claim and are not stored; a server error releases the key so that the retry can run.

The business effects are keyed by the idempotency key as well (journal references, the
provider's own idempotency key), so even a crash between booking and storing the answer
cannot book twice: the retry finds the booking and answers from it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from live.api.errors import ApiError
from live.commerce.store import CommerceStore, Tx

_POLL_S = (0.005, 0.01, 0.02, 0.05, 0.1)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method.upper(), path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str | None, max_chars: int) -> str:
    if key is None or not key.strip():
        raise ApiError(
            400,
            "idempotency_key_required",
            "money-moving requests need an Idempotency-Key header (a unique random string)",
        )
    key = key.strip()
    if len(key) > max_chars or not key.isprintable():
        raise ApiError(
            400, "invalid_idempotency_key", f"Idempotency-Key must be 1-{max_chars} printable characters"
        )
    return key


class IdempotencyKeys:
    def __init__(
        self, store: CommerceStore, ttl_s: float, lock_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.lock_s = lock_s
        self.clock = clock
        self._next_sweep = 0.0

    async def once(
        self, account_id: int, key: str, fingerprint: str, work: Callable[[], Awaitable[Answer]]
    ) -> Answer:
        """The stored answer for ``key``, or ``work()``'s, stored, when this request claims it."""
        await self._sweep()
        attempt = 0
        while True:
            claimed, stored = await self.store.run(lambda tx: self._claim(tx, account_id, key, fingerprint))
            if claimed:
                break
            assert stored is not None
            if stored[0] != fingerprint:
                raise ApiError(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was already used with other parameters",
                )
            if stored[1] is not None:
                return Answer(int(stored[1]), json.loads(stored[2]))
            await asyncio.sleep(_POLL_S[min(attempt, len(_POLL_S) - 1)])
            attempt += 1
        try:
            answer = await work()
        except ApiError as error:
            if error.status >= 500:
                await self._release(account_id, key)
                raise
            answer = Answer(error.status, error.body())
        except BaseException:
            await asyncio.shield(self._release(account_id, key))
            raise
        body = json.dumps(answer.body, separators=(",", ":"))

        async def store_answer(tx: Tx) -> None:
            await tx.execute(
                "UPDATE idempotency_keys SET status = ?, body = ? WHERE account_id = ? AND key = ?",
                answer.status,
                body,
                account_id,
                key,
            )

        await self.store.run(store_answer)
        return answer

    async def _claim(
        self, tx: Tx, account_id: int, key: str, fingerprint: str
    ) -> tuple[bool, tuple[Any, ...] | None]:
        now = self.clock()
        row = await tx.one(
            "INSERT INTO idempotency_keys (account_id, key, fingerprint, status, body, created_at) "
            "VALUES (?, ?, ?, NULL, NULL, ?) ON CONFLICT (account_id, key) DO NOTHING RETURNING account_id",
            account_id,
            key,
            fingerprint,
            now,
        )
        if row is not None:
            return True, None
        stored = await tx.one(
            "SELECT fingerprint, status, body, created_at FROM idempotency_keys "
            "WHERE account_id = ? AND key = ?",
            account_id,
            key,
        )
        if stored is None:  # released between our insert and select: try again
            return False, (fingerprint, None, None, now)
        if stored[1] is None and stored[0] == fingerprint and now - stored[3] > self.lock_s:
            # its first request died holding it: take it over (the work is keyed, so it is safe)
            taken = await tx.execute(
                "UPDATE idempotency_keys SET created_at = ? WHERE account_id = ? "
                "AND key = ? AND status IS NULL AND created_at = ?",
                now,
                account_id,
                key,
                stored[3],
            )
            if taken:
                return True, None
        return False, stored

    async def _release(self, account_id: int, key: str) -> None:
        async def release(tx: Tx) -> None:
            await tx.execute(
                "DELETE FROM idempotency_keys WHERE account_id = ? AND key = ? AND status IS NULL",
                account_id,
                key,
            )

        await self.store.run(release)

    async def _sweep(self) -> None:
        now = self.clock()
        if now < self._next_sweep:
            return
        self._next_sweep = now + 3600.0
        cutoff = now - self.ttl_s

        async def sweep(tx: Tx) -> None:
            await tx.execute(
                "DELETE FROM idempotency_keys WHERE created_at < ? AND status IS NOT NULL", cutoff
            )

        await self.store.run(sweep)
