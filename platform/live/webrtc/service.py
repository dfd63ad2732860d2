"""The node's WHIP and WHEP sessions: admission, the per-channel relays, timeouts, shutdown.

``WebRtcService`` is what the HTTP routes call. It checks an offer (``sdp``), a stream key and
the limits (``sessions``) before it spends a peer connection, claims the channel for a WHIP
publisher in the same registry RTMP uses (``"protocol": "whip"`` in its health), and attaches
WHEP viewers to the channel's relay, a tap on its media path. Every failure a client causes is
a ``Refused`` carrying the HTTP status it gets. A reaper drops sessions whose ICE has not
completed within the limit, so an abandoned offer costs ten seconds, not a leak.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from live.ingest.registry import ChannelBusy, LiveStream, LiveStreamRegistry
from live.webrtc.abr import start_rendition
from live.webrtc.relay import ChannelRelay
from live.webrtc.sdp import Offer, SdpError, check_whep_offer, check_whip_offer
from live.webrtc.sessions import (
    Refused,
    SessionKind,
    SessionState,
    SessionTable,
)
from live.webrtc.settings import WebRtcSettings
from live.webrtc.whep import WhepSession
from live.webrtc.whip import WhipSession

log = logging.getLogger(__name__)

#: Resolves a stream key to the channel it publishes, or None (shared with RTMP ingest).
StreamKeyResolver = Callable[[str], Awaitable[str | None]]


class RenditionTaps(Protocol):
    """Where a channel's transcoder events come from (``LiveMediaPaths`` in the platform)."""

    def tap(self, channel: str, tap: Callable[[object], None]) -> Callable[[], None] | None: ...


@dataclass(slots=True)
class _RelayHandle:
    relay: ChannelRelay
    untap: Callable[[], None]
    unsubscribe: Callable[[], None]


