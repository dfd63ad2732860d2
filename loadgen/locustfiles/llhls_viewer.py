"""Locust LL-HLS viewer that behaves like hls.js in low-latency mode.

Multivariant -> rendition -> media playlist, then: fetch what the plan lists, fetch the
preload-hinted part at once, and block on ``_HLS_msn``/``_HLS_part`` (RFC 8216bis 6.2.5.2)
for the next one. Every wait is a blocking reload or a bounded sleep. Player metrics are
reported as Locust request events (request_type STARTUP, REBUFFER, PDT_LATENCY, ABR_SWITCH)
with response_time = the value in ms, so they land in Locust's CSV stats.
"""

from __future__ import annotations

import os
import time

import gevent
from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

from loadgen import hls_client as hls
from loadgen.locustfiles.player_model import PlayoutBuffer, ThroughputAbr

MASTER_PATH = os.environ.get("LIVETWIN_HLS_MASTER", "/hls/demo/master.m3u8")
#: How long one viewer session watches before rejoining (bounds every loop).
SESSION_S = float(os.environ.get("LIVETWIN_VIEWER_SESSION_S", "60"))
MAX_PLAN = 64  # fetches handled per reload; the rest waits for the next reload


class LlHlsViewer(FastHttpUser):
    """One low-latency HLS viewer session per task run."""

    abstract = False
    wait_time = between(0.5, 1.0)
    network_timeout = 15.0
    connection_timeout = 5.0

    def _event(self, kind: str, name: str, value_ms: float, exc: BaseException | None = None) -> None:
        self.environment.events.request.fire(
            request_type=kind, name=name, response_time=value_ms, response_length=0,
            exception=exc, context={})

    def _get_text(self, url: str, name: str) -> str | None:
        with self.client.get(url, name=name, catch_response=True) as resp:
            if resp.status_code != 200 or resp.text is None:
                resp.failure(f"HTTP {resp.status_code} for {name}")
                return None
            return resp.text

    def _get_media(self, fetch: hls.Fetch, name: str) -> int | None:
        headers = {} if fetch.byterange is None else {"Range": fetch.byterange.header()}
        with self.client.get(fetch.uri, name=name, headers=headers, catch_response=True) as resp:
            if resp.status_code not in (200, 206):
                resp.failure(f"HTTP {resp.status_code} for {name}")
                return None
            return len(resp.content or b"")

    @task
    def watch(self) -> None:
        base = self.host.rstrip("/") + MASTER_PATH
        joined = time.monotonic()
        text = self._get_text(base, "multivariant")
        if text is None:
            return
        try:
            variants = sorted(
                [v for v in hls.parse_multivariant(text, base) if v.resolution is not None]
                or hls.parse_multivariant(text, base), key=lambda v: v.bandwidth)
        except hls.PlaylistError as exc:
            self._event("PLAYLIST", "multivariant-parse", 0, exc)
            return
        abr = ThroughputAbr(tuple(v.bandwidth for v in variants))
        buffer: PlayoutBuffer | None = None
        started = False
        cursor: hls.Cursor | None = None
        already: dict[str, float] = {}  # hinted URI -> wall-clock arrival (epoch s)
        map_seen: set[str] = set()
        reload_at: tuple[int, int] | None = None
        deadline = joined + SESSION_S
        while time.monotonic() < deadline:
            variant = variants[abr.index]
            url = variant.uri if reload_at is None else hls.blocking_reload_url(variant.uri, *reload_at)
            text = self._get_text(url, "media-playlist" if reload_at is None else "blocking-reload")
            if text is None:
                gevent.sleep(0.5)  # server trouble: back off instead of hammering
                reload_at = None
                continue
            try:
                playlist = hls.parse_media(text, variant.uri)
            except hls.PlaylistError as exc:
                self._event("PLAYLIST", "media-parse", 0, exc)
                return
            if buffer is None:
                hold = 3 * (playlist.part_target or playlist.target_duration)
                buffer = PlayoutBuffer(start_threshold=min(hold, 1.0))
            if cursor is None:
                cursor = hls.start_cursor(playlist)
            step = hls.plan(playlist, cursor, already)
            cursor = step.cursor
            before = abr.index
            for fetch in step.fetches[:MAX_PLAN]:
                cursor = cursor.after(fetch)
                if fetch.is_marker:
                    continue
                if fetch.uri in already:
                    arrived = already.pop(fetch.uri)
                    if fetch.program_date_time is not None and started:
                        self._event("PDT_LATENCY", variant.name,
                                    max(0.0, arrived - fetch.program_date_time) * 1000)
                    continue
                if fetch.map_uri and fetch.map_uri not in map_seen:
                    map_seen.add(fetch.map_uri)
                    self.client.get(fetch.map_uri, name="init")
                media_s = self._media_duration(playlist, fetch)
                t0 = time.monotonic()
                size = self._get_media(fetch, "part" if fetch.part is not None else "segment")
                t1 = time.monotonic()
                if size is None:
                    continue
                started = self._account(buffer, t1, media_s, started, joined, variant.name)
                if fetch.program_date_time is not None and started:
                    self._event("PDT_LATENCY", variant.name,
                                max(0.0, time.time() - fetch.program_date_time) * 1000)
                abr.observe(media_s, t1 - t0, size)
                if abr.index != before:
                    break
            if abr.index != before:
                self._event("ABR_SWITCH", "up" if abr.index > before else "down", 0)
                reload_at, already = None, {}
                continue
            hint = playlist.preload_hint
            if hint is not None and hint.uri not in already:
                fetch = hls.Fetch(0, 0, hint.uri, hint.byterange, None, False, None)
                t0 = time.monotonic()
                size = self._get_media(fetch, "preload-hint")
                if size is not None:
                    already[hint.uri] = time.time()
                    media_s = playlist.part_target or 0.0
                    started = self._account(buffer, time.monotonic(), media_s, started, joined,
                                            variant.name)
                    # no ABR sample: a hinted part's time is mostly the server producing it
                    self._event("PART_WAIT", "preload-hint", (time.monotonic() - t0) * 1000)
            if playlist.endlist:
                return
            if playlist.can_block_reload:
                reload_at = playlist.next_position
            else:
                gevent.sleep(playlist.part_target or playlist.target_duration / 2)
        if buffer is not None:
            self._event("REBUFFER_RATIO", variant.name, buffer.rebuffer_ratio * 1000)

    def _account(self, buffer: PlayoutBuffer, now: float, media_s: float, started: bool,
                 joined: float, rendition: str) -> bool:
        """Feed the playout model; report startup and stalls; return whether playback started."""
        stall = buffer.add(now, media_s)
        if stall is not None:
            self._event("REBUFFER", "stall", stall * 1000)
        if not started and buffer.playing:
            self._event("STARTUP", rendition, (now - joined) * 1000)
            return True
        return started

    @staticmethod
    def _media_duration(playlist: hls.MediaPlaylist, fetch: hls.Fetch) -> float:
        for seg in playlist.segments:
            if seg.msn == fetch.msn:
                if fetch.part is None or fetch.part >= len(seg.parts):
                    return seg.duration
                return seg.parts[fetch.part].duration
        return playlist.part_target or playlist.target_duration


