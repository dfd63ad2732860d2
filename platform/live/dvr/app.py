"""The DVR's HTTP shell: DVR and VOD playlists, and segment files straight from disk.

Routes (see ``live.dvr.playlists`` for the layout): ``/hls/{channel}/dvr/...`` is the channel's
latest recording (the DVR while live, its VOD once ended) and ``/hls/{channel}/vod/{id}/...``
any recording. Directives, blocking and the response rules are the origin's
(``live.origin.blocking``, ``live.origin.responses``); segments go out with ``sendfile``
(zero-copy, ``live.dvr.files``), so serving the 4-hour window costs no memory. Mount it before the
origin: its ``{rendition}/{epoch}/{file}`` pattern would otherwise take ``dvr/...`` URLs.
"""

from __future__ import annotations

import os
import re
from typing import Final

from aiohttp import web

from live.dvr.catalog import DvrCatalog, Recording
from live.dvr.disk import SegmentStore
from live.dvr.files import SegmentFiles
from live.dvr.playlists import render_dvr_media, render_dvr_multivariant
from live.origin import responses
from live.origin.blocking import (
    Blocker,
    DirectiveError,
    Directives,
    Overloaded,
    Probe,
    Progress,
    SegmentTarget,
    WaitOutcome,
    check_reachable,
)

_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_FILE = re.compile(r"(?:init-(?P<run>\d{1,18})\.mp4|(?P<msn>\d{1,18})\.m4s)\Z")
MAX_HELD_REQUESTS = 100_000
_MEDIA_HEADERS: Final = responses.headers(responses.IMMUTABLE, **{"Content-Type": "video/mp4"})


def _progress(recording: Recording, rendition: str) -> Progress | None:
    track = recording.tracks.get(rendition)
    last = track.last_msn if track is not None else None
    return None if last is None else Progress(last, 0, True)


