"""Which ingest node holds which live channel: leases in a NATS JetStream key-value bucket.

A stream key is accepted by at most one ingest node at a time (issue 16). Before a node lets a
publisher claim a channel it creates the channel's key in the bucket with its node id
(``KeyValue.create`` succeeds only when the key does not exist, a compare-and-set on the
subject's last sequence); a second node finds the key held and refuses the publisher. The
holder renews the entry every ``ttl_s / 3`` with a revision-checked update while the stream is
live; the bucket's TTL (the stream's ``max_age``) removes an entry ``ttl_s`` after its last
write, so a dead node's leases expire on their own. A node that finds its renewal refused (the
lease expired and someone else took it) stops its stream. docs/scaleout.md cites the NATS docs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.js.api import KeyValueConfig
from nats.js.errors import (
    BucketNotFoundError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NoKeysError,
)
from nats.js.kv import KeyValue

from live.ingest.registry import ChannelBusy

log = logging.getLogger("live.ingest.leases")

BUCKET = "livetwin_stream_leases"
#: How long a publisher waits for the control plane before it is refused.
ACQUIRE_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    url: str  # nats://HOST:PORT
    node_id: str  # this ingest node's name, stored as the holder
    ttl_s: float = 6.0  # a dead node's leases expire this long after its last renewal
    #: A lease whose channel never went live here (the publisher left before claiming) is
    #: released after this long.
    claim_grace_s: float = 5.0
    bucket: str = BUCKET  # every node of one platform uses the same bucket
    #: What else the lease tells about the stream's placement (e.g. the origins it is pushed to).
    details: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not self.url.startswith(("nats://", "tls://")):
            raise ValueError(f"control plane {self.url!r}: expected nats://HOST:PORT")
        if self.ttl_s < 1.0 or not self.node_id:
            raise ValueError("the lease TTL is at least 1 s and the node needs an id")


@dataclass(slots=True)
class _Held:
    revision: int
    since: float
    task: asyncio.Task[None] | None = None


class StreamLeases:
    """This node's leases. ``is_live(channel)`` says whether the channel is live here;
    ``on_lost(channel, reason)`` is called when a held lease was taken over."""

    def __init__(self, settings: LeaseSettings, is_live: Callable[[str], bool],
                 on_lost: Callable[[str, str], object]) -> None:
        self.settings = settings
        self._is_live = is_live
        self._on_lost = on_lost
        self._nc: NatsClient | None = None
        self._kv: KeyValue | None = None
        self._held: dict[str, _Held] = {}
        self.refused = 0

    async def start(self) -> None:
        self._nc = await nats.connect(self.settings.url, connect_timeout=5,
                                      max_reconnect_attempts=-1, name=self.settings.node_id)
        js = self._nc.jetstream()
        try:
            self._kv = await js.key_value(self.settings.bucket)
        except BucketNotFoundError:
            self._kv = await js.create_key_value(KeyValueConfig(bucket=self.settings.bucket, history=1,
                                                                ttl=self.settings.ttl_s))

    async def close(self) -> None:
        for channel in list(self._held):
            await self.release(channel)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None

    def _value(self) -> bytes:
        return json.dumps({**dict(self.settings.details), "node": self.settings.node_id,
                           "at": time.time()}).encode()

    async def holder(self, channel: str) -> str | None:
        """The node holding ``channel`` now, or None."""
        assert self._kv is not None
        try:
            entry = await self._kv.get(channel)
        except KeyNotFoundError:  # KeyDeletedError is one too
            return None
        try:
            node = json.loads(entry.value or b"{}").get("node")
        except ValueError:
            return None
        return node if isinstance(node, str) else None

    async def acquire(self, channel: str) -> None:
        """Hold ``channel`` for this node, or raise ``ChannelBusy`` naming the holder. An
        unreachable control plane refuses too: two nodes must never both accept a key."""
        if channel in self._held:
            return
        try:
            async with asyncio.timeout(ACQUIRE_TIMEOUT_S):
                await self._acquire(channel)
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            self.refused += 1
            raise ChannelBusy(f"channel {channel}: the control plane cannot be reached "
                              f"({type(exc).__name__}: {exc}); refusing the publisher") from None

    async def _acquire(self, channel: str) -> None:
        assert self._kv is not None
        revision = 0
        for _ in range(3):  # the key can vanish (expire, be released) between our two calls
            try:
                revision = await self._kv.create(channel, self._value())
                break
            except KeyWrongLastSequenceError:
                pass
            try:
                entry = await self._kv.get(channel)
                node = json.loads(entry.value or b"{}").get("node")
            except KeyNotFoundError:
                continue
            except ValueError:
                node = None
            if node != self.settings.node_id:
                self.refused += 1
                raise ChannelBusy(f"channel {channel} is live on ingest node {node}")
            try:  # ours from before (the publisher reconnected here): renew it
                revision = await self._kv.update(channel, self._value(), last=entry.revision)
                break
            except KeyWrongLastSequenceError:
                continue
        else:
            raise ChannelBusy(f"channel {channel}: its lease is contended; try again")
        held = self._held[channel] = _Held(revision, time.monotonic())
        held.task = asyncio.get_running_loop().create_task(self._renew(channel, held))
        log.info("lease on %s taken by %s", channel, self.settings.node_id)

    async def release(self, channel: str) -> None:
        held = self._held.pop(channel, None)
        if held is None:
            return
        if held.task is not None and held.task is not asyncio.current_task():
            held.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await held.task
        if self._kv is not None:
            with contextlib.suppress(Exception):
                await self._kv.delete(channel, last=held.revision)
        log.info("lease on %s released by %s", channel, self.settings.node_id)

    async def _renew(self, channel: str, held: _Held) -> None:
        settings = self.settings
        assert self._kv is not None
        while True:
            await asyncio.sleep(settings.ttl_s / 3)
            if not self._is_live(channel) and time.monotonic() - held.since > settings.claim_grace_s:
                await self.release(channel)
                return
            try:
                held.revision = await self._kv.update(channel, self._value(), last=held.revision)
            except KeyWrongLastSequenceError:
                self._held.pop(channel, None)
                reason = f"lease on {channel} lost: it expired and another node holds it now"
                log.error("%s", reason)
                self._on_lost(channel, reason)
                return
            except Exception as exc:  # NATS unreachable: retry; the TTL decides if it is lost
                log.warning("lease on %s not renewed: %s", channel, exc)


async def list_leases(url: str, bucket: str = BUCKET) -> dict[str, dict[str, object]]:
    """Every channel leased now, with what its holder stored (``live leases``)."""
    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        try:
            kv = await nc.jetstream().key_value(bucket)
            keys = await kv.keys()
        except (BucketNotFoundError, NoKeysError):
            return {}
        found: dict[str, dict[str, object]] = {}
        for key in sorted(keys):
            try:
                entry = await kv.get(key)
                value = json.loads(entry.value or b"{}")
            except (KeyNotFoundError, ValueError):
                continue
            if isinstance(value, dict):
                found[key] = value
        return found
    finally:
        await nc.close()


#: Channels a directory keeps (the bucket's keys beyond it are not listed; logged).
MAX_DIRECTORY = 100_000


class LeaseDirectory:
    """Every channel live anywhere in the platform, read from the lease bucket: an API node
    answers ``/api/v1/streams`` from it whatever node the stream lives on. Polled every
    ``interval_s`` (a bucket's TTL expiry leaves no delete marker a watcher would see, so a
    listing is the one view that drops dead nodes' leases); ``channels()`` is the last poll."""

    def __init__(self, url: str, bucket: str = BUCKET, interval_s: float = 2.0) -> None:
        if not url.startswith(("nats://", "tls://")):
            raise ValueError(f"control plane {url!r}: expected nats://HOST:PORT")
        self.url = url
        self.bucket = bucket
        self.interval_s = interval_s
        self._nc: NatsClient | None = None
        self._live: dict[str, dict[str, object]] = {}
        self._task: asyncio.Task[None] | None = None
        self.polls = 0

    def channels(self) -> dict[str, dict[str, object]]:
        return self._live

    async def start(self) -> None:
        self._nc = await nats.connect(self.url, connect_timeout=5, max_reconnect_attempts=-1)
        await self.poll()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.poll()
            except Exception as exc:  # NATS unreachable: keep the last listing, retry
                log.warning("lease directory not refreshed: %s", exc)

    async def poll(self) -> None:
        assert self._nc is not None
        try:
            kv = await self._nc.jetstream().key_value(self.bucket)
            keys = await kv.keys()
        except (BucketNotFoundError, NoKeysError):
            self._live = {}
            self.polls += 1
            return
        if len(keys) > MAX_DIRECTORY:
            log.warning("lease directory: %d channels, listing the first %d", len(keys), MAX_DIRECTORY)
        found: dict[str, dict[str, object]] = {}
        for key in sorted(keys)[:MAX_DIRECTORY]:
            try:
                entry = await kv.get(key)
                value = json.loads(entry.value or b"{}")
            except (KeyNotFoundError, ValueError):
                continue
            if isinstance(value, dict):
                found[key] = value
        self._live = found
        self.polls += 1
