"""The LL-HLS origin's HTTP shell: routes, caching headers, gzip, CORS, held requests.

Everything protocol-shaped lives in the pure modules (``store``, ``playlists``, ``blocking``);
handlers only translate between HTTP and them. Rendered playlists are memoized per channel
version and variant (delta or full, gzip or not), so releasing thousands of held requests for
the same part renders and compresses the playlist once.

Cache-Control follows the LL-HLS CDN guidance (docs/llhls.md, "Caching"): live playlists live ~1 s; blocking
responses are cacheable under their ``_HLS_`` query (a later answer would only be longer);
media URLs carry the stream epoch and are immutable; errors are not cached, except 404s briefly.
"""

from __future__ import annotations

import logging
import re
from typing import Final

from aiohttp import web

from live.origin.blocking import (
    ANY_PART,
    Blocker,
    DirectiveError,
    Directives,
    Overloaded,
    PartTarget,
    Target,
    WaitOutcome,
    check_reachable,
)
from live.origin.dash import setup_dash
from live.origin.playlists import render_media, render_multivariant
from live.origin.responses import (
    CORS,
    IMMUTABLE,
    PLAYLIST_TYPE,
    accepts_gzip,
    error,
    media_cache_control,
    memoized_body,
    memoized_playlist,
    not_found,
    request_directives,
    text_playlist,
)
from live.origin.store import ChannelState, OriginStore, RenditionState
from live.origin.wire import EarlyWrite, WrittenResponse, can_write_direct, http_date, media_body, wire_answer

log = logging.getLogger("live.origin")

STORE_KEY: Final = web.AppKey("live.origin.store", OriginStore)
BLOCKER_KEY: Final = web.AppKey("live.origin.blocker", Blocker)

_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_MEDIA_FILE = re.compile(r"(?P<msn>\d{1,18})(?:\.(?P<part>\d{1,9}))?\.m4s\Z")