class WebRtcService:
    def __init__(self, resolve_key: StreamKeyResolver, registry: LiveStreamRegistry,
                 taps: RenditionTaps, settings: WebRtcSettings | None = None) -> None:
        self.settings = settings or WebRtcSettings()
        self.table = SessionTable(self.settings.limits)
        self._resolve_key = resolve_key
        self._registry = registry
        self._taps = taps
        self.whip: dict[str, WhipSession] = {}
        self.whep: dict[str, WhepSession] = {}
        self.relays: dict[str, _RelayHandle] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self.ice_timeouts = 0

    async def start(self) -> None:
        self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        closing = [s.close("server shutting down") for s in self.whip.values()]
        closing += [s.close("server shutting down") for s in self.whep.values()]
        await asyncio.gather(*closing, return_exceptions=True)
        for channel in tuple(self.relays):
            self._drop_relay(channel)

    # -- WHIP -------------------------------------------------------------------------------

    async def publish(self, channel: str, stream_key: str | None, offer: str,
                      address: str | None) -> tuple[str, str]:
        """A WHIP POST: (session id, answer SDP), or Refused.

        The per-client rate is checked first, so a flood costs neither a key lookup nor SDP work.
        """
        record = self.table.admit(SessionKind.WHIP, channel, address, time.monotonic())
        try:
            if not stream_key:
                raise Refused("WHIP needs Authorization: Bearer <stream key>", 401)
            try:
                resolved = await self._resolve_key(stream_key)
            except ChannelBusy as busy:  # live on another ingest node (its lease)
                raise Refused(str(busy), 409) from None
            if resolved != channel:
                raise Refused("unknown stream key for this channel", 401)
            parsed = _check(check_whip_offer, offer)
            try:
                stream = self._registry.claim(
                    channel, "whip", address or "unknown",
                    stop_publisher=lambda reason: self._stop_whip(record.id, reason))
            except ChannelBusy:
                raise Refused(f"channel {channel} already has a publisher", 409) from None
        except Refused:
            self.table.move(record.id, SessionState.CLOSED)
            raise
        session = WhipSession(record.id, stream, self.settings.whip, self._whip_closed)
        self.whip[record.id] = session
        session.pc.on("connectionstatechange", lambda: self._on_state(record.id, session.pc))
        try:
            answer = await session.answer(offer, parsed)
        except Exception as exc:
            await session.close(f"negotiation failed: {exc}")
            raise Refused(f"cannot negotiate this offer: {exc}", 400) from exc
        log.info("whip %s: %s publishing from %s", record.id[:8], channel, address)
        return record.id, answer

    def _stop_whip(self, session_id: str, reason: str) -> None:
        """The registry cuts this publisher (its key was rotated, or its owner stopped it)."""
        session = self.whip.get(session_id)
        if session is not None:
            task = asyncio.get_running_loop().create_task(session.close(reason))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _whip_closed(self, session: WhipSession, reason: str) -> None:
        self.whip.pop(session.id, None)
        self.table.move(session.id, SessionState.CLOSED)
        self._registry.release(session.stream)

    # -- WHEP -------------------------------------------------------------------------------

    async def play(self, channel: str, rendition: str | None, offer: str,
                   address: str | None) -> tuple[str, str]:
        """A WHEP POST: (session id, answer SDP), or Refused."""
        record = self.table.admit(SessionKind.WHEP, channel, address, time.monotonic())
        try:
            parsed = _check(check_whep_offer, offer)
            relay = self._relay(channel).relay
            if not relay.renditions:
                raise Refused(f"channel {channel} is starting; try again shortly", 503, 2.0)
            if rendition is not None and rendition not in relay.renditions:
                raise Refused(f"channel {channel} has no rendition {rendition!r} "
                              f"(it has {', '.join(sorted(relay.renditions))})", 404)
        except Refused:
            self.table.move(record.id, SessionState.CLOSED)
            self._drop_idle_relay(channel)
            raise
        start = rendition or start_rendition(relay.options(), self.settings.start_bps)
        record.rendition = start
        session = WhepSession(record.id, relay, start, fixed=rendition is not None,
                              on_close=self._whep_closed)
        self.whep[record.id] = session
        session.pc.on("connectionstatechange", lambda: self._on_state(record.id, session.pc))
        try:
            answer = await session.answer(offer, parsed)
        except Exception as exc:
            await session.close(f"negotiation failed: {exc}")
            raise Refused(f"cannot negotiate this offer: {exc}", 400) from exc
        return record.id, answer

    def _relay(self, channel: str) -> _RelayHandle:
        handle = self.relays.get(channel)
        if handle is not None and not handle.relay.ended:
            return handle
        stream = self._registry.get(channel)
        relay = ChannelRelay(channel)
        untap = self._taps.tap(channel, relay.handle) if stream is not None else None
        if stream is None or untap is None:
            raise Refused(f"channel {channel} is not live", 404)

        def on_stream(_: LiveStream, item: object) -> None:
            if item is None:
                relay.end()

        unsubscribe = stream.subscribe(on_stream)
        handle = _RelayHandle(relay, untap, unsubscribe)
        self.relays[channel] = handle
        relay.on_end(lambda: self._relay_ended(channel, relay))
        return handle

    def _relay_ended(self, channel: str, relay: ChannelRelay) -> None:
        handle = self.relays.get(channel)
        if handle is not None and handle.relay is relay:
            self._drop_relay(channel)
        for session in [s for s in self.whep.values() if s.relay is relay]:
            task = asyncio.get_running_loop().create_task(session.close("the stream ended"))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _drop_relay(self, channel: str) -> None:
        handle = self.relays.pop(channel, None)
        if handle is not None:
            handle.untap()
            handle.unsubscribe()

    def _whep_closed(self, session: WhepSession, reason: str) -> None:
        self.whep.pop(session.id, None)
        self.table.move(session.id, SessionState.CLOSED)
        self._drop_idle_relay(session.relay.channel)

    def _drop_idle_relay(self, channel: str) -> None:
        """No one watches: stop tapping the channel's ladder."""
        handle = self.relays.get(channel)
        if handle is not None and not handle.relay.viewers:
            self._drop_relay(channel)

    # -- both -------------------------------------------------------------------------------

    def _on_state(self, session_id: str, pc: object) -> None:
        if getattr(pc, "connectionState", None) == "connected":
            self.table.move(session_id, SessionState.CONNECTED)

    async def end(self, kind: SessionKind, channel: str, session_id: str) -> bool:
        """DELETE on a session's Location: True when it existed."""
        record = self.table.get(session_id)
        if record is None or record.kind is not kind or record.channel != channel:
            return False
        session = (self.whip if kind is SessionKind.WHIP else self.whep).get(session_id)
        if session is None:
            self.table.move(session_id, SessionState.CLOSED)
        else:
            await session.close("client sent DELETE")
        return True

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reap_interval_s)
            for record in self.table.overdue(time.monotonic()):
                session = self.whip.get(record.id) or self.whep.get(record.id)
                self.ice_timeouts += 1
                limit = self.settings.limits.ice_timeout_s
                if session is None:
                    self.table.move(record.id, SessionState.CLOSED)
                else:
                    await session.close(f"ICE did not complete within {limit:g} s")


def _check(check: Callable[[str], Offer], offer: str) -> Offer:
    try:
        return check(offer)
    except SdpError as exc:
        raise Refused(str(exc), exc.status) from exc
