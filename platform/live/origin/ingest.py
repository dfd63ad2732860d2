"""The origin's CMAF ingest endpoint: packagers elsewhere push tracks into this origin's store.

``POST /ingest/{channel}/{stream}/{rendition}`` carries one track as a long-running chunked
body in the ``live.package.ingest_wire`` format (DASH-IF Live Media Ingest interface 1). Only
``Authorization: Bearer <ingest token>`` is accepted (401 otherwise, before a byte of the body
is read, so nothing changes). A malformed or truncated push closes that push with a logged
reason (400); what the store already holds keeps being served.

``stream`` is the packager's stream id and becomes the channel's epoch, so every origin a
packager pushes to serves the same media URLs and the same numbering: an edge can fail over
from one to the other. A newer stream id replaces the channel's stream; an older one is refused
(409). A newer stream whose header names a ``start_msn`` continues the live channel instead
(another ingest node took it over; it asked ``GET /ingest/{channel}`` where to go on): the same
playlists, numbering from ``start_msn``, after an EXT-X-DISCONTINUITY (``OriginStore.resume``).
``PushedStreams`` is the synchronous part that maps pushed events onto the store:

* a header (re)announces the rendition; resent identically on every reconnect;
* parts the store already has (the packager resends the segment in progress after a
  reconnect) are skipped; a store that has none of the rendition yet (a restarted origin) waits
  for the next segment start;
* a part further ahead than the next (parts lost while this origin was unreachable) restarts
  that rendition at the next segment start, the other renditions going on;
* a recorder (the DVR on this origin) gets what the store accepted, each once;
* the stream ends once every rendition of it has ended or been dropped, or once no push of it
  has been open for ``ORPHAN_END_S`` (its ingest node died); a push idle for
  ``IDLE_TIMEOUT_S`` is closed.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from dataclasses import dataclass, field

from aiohttp import ClientError, web

from live.origin.store import ChannelState, OriginStore
from live.package.ingest_wire import (
    IngestFormatError,
    IngestParser,
    PartReceived,
    TrackDropped,
    TrackEnded,
    TrackHeader,
)
from live.package.parts import Part
from live.package.sink import PartSink, PublishError

log = logging.getLogger("live.origin.ingest")

_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_STREAM = r"[0-9a-z]{1,16}"
#: Pushes open at once (a track each); beyond it new ones get 503.
MAX_PUSHES = 4096
#: Bytes read from a push per read (bounds what one read can buffer).
READ_CHUNK = 256 * 1024
#: A push that sends nothing this long is closed (a dead host leaves no RST behind); a live
#: track sends a part every PART-TARGET, a gap part when it has no media.
IDLE_TIMEOUT_S = 30.0
#: A stream none of whose pushes came back within this long is ended (EXT-X-ENDLIST).
ORPHAN_END_S = 15.0


class StalePush(Exception):
    """A push for a stream older than the one the channel carries (409)."""


@dataclass(slots=True)
class _Pushed:
    stream: str
    state: ChannelState
    ended: set[str] = field(default_factory=set)
    waiting: set[str] = field(default_factory=set)  # renditions skipping to a segment start


def _newer(a: str, b: str) -> bool:
    """Stream ids are base-36 millisecond clocks: longer is later, then by value."""
    return (len(a), a) > (len(b), b)


class PushedStreams:
    """Pushed tracks applied to an ``OriginStore`` (synchronous, on the event-loop thread)."""

    def __init__(self, store: OriginStore, recorder: PartSink | None = None) -> None:
        self.store = store
        #: Also gets what the store accepted (the DVR on this origin), exactly once each.
        self.recorder = recorder
        self._streams: dict[str, _Pushed] = {}
        self.parts_applied = 0
        self.parts_skipped = 0

    def _current(self, channel: str, stream: str) -> _Pushed | None:
        pushed = self._streams.get(channel)
        if pushed is None or self.store.channel(channel) is not pushed.state:
            return None
        if pushed.stream != stream:
            if _newer(pushed.stream, stream):
                raise StalePush(f"{channel}: stream {stream} is older than {pushed.stream}")
            return None
        return pushed

    def header(self, channel: str, stream: str, event: TrackHeader) -> None:
        pushed = self._current(channel, stream)
        if pushed is not None and pushed.state.ended:
            return  # a late resend of a stream that is over
        if pushed is None:
            state = None
            if event.start_msn > 0:  # another ingest node took the stream over
                state = self.store.resume(channel, stream, event.timing, event.start_msn)
                if state is not None:
                    log.info("%s: stream %s resumes the channel's playlists at segment %d",
                             channel, stream, event.start_msn)
                else:
                    log.warning("%s: stream %s cannot resume at segment %d (the channel is at %s); "
                                "it starts a new stream", channel, stream, event.start_msn,
                                self.store.next_msn(channel))
            if state is None:
                state = self.store.open(channel, event.timing, epoch=stream)
            pushed = self._streams[channel] = _Pushed(stream, state)
        name = event.init.rendition
        before = pushed.state.rendition(name)
        # a resumed rendition's new run: the DVR starts a new run of its recording too
        resumed = before is not None and before.resuming
        if before is not None and before.init != event.init and not before.resuming:
            self._drop(channel, name)  # a new header mid-stream: start it afresh
            before = None
        self.store.publish_init(channel, event.init, event.timing)
        pushed.ended.discard(name)
        rend = pushed.state.rendition(name)
        if rend is not None and (rend is not before or resumed) and self.recorder is not None:
            self.recorder.publish_init(channel, event.init, event.timing)  # not on a resend
        if rend is not None and rend.last is None:
            pushed.waiting.add(name)

    def part(self, channel: str, stream: str, part: Part) -> None:
        pushed = self._current(channel, stream)
        rend = pushed.state.rendition(part.rendition) if pushed is not None else None
        if pushed is None or rend is None or pushed.state.ended:
            raise PublishError(f"{channel}/{part.rendition}: part {part.msn}.{part.index} "
                               "before the track's header")
        name = part.rendition
        last = rend.last
        if last is not None and (part.msn, part.index) < last.next_part:
            self.parts_skipped += 1  # resent after a reconnect: this origin has it
            return
        if last is not None and (part.msn, part.index) != last.next_part:
            log.warning("%s/%s: parts %d.%d to %d.%d never arrived; the rendition restarts at "
                        "the next segment", channel, name, *last.next_part, part.msn, part.index)
            init = rend.init
            self._drop(channel, name)
            self.store.publish_init(channel, init, pushed.state.timing)
            if self.recorder is not None:
                self.recorder.publish_init(channel, init, pushed.state.timing)
            pushed.waiting.add(name)
        if name in pushed.waiting:
            if part.index != 0:
                self.parts_skipped += 1
                return
            pushed.waiting.discard(name)
        self.store.publish_part(channel, part)
        self.parts_applied += 1
        if self.recorder is not None:
            self.recorder.publish_part(channel, part)

    def _drop(self, channel: str, rendition: str) -> None:
        self.store.drop_rendition(channel, rendition)
        if self.recorder is not None:
            self.recorder.drop_rendition(channel, rendition)

    def _end(self, channel: str) -> None:
        self.store.end(channel)
        if self.recorder is not None:
            self.recorder.end(channel)

    def dropped(self, channel: str, stream: str, rendition: str) -> None:
        pushed = self._current(channel, stream)
        if pushed is not None:
            self._drop(channel, rendition)
            self._ended(channel, pushed, rendition)

    def track_ended(self, channel: str, stream: str, rendition: str) -> None:
        pushed = self._current(channel, stream)
        if pushed is not None:
            self._ended(channel, pushed, rendition)

    def orphaned(self, channel: str, stream: str) -> bool:
        """No push of ``stream`` is open any more: end it if it is still the channel's and live."""
        pushed = self._streams.get(channel)
        if pushed is None or pushed.stream != stream or pushed.state.ended \
                or self.store.channel(channel) is not pushed.state:
            return False
        self._end(channel)
        return True

    def _ended(self, channel: str, pushed: _Pushed, rendition: str) -> None:
        pushed.ended.add(rendition)
        if set(pushed.state.renditions) <= pushed.ended and not pushed.state.ended:
            self._end(channel)