class Origin:
    """Handlers over one store; reachable as ``app[STORE_KEY]`` / ``app[BLOCKER_KEY]``."""

    def __init__(self, store: OriginStore) -> None:
        self.store = store
        self.blocker = Blocker(store.settings.max_held_requests)
        store.add_listener(self._on_change)

    def _on_change(self, channel: str, rendition: str | None) -> None:
        state = self.store.channel(channel)
        if state is None or rendition is None:
            self.blocker.notify(channel, None, None, True)
            return
        rend = state.rendition(rendition)
        self.blocker.notify(channel, rendition, rend.last if rend else None, state.ended)

    # -- helpers -------------------------------------------------------------------------------

    async def _hold(self, state: ChannelState, rendition: str, target: Target,
                    timeout_s: float, early: EarlyWrite | None = None) -> web.StreamResponse | None:
        """Wait for ``target``; ``None`` when ready, else the response to send instead (which is
        a ``WrittenResponse`` when the release already wrote ``early``'s answer)."""
        try:
            outcome = await self.blocker.wait(state.name, rendition, target,
                                              self.store.progress_probe(state, rendition), timeout_s,
                                              early)
        except Overloaded as exc:
            log.warning("origin: refusing a blocking request: %s", exc)
            return error(503, f"origin overloaded: {exc}")
        if early is not None and early.sent:
            return WrittenResponse(early.sent)
        if outcome is WaitOutcome.CLOSED:
            return error(503, "origin shutting down")
        if outcome is WaitOutcome.GONE:
            return not_found(f"{state.name}/{rendition} went away")
        if outcome is WaitOutcome.TIMEOUT:
            return error(503, f"{state.name}/{rendition}: not available after blocking "
                               f"{timeout_s:g} s (3 x TARGETDURATION)")
        return None

    def _playlist_wire(self, state: ChannelState, rendition: str, skip: bool, gzip: bool) -> bytes | None:
        """The whole answer (head and body) to a blocking reload released by new progress, built
        once per version and second and shared by every request it releases; ``None`` where
        the normal path answers differently (the stream ended or restarted)."""
        rend = state.rendition(rendition)
        if state.ended or rend is None or self.store.channel(state.name) is not state:
            return None
        date = http_date()
        cached = rend.wire.get((skip, gzip))
        if cached is not None and cached[0] == state.version and cached[1] == date:
            return cached[2]
        cache_control = media_cache_control(state.timing, ended=False, blocking=True)
        body = memoized_body(rend.memo, (skip, gzip), state.version, gzip,
                             lambda: render_media(state, rendition, skip=skip))
        payload = wire_answer(body, cache_control, PLAYLIST_TYPE, gzip=gzip)
        rend.wire[(skip, gzip)] = (state.version, date, payload)
        return payload

    @staticmethod
    def _part_wire(state: ChannelState, rend: RenditionState, msn: int, index: int,
                   mime: str) -> bytes | None:
        """The whole answer to a preload-hinted part released by its arrival, built once per
        part and second for every request it releases; ``None`` where the normal path 404s."""
        part = rend.part(msn, index, state.timing)
        if part is None or part.gap:
            return None
        date = http_date()
        cached = rend.part_wire
        if cached is not None and cached[:3] == (msn, index, date):
            return cached[3]
        payload = wire_answer(part.data, IMMUTABLE, mime)
        rend.part_wire = (msn, index, date, payload)
        return payload

    def _lookup(self, request: web.Request) -> tuple[ChannelState, RenditionState] | web.Response:
        channel = request.match_info["channel"]
        state = self.store.channel(channel)
        if state is None:
            return not_found(f"unknown channel {channel!r}")
        rendition = request.match_info["rendition"]
        rend = state.rendition(rendition)
        if rend is None:
            return not_found(f"channel {channel!r} has no rendition {rendition!r}")
        return state, rend

    # -- handlers ------------------------------------------------------------------------------

    async def multivariant(self, request: web.Request) -> web.Response:
        channel = request.match_info["channel"]
        state = self.store.channel(channel)
        if state is None or not state.renditions:
            return not_found(f"unknown channel {channel!r}")
        if state.memo is None or state.memo[0] != state.version:
            state.memo = (state.version, render_multivariant(state))
        return text_playlist(request, state.memo[1], "public, max-age=2")

    async def media_playlist(self, request: web.Request) -> web.StreamResponse:
        """RFC 8216bis 6.2.5: blocking reload and delta updates."""
        directives = request_directives(request)
        if isinstance(directives, web.Response):
            return directives
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        state, rend = found
        timing = state.timing
        timeout_s = timing.blocking_timeout_s
        if rend.last is None and not state.ended:
            refused = await self._hold(state, rend.name, ANY_PART, timeout_s)
            if refused is not None:
                return refused
        if state.ended:
            directives = Directives()
        target = directives.target
        gzip = accepts_gzip(request)
        if target is not None and rend.last is not None:
            try:
                check_reachable(directives, rend.last, timing.part_target_s,
                                rend.parts_per_segment or timing.nominal_parts_per_segment)
            except DirectiveError as exc:
                return error(400, str(exc))
            name, skip = rend.name, directives.skip
            early = EarlyWrite(request, lambda: self._playlist_wire(state, name, skip, gzip)) \
                if can_write_direct(request) else None
            refused = await self._hold(state, rend.name, target, timeout_s, early)
            if refused is not None:
                return refused
        if self.store.channel(state.name) is not state:
            return not_found(f"channel {state.name!r} restarted; reload the multivariant playlist")
        skip = directives.skip and not state.ended
        return memoized_playlist(
            request, rend.memo, (skip, gzip), state.version,
            lambda: render_media(state, rend.name, skip=skip),
            media_cache_control(timing, ended=state.ended, blocking=directives.blocking))

    async def media_file(self, request: web.Request) -> web.StreamResponse:
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        state, rend = found
        epoch = request.match_info["epoch"]
        init = rend.init_of(epoch, state.epoch)
        if init is None:
            return not_found("no such stream (the channel has restarted since)")
        name = request.match_info["file"]
        mime = "video/mp4" if rend.has_video else "audio/mp4"
        if name == "init.mp4":
            return await media_body(request, init.data, mime)
        match = _MEDIA_FILE.match(name)
        if match is None:
            return not_found(f"no such file {name!r}")
        msn = int(match["msn"])
        held_seg = rend.segment(msn)  # a resumed stream: each run's media under its own epoch
        if (held_seg.epoch if held_seg is not None else state.epoch) != epoch:
            return not_found(f"segment {msn} is not part of stream {epoch}")
        if match["part"] is None:
            seg = rend.complete_segment(msn)
            if seg is None or seg.data is None or seg.gap:
                return not_found(f"segment {msn} of {state.name}/{rend.name} is not available")
            return await media_body(request, seg.data, mime)
        index = int(match["part"])
        part = rend.part(msn, index, state.timing)
        if part is None and not state.ended and rend.last is not None \
                and rend.last.next_part == (msn, index):
            # EXT-X-PRELOAD-HINT: the hinted part is requestable at once and answered whole
            # when it is complete (RFC 8216bis 4.4.5.3).
            held = rend
            early = EarlyWrite(request, lambda: self._part_wire(state, held, msn, index, mime)) \
                if can_write_direct(request) else None
            refused = await self._hold(state, rend.name, PartTarget(msn, index),
                                       state.timing.blocking_timeout_s, early)
            if refused is not None:
                return refused
            part = rend.part(msn, index, state.timing)
        if part is None or part.gap:
            return not_found(f"part {msn}.{index} of {state.name}/{rend.name} is not available")
        return await media_body(request, part.data, mime)

    async def preflight(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers={
            **CORS,
            "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
            "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers", "*"),
            "Access-Control-Max-Age": "86400",
        })

    async def unknown(self, request: web.Request) -> web.Response:
        """Any other GET under /hls/: 404 (not the 405 the OPTIONS catch-all would give)."""
        return not_found("no such HLS resource")

    async def shutdown(self, app: web.Application) -> None:
        self.blocker.drain_all()


def setup_origin(app: web.Application, store: OriginStore) -> None:
    """Mount the origin's routes under ``/hls/`` on ``app``."""
    origin = Origin(store)
    app[STORE_KEY] = store
    app[BLOCKER_KEY] = origin.blocker
    # most requests first: the router tries resources in order (the patterns are disjoint)
    app.router.add_get(f"/hls/{{channel:{_NAME}}}/{{rendition:{_NAME}}}/{{epoch:[0-9a-z]{{1,16}}}}"
                       r"/{file:[A-Za-z0-9._-]{1,40}}", origin.media_file)
    app.router.add_get(f"/hls/{{channel:{_NAME}}}/master.m3u8", origin.multivariant)
    app.router.add_get(f"/hls/{{channel:{_NAME}}}/{{rendition:{_NAME}}}.m3u8", origin.media_playlist)
    app.router.add_route("OPTIONS", r"/hls/{tail:.*}", origin.preflight)
    app.router.add_get(r"/hls/{tail:.*}", origin.unknown)
    app.on_shutdown.append(origin.shutdown)
    setup_dash(app, store, origin.blocker)
