"""The LL-DASH face of the origin: the same CMAF segments and parts LL-HLS serves, as DASH.

Routes (relative to ``/dash/{channel}/``, the MPD's base)::

    manifest.mpd                     the dynamic MPD (``live.package.mpd``)
    {rendition}/{epoch}/init.mp4     the init segment (the very bytes HLS serves)
    {rendition}/{epoch}/{n}.m4s      segment n: whole when complete; while it is being produced,
                                     chunked transfer encoding, one CMAF chunk (HLS part) per
                                     write as the packager publishes it
    /dash/time                       the origin's clock for UTCTiming (http-iso)

Nothing is packaged or copied a second time: complete segments are the store's one buffer,
parts are slices of it (or the packager's own part buffers while the segment is open). Waiting
for parts reuses the HLS blocker, so a DASH request held on a part costs what an LL-HLS
blocking request does. The MPD's availability start is fixed per stream when the first MPD is
rendered: the live edge's media time is then "now", and wall clock and media time advance
together from there. A resumed stream (another ingest node took it over) starts a new Period:
the MPD lists only the current run (its epoch is the Period id), with its own availability start.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from live.origin.blocking import (
    ANY_PART,
    Blocker,
    Overloaded,
    PartTarget,
    WaitOutcome,
)
from live.origin.playlists import init_uri
from live.origin.store import ChannelState, OriginStore, RenditionState
from live.package.mpd import (
    MPD_TYPE,
    LiveMpd,
    MpdRepresentation,
    ServiceLatency,
    TimelineSegment,
    init_timescale,
    iso_datetime,
    render_mpd,
)

log = logging.getLogger("live.origin.dash")

_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_SEGMENT = re.compile(r"(?P<number>\d{1,18})\.m4s\Z")
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Age, Date, Content-Length",
}
_IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class DashSettings:
    #: Annex K target latency; dash.js's low-latency catch-up aims for it.
    target_latency_s: float = 1.5
    min_latency_s: float = 0.8
    max_latency_s: float = 3.0
    #: How often players re-read the MPD (it lists the segment being produced; the next one
    #: appears when it opens).
    minimum_update_period_s: float = 0.5


def _headers(cache_control: str) -> dict[str, str]:
    return {**_CORS, "Cache-Control": cache_control}


def _error(status: int, reason: str, cache_control: str = "no-store") -> web.Response:
    return web.Response(status=status, text=reason + "\n", headers=_headers(cache_control))


def _mime(rend: RenditionState) -> str:
    return "video/mp4" if rend.has_video else "audio/mp4"


class DashOrigin:
    """DASH handlers over the LL-HLS origin's store and blocker."""

    def __init__(self, store: OriginStore, blocker: Blocker, settings: DashSettings | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.blocker = blocker
        self.settings = settings or DashSettings()
        self._clock = clock
        #: (channel, epoch) -> availabilityStartTime, fixed by the stream's first MPD.
        self._starts: dict[tuple[str, str], float] = {}
        #: channel -> (its state, the state's version, the UTCTiming URL, the rendered MPD): one
        #: render per change however many players poll it.
        self._memo: dict[str, tuple[ChannelState, int, str, str]] = {}

    @staticmethod
    def _timescale(rend: RenditionState) -> int:
        return init_timescale(rend.init.data)

    def _representations(self, state: ChannelState) -> list[RenditionState]:
        """Renditions a DASH player gets: video rungs carry the muxed audio, so a separate
        audio-only rendition would play the sound twice; it is offered only without video."""
        rends = [rend for rend in state.renditions.values()
                 if rend.segments and rend.segments[-1].epoch == state.epoch]
        video = [rend for rend in rends if rend.has_video]
        return video or rends

    def _availability_start(self, state: ChannelState, rends: list[RenditionState]) -> float:
        key = (state.name, state.epoch)
        start = self._starts.get(key)
        if start is None:
            rend = rends[0]
            seg = rend.segments[-1]
            timescale = self._timescale(rend)
            edge = seg.decode_time / timescale + seg.duration_s
            start = self._starts[key] = self._clock() - edge
            for old in [k for k in self._starts if k[0] == state.name and k != key]:
                del self._starts[old]
        return start

    def build_mpd(self, state: ChannelState, utc_url: str) -> LiveMpd | None:
        rends = self._representations(state)
        if not rends:
            return None
        timing = state.timing
        part_s = timing.part_target_s
        nominal = float(timing.target_duration_s)
        representations = []
        for rend in rends:
            timescale = self._timescale(rend)
            segments = []
            for seg in rend.segments:
                if seg.epoch != state.epoch:
                    continue  # an earlier run (before a resume): its timeline was another period
                if seg.complete:
                    duration = round(seg.duration_s * timescale)
                else:
                    duration = round(max(nominal, seg.duration_s) * timescale)
                segments.append(TimelineSegment(seg.msn, seg.decode_time, max(duration, 1)))
            init = rend.init
            representations.append(MpdRepresentation(
                id=rend.name, bandwidth=max(init.bandwidth, rend.peak_bandwidth() or 0),
                codecs=init.codecs, mime_type=_mime(rend), timescale=timescale,
                initialization=init_uri(state.epoch, rend.name),
                media=f"{rend.name}/{state.epoch}/$Number$.m4s",
                segments=tuple(segments), width=init.width, height=init.height,
                frame_rate=init.frame_rate,
                availability_time_offset=max(nominal - part_s, 0.0)))
        held = max((sum(seg.duration_s for seg in rend.segments if seg.epoch == state.epoch)
                    for rend in rends), default=0.0)
        settings = self.settings
        return LiveMpd(
            period_id=state.epoch,
            availability_start=self._availability_start(state, rends),
            publish_time=self._clock(),
            minimum_update_period_s=settings.minimum_update_period_s,
            min_buffer_time_s=max(part_s * 3, 1.0),
            max_segment_duration_s=nominal,
            time_shift_buffer_depth_s=max(held, nominal),
            latency=ServiceLatency(round(settings.target_latency_s * 1000),
                                   round(settings.min_latency_s * 1000),
                                   round(settings.max_latency_s * 1000)),
            utc_timing_url=utc_url,
            representations=tuple(representations),
            ended=state.ended,
        )

    # -- handlers ------------------------------------------------------------------------------

    async def manifest(self, request: web.Request) -> web.Response:
        channel = request.match_info["channel"]
        state = self.store.channel(channel)
        if state is None:
            self._memo.pop(channel, None)
            return _error(404, f"unknown channel {channel!r}", "public, max-age=1")
        utc_url = str(request.url.with_path("/dash/time").with_query(None))
        memo = self._memo.get(channel)
        if memo is None or memo[:3] != (state, state.version, utc_url) or memo[0] is not state:
            mpd = self.build_mpd(state, utc_url)
            if mpd is None:
                return _error(404, f"channel {channel!r} has no segment yet", "public, max-age=1")
            memo = self._memo[channel] = (state, state.version, utc_url, render_mpd(mpd))
        cache = "public, max-age=10" if state.ended else "public, max-age=1"
        return web.Response(text=memo[3], content_type=MPD_TYPE, headers=_headers(cache))

    async def utc_time(self, _: web.Request) -> web.Response:
        return web.Response(text=iso_datetime(self._clock()), content_type="text/plain",
                            headers=_headers("no-store"))

    async def _wait(self, state: ChannelState, rend: RenditionState, msn: int,
                    index: int) -> web.Response | None:
        target = ANY_PART if msn < 0 else PartTarget(msn, index)
        try:
            outcome = await self.blocker.wait(state.name, rend.name, target,
                                              self.store.progress_probe(state, rend.name),
                                              state.timing.blocking_timeout_s)
        except Overloaded as exc:
            return _error(503, f"origin overloaded: {exc}")
        if outcome is WaitOutcome.READY:
            return None
        if outcome is WaitOutcome.TIMEOUT:
            return _error(503, f"{state.name}/{rend.name}: segment {msn} not available in time")
        return _error(404 if outcome is WaitOutcome.GONE else 503, f"{state.name}/{rend.name} went away")

    async def media(self, request: web.Request) -> web.StreamResponse:
        channel = request.match_info["channel"]
        state = self.store.channel(channel)
        rend = state.rendition(request.match_info["rendition"]) if state is not None else None
        if state is None or rend is None:
            return _error(404, "unknown channel or rendition", "public, max-age=1")
        if request.match_info["epoch"] != state.epoch:
            return _error(404, "no such stream (the channel has restarted since)", "public, max-age=1")
        name = request.match_info["file"]
        mime = _mime(rend)
        if name == "init.mp4":
            return web.Response(body=rend.init.data, content_type=mime, headers=_headers(_IMMUTABLE))
        match = _SEGMENT.match(name)
        if match is None:
            return _error(404, f"no such file {name!r}", "public, max-age=1")
        number = int(match["number"])
        seg = rend.segment(number)
        if seg is not None and seg.epoch != state.epoch:
            return _error(404, f"segment {number} belongs to an earlier run", "public, max-age=1")
        if seg is None:
            last = rend.last
            upcoming = last is not None and not state.ended and number == last.next_part[0]
            if not upcoming:
                return _error(404, f"segment {number} of {channel}/{rend.name} is not available",
                              "public, max-age=1")
            refused = await self._wait(state, rend, number, 0)  # it opens with its first part
            if refused is not None:
                return refused
            seg = rend.segment(number)
            if seg is None:
                return _error(404, f"segment {number} of {channel}/{rend.name} did not appear")
        if seg.data is not None:
            return web.Response(body=seg.data, content_type=mime, headers=_headers(_IMMUTABLE))
        return await self._stream_open_segment(request, state, rend, number, mime)

    async def _stream_open_segment(self, request: web.Request, state: ChannelState,
                                   rend: RenditionState, number: int, mime: str) -> web.StreamResponse:
        """Send the segment being produced part by part (chunked transfer encoding)."""
        response = web.StreamResponse(headers={**_headers("no-store"), "Content-Type": mime})
        response.enable_chunked_encoding()
        await response.prepare(request)
        index = 0
        while True:
            seg = rend.segment(number)
            if seg is None or self.store.channel(state.name) is not state:
                break  # evicted or restarted under us: end the body; the player moves on
            while index < len(seg.parts):
                await response.write(seg.parts[index].data)
                index += 1
            if seg.complete or state.ended:
                break
            if await self._wait(state, rend, number, index) is not None:
                break
        await response.write_eof()
        return response

    async def preflight(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers={
            **_CORS,
            "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
            "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers", "*"),
            "Access-Control-Max-Age": "86400",
        })


def setup_dash(app: web.Application, store: OriginStore, blocker: Blocker,
               settings: DashSettings | None = None) -> DashOrigin:
    """Mount ``/dash/`` on ``app``, sharing the LL-HLS origin's store and blocker."""
    dash = DashOrigin(store, blocker, settings)
    app.router.add_get(f"/dash/{{channel:{_NAME}}}/{{rendition:{_NAME}}}/{{epoch:[0-9a-z]{{1,16}}}}"
                       r"/{file:[A-Za-z0-9._-]{1,40}}", dash.media)
    app.router.add_get(f"/dash/{{channel:{_NAME}}}/manifest.mpd", dash.manifest)
    app.router.add_get("/dash/time", dash.utc_time)
    app.router.add_route("OPTIONS", r"/dash/{tail:.*}", dash.preflight)
    return dash