class DvrHttp:
    """Handlers over the catalog and the store that holds its files."""

    def __init__(self, catalog: DvrCatalog, store: SegmentStore) -> None:
        self.catalog = catalog
        self.store = store
        self.files = SegmentFiles()
        self.blocker = Blocker(MAX_HELD_REQUESTS)
        catalog.add_listener(self._on_change)

    @staticmethod
    def _key(recording: Recording) -> str:
        return f"{recording.channel}/{recording.id}"

    def _on_change(self, recording: Recording, rendition: str | None) -> None:
        key = self._key(recording)
        if rendition is None:
            self.blocker.notify(key, None, None, True)
        else:
            self.blocker.notify(key, rendition, _progress(recording, rendition), recording.ended)
        owner = (recording.channel, recording.id)
        if self.files.owns(owner):
            self._close_removed(owner, recording)

    def _close_removed(self, owner: tuple[str, int], recording: Recording) -> None:
        """Close the cached files of segments retention removed, or of a removed recording."""
        if self.catalog.recording(*owner) is not recording:
            self.files.discard(owner)
            return
        firsts = {name: track.segments[0].msn for name, track in recording.tracks.items()
                  if track.segments}

        def removed(part: tuple[str, int | None]) -> bool:
            rendition, msn = part
            return msn is not None and (rendition not in firsts or msn < firsts[rendition])

        self.files.discard(owner, removed)

    def _recording(self, request: web.Request) -> Recording | web.Response:
        channel = request.match_info["channel"]
        wanted = request.match_info.get("recording")
        recording = self.catalog.recording(channel, None if wanted is None else int(wanted))
        if recording is None:
            return responses.not_found(f"channel {channel!r} has no recording"
                             + (f" {wanted}" if wanted is not None else ""))
        return recording

    def _probe(self, recording: Recording, rendition: str) -> Probe:
        def probe() -> tuple[bool, Progress | None] | None:
            if self.catalog.recording(recording.channel, recording.id) is not recording:
                return None
            return recording.ended, _progress(recording, rendition)
        return probe

    async def multivariant(self, request: web.Request) -> web.Response:
        recording = self._recording(request)
        if isinstance(recording, web.Response):
            return recording
        if not recording.current_inits():
            return responses.not_found(f"recording {recording.id} has no renditions yet")
        return responses.text_playlist(request, render_dvr_multivariant(recording), "public, max-age=2")

    async def media_playlist(self, request: web.Request) -> web.Response:
        """RFC 8216bis 6.2.5: blocking reload at the live end and delta updates."""
        directives = responses.request_directives(request)
        if isinstance(directives, web.Response):
            return directives
        recording = self._recording(request)
        if isinstance(recording, web.Response):
            return recording
        rendition = request.match_info["rendition"]
        if not any(init.rendition == rendition for init in recording.inits.values()):
            return responses.not_found(f"recording {recording.id} has no rendition {rendition!r}")
        timing = recording.timing
        if recording.ended:
            directives = Directives()
        if directives.msn is not None:
            # the playlist lists segments only: wait for the segment (RFC 8216bis 6.2.5.2)
            progress = _progress(recording, rendition)
            if progress is not None:
                try:
                    check_reachable(Directives(directives.msn), progress, timing.part_target_s, 1)
                except DirectiveError as exc:
                    return responses.error(400, str(exc))
            refused = await self._hold(recording, rendition, SegmentTarget(directives.msn),
                                       timing.blocking_timeout_s)
            if refused is not None:
                return refused
        skip = directives.skip and not recording.ended
        variant = (rendition, skip, responses.accepts_gzip(request))
        return responses.memoized_playlist(
            request, recording.memo, variant, recording.version,
            lambda: render_dvr_media(recording, rendition, skip=skip),
            responses.media_cache_control(timing, ended=recording.ended,
                                          blocking=directives.blocking, ended_max_age_s=60))

    async def _hold(self, recording: Recording, rendition: str, target: SegmentTarget,
                    timeout_s: float) -> web.Response | None:
        try:
            outcome = await self.blocker.wait(self._key(recording), rendition, target,
                                              self._probe(recording, rendition), timeout_s)
        except Overloaded as exc:
            return responses.error(503, f"origin overloaded: {exc}")
        if outcome is WaitOutcome.READY:
            return None
        if outcome is WaitOutcome.GONE:
            return responses.not_found(f"recording {recording.id} went away")
        return responses.error(503, f"segment {target.msn} not available after blocking {timeout_s:g} s")

    async def media_file(self, request: web.Request) -> web.StreamResponse:
        recording = self._recording(request)
        if isinstance(recording, web.Response):
            return recording
        rendition = request.match_info["rendition"]
        match = _FILE.match(request.match_info["file"])
        if match is None:
            return responses.not_found(f"no such file {request.match_info['file']!r}")
        if match["run"] is not None:
            run = int(match["run"])
            if (rendition, run) not in recording.inits:
                return responses.not_found(f"no init segment {run} of {rendition}")
            path = str(self.store.init_path(recording.channel, recording.id, rendition, run))
            msn: int | None = None
        else:
            msn = int(match["msn"])
            track = recording.tracks.get(rendition)
            if track is None or track.find(msn) is None:
                return responses.not_found(f"segment {msn} of {rendition} is not in recording "
                                           f"{recording.id}")
            path = self.store.segment_file(recording.channel, recording.id, rendition, msn)
        response = self.files.response(request, path, _MEDIA_HEADERS,
                                       (recording.channel, recording.id), (rendition, msn))
        if response is None:
            return responses.not_found(f"{os.path.basename(path)} was removed")
        return response

    async def shutdown(self, app: web.Application) -> None:
        self.blocker.drain_all()

    async def cleanup(self, app: web.Application) -> None:
        self.files.close()


DVR_HTTP_KEY: Final = web.AppKey("live.dvr.http", DvrHttp)


def setup_dvr(app: web.Application, catalog: DvrCatalog, store: SegmentStore) -> DvrHttp:
    """Mount the DVR and VOD routes on ``app`` (before ``setup_origin``)."""
    http = DvrHttp(catalog, store)
    app[DVR_HTTP_KEY] = http
    channel = f"/hls/{{channel:{_NAME}}}"
    for prefix in (f"{channel}/dvr", f"{channel}/vod/{{recording:\\d{{1,18}}}}"):
        app.router.add_get(f"{prefix}/{{rendition:{_NAME}}}/{{file:[a-z0-9.-]{{1,40}}}}",
                           http.media_file)
        app.router.add_get(f"{prefix}/master.m3u8", http.multivariant)
        app.router.add_get(f"{prefix}/{{rendition:{_NAME}}}.m3u8", http.media_playlist)
    app.on_shutdown.append(http.shutdown)
    app.on_cleanup.append(http.cleanup)
    return http
