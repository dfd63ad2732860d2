"""The room log across chat nodes: JetStream holds it, core NATS fans it out.

Each room is one JetStream stream (``CHAT_{room}``, subject ``chat.log.{room}``) capped at the
history window, so its stream sequence is the room's contiguous message id, assigned in one place
no matter which node published. A node publishes an event to the stream (the ack carries the id),
then the same event with its id on the core subject ``chat.live.{room}``, which every node serving
the room subscribes to once. Core NATS is at-most-once and unordered across publishers, so a
``Sequencer`` restores id order and reports gaps, which are filled from the stream by sequence
(``get_msg``); ids the stream no longer holds are given up. A periodic check of the stream's last
sequence catches an event whose live copy never came (its publisher died between the two steps).
Moderation snapshots live in the key-value bucket ``chat_moderation`` (one key per room), so a
ban outlives the stream's window.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import (
    BadRequestError,
    BucketNotFoundError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from live.chat.broker import Deliver, Snapshot, Subscription
from live.chat.protocol import PeerError, RoomEvent, decode_event, encode_event
from live.chat.sequencer import Sequencer

log = logging.getLogger("live.chat.nats")

_FETCH_CONCURRENCY = 64
SNAPSHOT_BUCKET = "chat_moderation"  # JetStream key-value bucket: room -> b"AS_OF\n" + snapshot JSON


def stream_name(room: str) -> str:
    return f"CHAT_{room}"


class _NatsSubscription:
    def __init__(self, broker: NatsBroker, room: str, deliver: Deliver) -> None:
        self.broker = broker
        self.room = room
        self.deliver = deliver
        self.backlog: tuple[RoomEvent, ...] = ()
        self.snapshot: Snapshot | None = None
        self.sequencer: Sequencer[RoomEvent] | None = None
        self._early: list[RoomEvent] = []
        self._core: object | None = None
        self._repair: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._closed = False

    async def open(self) -> None:
        nc, js = await self.broker._connection()
        await self.broker._ensure_stream(self.room)
        self._core = await nc.subscribe(f"chat.live.{self.room}", cb=self._on_live)
        self.snapshot = await self.broker._load_snapshot(self.room)
        info = await js.stream_info(stream_name(self.room))
        first, last = max(info.state.first_seq, 1), info.state.last_seq
        first = max(first, last - self.broker.history_window + 1)
        self.backlog = tuple(await self.broker._read(self.room, range(first, last + 1)))
        self.sequencer = Sequencer(last + 1, max_pending=self.broker.history_window)
        early, self._early = self._early, []
        for event in early:
            self._offer(event)
        self._watch = asyncio.create_task(self._watch_tail())

    async def _on_live(self, msg: Msg) -> None:
        try:
            event = decode_event(msg.data)
        except PeerError as error:
            log.warning("chat %s: dropped a live event from a peer: %s", self.room, error)
            return
        if self.sequencer is None:
            self._early.append(event)
        else:
            self._offer(event)

    def _offer(self, event: RoomEvent) -> None:
        assert self.sequencer is not None
        for ready in self.sequencer.offer(event.id, event):
            self.deliver(ready)
        if self.sequencer.gap() is not None:
            self._start_repair(self.broker.gap_wait_s)

    def _start_repair(self, wait_s: float) -> None:
        if self._repair is None or self._repair.done():
            self._repair = asyncio.create_task(self._fill(wait_s))

    async def _fill(self, wait_s: float, up_to: int = 0) -> None:
        """Wait briefly for late live copies, then read the still-missing ids from the stream."""
        assert self.sequencer is not None
        await asyncio.sleep(wait_s)
        while not self._closed:
            gap = self.sequencer.gap()
            if gap is None:
                if up_to < self.sequencer.next_id:
                    return
                gap = (self.sequencer.next_id, up_to)
            start, end = gap
            end = min(end, start + _FETCH_CONCURRENCY - 1)
            try:
                events = await self.broker._read(self.room, range(start, end + 1))
            except Exception as error:  # broker unreachable: try again after a pause
                log.warning("chat %s: gap fill %d-%d failed: %s", self.room, start, end, error)
                await asyncio.sleep(0.5)
                continue
            found = {event.id for event in events}
            for event in events:
                for ready in self.sequencer.offer(event.id, event):
                    self.deliver(ready)
            missing = [i for i in range(start, end + 1) if i not in found and i >= self.sequencer.next_id]
            if missing:
                # The stream no longer holds them (beyond the window): give them up, in order.
                for ready in self.sequencer.skip_to(max(missing) + 1):
                    self.deliver(ready)

    async def _watch_tail(self) -> None:
        _, js = await self.broker._connection()
        while not self._closed:
            await asyncio.sleep(self.broker.tail_check_s)
            try:
                info = await js.stream_info(stream_name(self.room))
            except Exception as error:
                log.warning("chat %s: stream check failed: %s", self.room, error)
                continue
            assert self.sequencer is not None
            if info.state.last_seq >= self.sequencer.next_id and (
                self._repair is None or self._repair.done()
            ):
                self._repair = asyncio.create_task(self._fill(0.0, info.state.last_seq))

    async def close(self) -> None:
        self._closed = True
        for task in (self._repair, self._watch):
            if task is not None:
                task.cancel()
        if self._core is not None:
            try:
                await self._core.unsubscribe()  # type: ignore[attr-defined]
            except Exception as error:  # connection already gone
                log.debug("chat %s: unsubscribe: %s", self.room, error)


def _parse_snapshot(value: bytes | None) -> Snapshot | None:
    head, _, payload = (value or b"").partition(b"\n")
    if not head.isdigit():
        log.warning("chat: unreadable moderation snapshot entry")
        return None
    return Snapshot(int(head), payload)


class NatsBroker:
    """``Broker`` over NATS JetStream (history, ids) and core NATS (live fan-out)."""

    def __init__(
        self,
        url: str,
        history_window: int = 1000,
        gap_wait_s: float = 0.05,
        tail_check_s: float = 1.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self.history_window = history_window
        self.gap_wait_s = gap_wait_s
        self.tail_check_s = tail_check_s
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._lock = asyncio.Lock()
        self._streams: set[str] = set()
        self._subscriptions: list[_NatsSubscription] = []
        self._bucket: KeyValue | None = None

    async def _connection(self) -> tuple[NatsClient, JetStreamContext]:
        async with self._lock:
            if self._nc is None or self._js is None:
                # nats-py keeps retrying a refused first connection; bound it so a chat handshake
                # fails with a clear error instead of hanging while NATS is down.
                try:
                    self._nc = await asyncio.wait_for(
                        nats.connect(
                            self.url, name="live-chat", max_reconnect_attempts=-1, connect_timeout=5
                        ),
                        self.connect_timeout_s,
                    )
                except TimeoutError:
                    raise ConnectionError(
                        f"NATS at {self.url} did not answer within {self.connect_timeout_s} s"
                    ) from None
                self._js = self._nc.jetstream()
            return self._nc, self._js

    async def _ensure_stream(self, room: str) -> None:
        if room in self._streams:
            return
        _, js = await self._connection()
        config = StreamConfig(
            name=stream_name(room),
            subjects=[f"chat.log.{room}"],
            max_msgs=self.history_window,
            discard=DiscardPolicy.OLD,
            storage=StorageType.FILE,
            allow_direct=True,
        )
        try:
            await js.add_stream(config)
        except BadRequestError:  # exists with other limits (a node with another window): adopt ours
            await js.update_stream(config)
        self._streams.add(room)

    async def _read(self, room: str, ids: Iterable[int]) -> list[RoomEvent]:
        """The events with these ids that the stream still holds, in id order."""
        _, js = await self._connection()
        name = stream_name(room)

        async def one(seq: int) -> RoomEvent | None:
            try:
                raw = await js.get_msg(name, seq)
            except NotFoundError:
                return None
            if raw.data is None:
                return None
            try:
                return dataclasses.replace(decode_event(raw.data), id=seq)
            except PeerError as error:
                log.warning("chat %s: stream entry %d unreadable: %s", room, seq, error)
                return None

        ids = list(ids)
        out: list[RoomEvent] = []
        for start in range(0, len(ids), _FETCH_CONCURRENCY):
            chunk = await asyncio.gather(*(one(seq) for seq in ids[start : start + _FETCH_CONCURRENCY]))
            out.extend(event for event in chunk if event is not None)
        return out

    async def _kv(self) -> KeyValue:
        if self._bucket is None:
            _, js = await self._connection()
            try:
                self._bucket = await js.key_value(SNAPSHOT_BUCKET)
            except BucketNotFoundError:
                self._bucket = await js.create_key_value(bucket=SNAPSHOT_BUCKET, history=1)
        return self._bucket

    async def _load_snapshot(self, room: str) -> Snapshot | None:
        kv = await self._kv()
        try:
            entry = await kv.get(room)
        except KeyNotFoundError:
            return None
        return _parse_snapshot(entry.value)

    async def save_snapshot(self, room: str, snapshot: Snapshot) -> None:
        """Compare-and-set on the bucket revision, so a newer snapshot is never overwritten by an older."""
        kv = await self._kv()
        value = b"%d\n" % snapshot.as_of + snapshot.payload
        for _ in range(5):
            try:
                entry = await kv.get(room)
            except KeyNotFoundError:
                try:
                    await kv.create(room, value)
                    return
                except KeyWrongLastSequenceError:
                    continue
            kept = _parse_snapshot(entry.value)
            if kept is not None and kept.as_of >= snapshot.as_of:
                return
            try:
                await kv.update(room, value, last=entry.revision)
                return
            except KeyWrongLastSequenceError:
                continue
        log.warning("chat %s: gave up saving the moderation snapshot as of %d", room, snapshot.as_of)

    async def publish(self, room: str, event: RoomEvent) -> RoomEvent:
        nc, js = await self._connection()
        await self._ensure_stream(room)
        ack = await js.publish(f"chat.log.{room}", encode_event(event).encode(), stream=stream_name(room))
        stored = dataclasses.replace(event, id=ack.seq)
        await nc.publish(f"chat.live.{room}", encode_event(stored).encode())
        return stored

    async def subscribe(self, room: str, deliver: Deliver) -> Subscription:
        subscription = _NatsSubscription(self, room, deliver)
        await subscription.open()
        self._subscriptions.append(subscription)
        return subscription

    async def close(self) -> None:
        for subscription in self._subscriptions:
            await subscription.close()
        self._subscriptions.clear()
        if self._nc is not None:
            await self._nc.close()
            self._nc = self._js = None
            self._bucket = None