class IngestEndpoint:
    """The aiohttp shell: authenticate, stream the body through the parser, apply events."""

    def __init__(self, store: OriginStore, token: str, *, recorder: PartSink | None = None,
                 idle_timeout_s: float = IDLE_TIMEOUT_S, orphan_end_s: float = ORPHAN_END_S) -> None:
        if not token:
            raise ValueError("the ingest endpoint needs a non-empty token")
        self.streams = PushedStreams(store, recorder)
        self._token = f"Bearer {token}".encode()
        self.idle_timeout_s = idle_timeout_s
        self.orphan_end_s = orphan_end_s
        self.open_pushes = 0
        self.refused = 0
        self._attached: dict[tuple[str, str], int] = {}  # open pushes per (channel, stream)

    def authorized(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "").encode()
        return hmac.compare_digest(given, self._token)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self.authorized(request):
            self.refused += 1
            return web.Response(status=401, text="ingest token required\n",
                                headers={"WWW-Authenticate": 'Bearer realm="ingest"'})
        if self.open_pushes >= MAX_PUSHES:
            return web.Response(status=503, text="too many pushes\n")
        channel, stream = request.match_info["channel"], request.match_info["stream"]
        rendition = request.match_info["rendition"]
        where = f"push {channel}/{stream}/{rendition} from {request.remote}"
        self.open_pushes += 1
        key = (channel, stream)
        self._attached[key] = self._attached.get(key, 0) + 1
        try:
            await self._receive(request, channel, stream, rendition)
        except TimeoutError:
            log.warning("%s closed: nothing received for %g s", where, self.idle_timeout_s)
            return web.Response(status=408, text="push idle\n")
        except (ConnectionError, ClientError) as exc:
            log.info("%s lost: %s", where, exc or type(exc).__name__)
            return web.Response(status=400, text="push connection lost\n")
        except IngestFormatError as exc:
            log.warning("%s closed: malformed CMAF push: %s", where, exc)
            return web.Response(status=400, text=f"malformed push: {exc}\n")
        except PublishError as exc:
            log.warning("%s closed: the origin refused it: %s", where, exc)
            return web.Response(status=422, text=f"refused: {exc}\n")
        except StalePush as exc:
            log.warning("%s closed: %s", where, exc)
            return web.Response(status=409, text=f"{exc}\n")
        finally:
            self.open_pushes -= 1
            self._detach(key)
        return web.Response(status=200, text="ok\n")

    def _detach(self, key: tuple[str, str]) -> None:
        """The last push of a stream closed: unless one comes back (or another ingest node's
        stream resumes it) soon, the stream is over (its ingest node died without ending it)."""
        left = self._attached[key] - 1
        if left:
            self._attached[key] = left
            return
        del self._attached[key]
        asyncio.get_running_loop().call_later(self.orphan_end_s, self._end_if_orphaned, key)

    def _end_if_orphaned(self, key: tuple[str, str]) -> None:
        if key not in self._attached and self.streams.orphaned(*key):
            log.warning("%s/%s: no push for %g s; the stream is ended", *key, self.orphan_end_s)

    async def resume_point(self, request: web.Request) -> web.Response:
        """``GET /ingest/{channel}``: where a live channel's numbering goes on, for an ingest
        node taking the stream over (``next_msn`` null when the channel is not live here)."""
        if not self.authorized(request):
            self.refused += 1
            return web.Response(status=401, text="ingest token required\n",
                                headers={"WWW-Authenticate": 'Bearer realm="ingest"'})
        channel = request.match_info["channel"]
        state = self.streams.store.channel(channel)
        return web.json_response({"channel": channel,
                                  "stream": state.epoch if state is not None else None,
                                  "next_msn": self.streams.store.next_msn(channel)})

    async def _receive(self, request: web.Request, channel: str, stream: str, rendition: str) -> None:
        parser = IngestParser(rendition)
        streams = self.streams
        while True:
            async with asyncio.timeout(self.idle_timeout_s):
                data = await request.content.read(READ_CHUNK)
            events = parser.feed(data) if data else parser.feed_eof()
            for event in events:
                if isinstance(event, PartReceived):
                    streams.part(channel, stream, event.part)
                elif isinstance(event, TrackHeader):
                    streams.header(channel, stream, event)
                elif isinstance(event, TrackDropped):
                    streams.dropped(channel, stream, rendition)
                elif isinstance(event, TrackEnded):
                    streams.track_ended(channel, stream, rendition)
            if not data:
                return


INGEST_KEY = web.AppKey("ingest", IngestEndpoint)


def setup_ingest(app: web.Application, store: OriginStore, token: str, *,
                 recorder: PartSink | None = None, idle_timeout_s: float = IDLE_TIMEOUT_S,
                 orphan_end_s: float = ORPHAN_END_S) -> IngestEndpoint:
    """Accept CMAF pushes into ``store`` (and ``recorder``, the DVR) for holders of ``token``."""
    endpoint = IngestEndpoint(store, token, recorder=recorder, idle_timeout_s=idle_timeout_s,
                              orphan_end_s=orphan_end_s)
    app[INGEST_KEY] = endpoint
    app.router.add_post(f"/ingest/{{channel:{_NAME}}}/{{stream:{_STREAM}}}/{{rendition:{_NAME}}}",
                        endpoint.handle)
    app.router.add_get(f"/ingest/{{channel:{_NAME}}}", endpoint.resume_point)
    return endpoint
