"""Locust LL-HLS viewer that behaves like hls.js in low-latency mode.

Multivariant -> rendition -> media playlist, then: fetch what the plan lists, fetch the
preload-hinted part at once, and block on ``_HLS_msn``/``_HLS_part`` (RFC 8216bis 6.2.5.2)
for the next one. Every wait is a blocking reload or a bounded sleep.

Rendition switching follows hls.js: every media transfer is a throughput sample (bytes over
first-to-last-byte seconds, so a hinted part's wait for the server to produce it is not
counted), fed to a fast/slow EWMA, and the next fetch uses the best rendition that fits
(``player_model``). ``--viewer-link-kbps`` gives each user a bounded link (``link``): bodies
are read in paced chunks, so transfers really take size/rate.

Player metrics are Locust request events with response_time = the value in ms, so they land
in Locust's CSV stats: STARTUP, REBUFFER (stall), REBUFFER_RATIO, PDT_LATENCY, PART_WAIT,
ABR (``SWITCH_DOWN from->to`` / ``SWITCH_UP from->to``, value = seconds since the user
started; context has from, to, t_s, estimate_bps) and RENDITION_TIME (one event per stint on a
rendition, value = its seconds; a stint ends at a switch or at the end of the session).

Edges (``LIVETWIN_EDGES``, ``loadgen locust --edges``): users start on the edges in turn; a
request that an edge does not answer, or answers 502/503/504, is sent once more to the next edge
(``failover``): a FAILOVER event (context from, to, status), then RESUMED (value = ms from the
move to the first media delivered) when parts flow again.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import gevent
from live.selftest import hls_client as hls
from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.user.users import LOCUST_STATE_STOPPING

from loadgen.locustfiles.edge import settings
from loadgen.locustfiles.failover import RETRIABLE_STATUSES, EdgeFailover
from loadgen.locustfiles.link import LinkPacer, LinkSchedule
from loadgen.locustfiles.player_model import (
    BandwidthEstimator,
    PlayoutBuffer,
    RenditionClock,
    ThroughputAbr,
)

MAX_PLAN = 64  # fetches handled per reload; the rest waits for the next reload
_USER_SEQUENCE = itertools.count()  # spreads this process's users over the edges in turn
T = TypeVar("T")


def _schedule_arg(text: str) -> str:
    """argparse type: validate a link schedule (kept as text so Locust can ship it to workers)."""
    if text:
        try:
            LinkSchedule.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _half_life_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, e.g. 3, not {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"a half-life must be > 0 s, not {text!r}")
    return value


@events.init_command_line_parser.add_listener
def _add_viewer_arguments(parser: Any) -> None:
    parser.add_argument(
        "--viewer-link-kbps",
        type=_schedule_arg,
        default="",
        env_var="LIVETWIN_VIEWER_LINK_KBPS",
        help="bound each LL-HLS viewer's link: KBPS, or a schedule KBPS@S,KBPS@S,... in seconds "
        "since the user started, e.g. 3000@0,400@20,3000@40 (default: unbounded)",
    )
    parser.add_argument(
        "--viewer-abr-ewma-fast",
        type=_half_life_arg,
        default=3.0,
        env_var="LIVETWIN_VIEWER_ABR_EWMA_FAST",
        help="half-life (s of transfer time) of the fast throughput EWMA, hls.js abrEwmaFastLive (default 3)",
    )
    parser.add_argument(
        "--viewer-abr-ewma-slow",
        type=_half_life_arg,
        default=9.0,
        env_var="LIVETWIN_VIEWER_ABR_EWMA_SLOW",
        help="half-life (s of transfer time) of the slow throughput EWMA, hls.js abrEwmaSlowLive (default 9)",
    )


class LlHlsViewer(FastHttpUser):
    """One low-latency HLS viewer session per task run."""

    abstract = False
    wait_time = between(0.5, 1.0)
    network_timeout = 15.0
    connection_timeout = 5.0

    def on_start(self) -> None:
        self.started_at = time.monotonic()
        self.settings = settings(self.environment)
        options = self.environment.parsed_options
        schedule = getattr(options, "viewer_link_kbps", "") if options is not None else ""
        self.link = LinkPacer(LinkSchedule.parse(schedule), self.started_at) if schedule else None
        self.ewma_half_lives = (
            float(getattr(options, "viewer_abr_ewma_fast", 3.0)),
            float(getattr(options, "viewer_abr_ewma_slow", 9.0)),
        )
        edges = self.settings.edges
        self.failover = EdgeFailover(edges, current=next(_USER_SEQUENCE)) if edges else None
        self.moved_at: float | None = None  # when this viewer last moved edge, until media flows

    def _at_edge(self, request: Callable[[str], tuple[T | None, int]], url: str, name: str) -> T | None:
        """`request(url)` on the current edge; when that edge gives no answer or a 502/503/504,
        the same request once more on the next edge (reported as a FAILOVER event).

        The failed attempt stays a failure in Locust's stats: it happened; the viewer-visible
        outcome is the retry and the RESUMED event that times the first media after the move.
        """
        failover = self.failover
        if failover is None:
            return request(url)[0]
        result, status = request(failover.rebase(url))
        if result is None and status in RETRIABLE_STATUSES and failover.can_move:
            old, new = failover.move()
            self.moved_at = time.monotonic()
            self._event("FAILOVER", name, 0, context={"from": old, "to": new, "status": status})
            result, _ = request(failover.rebase(url))
        return result

    def master_path(self) -> str:
        """The multivariant playlist of the next session (one channel unless a subclass spreads them)."""
        return self.settings.master_path

    def _event(
        self,
        kind: str,
        name: str,
        value_ms: float,
        exc: BaseException | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        self.environment.events.request.fire(
            request_type=kind,
            name=name,
            response_time=value_ms,
            response_length=0,
            exception=exc,
            context=context or {},
        )

    def _get_text(self, url: str, name: str) -> str | None:
        return self._at_edge(lambda at: self._get_text_at(at, name), url, name)

    def _get_text_at(self, url: str, name: str) -> tuple[str | None, int]:
        with self.client.get(url, name=name, catch_response=True) as resp:
            if resp.status_code != 200 or resp.text is None:
                resp.failure(f"HTTP {resp.status_code} for {name} at {url}")
                return None, resp.status_code
            if self.link is not None:  # small bodies: read whole, then wait out the link time
                size = int((resp.headers or {}).get("content-length") or len(resp.content or b""))
                gevent.sleep(self.link.take(time.monotonic(), size))
            return resp.text, resp.status_code

    def _get_media(self, fetch: hls.Fetch, name: str) -> tuple[int, float] | None:
        """GET a part/segment, reading the body at the link's rate; return (bytes, transfer s).

        The transfer runs from the response head (the server has the media and starts sending)
        to the last byte, so time spent waiting for a hinted part to be produced is excluded.
        """
        got = self._at_edge(lambda at: self._get_media_at(at, fetch, name), fetch.uri, name)
        if got is not None and self.moved_at is not None:
            self._event("RESUMED", name, (time.monotonic() - self.moved_at) * 1000)
            self.moved_at = None
        return got

    def _get_media_at(self, url: str, fetch: hls.Fetch, name: str) -> tuple[tuple[int, float] | None, int]:
        headers = {"Accept-Encoding": "identity"}
        if fetch.byterange is not None:
            headers["Range"] = fetch.byterange.header()
        started = time.perf_counter()
        with self.client.get(url, name=name, headers=headers, catch_response=True, stream=True) as resp:
            first = time.monotonic()
            if resp.status_code not in (200, 206):
                resp.failure(f"HTTP {resp.status_code} for {name} at {url}")
                return None, resp.status_code
            try:
                size = self._read_body(resp)
            except OSError as exc:
                resp.failure(f"body of {name} cut off at {url}: {exc}")
                return None, 0  # the edge went away mid-body: worth the next edge
            last = time.monotonic()
            expected = (resp.headers or {}).get("content-length")
            if expected is not None and int(expected) != size:
                resp.failure(f"body of {name} at {url}: {size} of {expected} bytes")
                return None, 0
            resp.request_meta["response_length"] = size
            resp.request_meta["response_time"] = (time.perf_counter() - started) * 1000
            return (size, last - first), resp.status_code

    def _read_body(self, resp: Any) -> int:
        size = 0
        if self.link is None:
            for chunk in resp.iter_content(64 * 1024, decode_content=False):
                size += len(chunk)
            return size
        while True:
            chunk = next(
                resp.iter_content(self.link.chunk_bytes(time.monotonic()), decode_content=False), b""
            )
            if not chunk:
                return size
            size += len(chunk)
            delay = self.link.take(time.monotonic(), len(chunk))
            if delay > 0:
                gevent.sleep(delay)

    @task
    def watch(self) -> None:
        base = (self.failover.base if self.failover else self.host.rstrip("/")) + self.master_path()
        joined = time.monotonic()
        text = self._get_text(base, "multivariant")
        if text is None:
            return
        try:
            variants = sorted(
                [v for v in hls.parse_multivariant(text, base) if v.resolution is not None]
                or hls.parse_multivariant(text, base),
                key=lambda v: v.bandwidth,
            )
        except hls.PlaylistError as exc:
            self._event("PLAYLIST", "multivariant-parse", 0, exc)
            return
        fast, slow = self.ewma_half_lives
        abr = ThroughputAbr(
            tuple(v.bandwidth for v in variants),
            estimator=BandwidthEstimator(fast_half_life=fast, slow_half_life=slow),
        )
        clock = RenditionClock()
        clock.enter(joined, variants[abr.index].name)
        buffer = PlayoutBuffer()
        try:
            self._session(variants, abr, clock, buffer, joined)
        finally:  # also when Locust stops the user mid-session
            self._book(clock.stop(time.monotonic()))
            if buffer.now is not None:
                self._event("REBUFFER_RATIO", variants[abr.index].name, buffer.rebuffer_ratio * 1000)

    def _session(
        self,
        variants: list[hls.Variant],
        abr: ThroughputAbr,
        clock: RenditionClock,
        buffer: PlayoutBuffer,
        joined: float,
    ) -> None:
        sized = False
        started = False
        cursor: hls.Cursor | None = None
        already: dict[str, float] = {}  # hinted URI -> wall-clock arrival (epoch s)
        map_seen: set[str] = set()
        reload_at: tuple[int, int] | None = None
        deadline = joined + self.settings.session_s  # a session bounds every loop
        while time.monotonic() < deadline and not self._stopping():
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
            if not sized:
                hold = 3 * (playlist.part_target or playlist.target_duration)
                buffer.start_threshold, sized = min(hold, 1.0), True
            if cursor is None:
                cursor = hls.start_cursor(playlist)
            step = hls.plan(playlist, cursor, already)
            cursor = step.cursor
            before = abr.index
            for fetch in step.fetches[:MAX_PLAN]:
                if self._stopping():
                    return
                cursor = cursor.after(fetch)
                if fetch.is_marker:
                    continue
                if fetch.uri in already:
                    arrived = already.pop(fetch.uri)
                    if fetch.program_date_time is not None and started:
                        self._event(
                            "PDT_LATENCY", variant.name, max(0.0, arrived - fetch.program_date_time) * 1000
                        )
                    continue
                if fetch.map_uri and fetch.map_uri not in map_seen:
                    map_seen.add(fetch.map_uri)
                    self._get_media(hls.Fetch(0, None, fetch.map_uri, None, None, True, None), "init")
                media_s = self._media_duration(playlist, fetch)
                got = self._get_media(fetch, "part" if fetch.part is not None else "segment")
                if got is None:
                    continue
                started = self._account(buffer, time.monotonic(), media_s, started, joined, variant.name)
                if fetch.program_date_time is not None and started:
                    self._event(
                        "PDT_LATENCY", variant.name, max(0.0, time.time() - fetch.program_date_time) * 1000
                    )
                if abr.observe(*got) != before:
                    break
            hint = playlist.preload_hint
            if abr.index == before and hint is not None and hint.uri not in already:
                fetch = hls.Fetch(*playlist.next_position, hint.uri, hint.byterange, None, False, None)
                t0 = time.monotonic()
                got = self._get_media(fetch, "preload-hint")
                if got is not None:
                    already[hint.uri] = time.time()
                    started = self._account(
                        buffer, time.monotonic(), playlist.part_target or 0.0, started, joined, variant.name
                    )
                    # the wait before the head is the server producing the part (not throughput)
                    self._event("PART_WAIT", "preload-hint", (time.monotonic() - t0 - got[1]) * 1000)
                    if abr.observe(*got) != before and cursor == hls.Cursor(fetch.msn, fetch.part or 0):
                        cursor = cursor.after(fetch)  # this part is buffered: go on after it
            if abr.index != before:
                self._switched(variants, before, abr, clock)
                reload_at, already = None, {}
                continue
            if playlist.endlist:
                return
            if playlist.can_block_reload:
                reload_at = playlist.next_position
            else:
                gevent.sleep(playlist.part_target or playlist.target_duration / 2)

    def _switched(
        self, variants: list[hls.Variant], before: int, abr: ThroughputAbr, clock: RenditionClock
    ) -> None:
        """Report a rendition switch as an ABR event and start the new rendition's clock."""
        now = time.monotonic()
        old, new = variants[before].name, variants[abr.index].name
        self._book(clock.enter(now, new))
        t_s = now - self.started_at
        kind = "SWITCH_UP" if abr.index > before else "SWITCH_DOWN"
        self._event(
            "ABR",
            f"{kind} {old}->{new}",
            t_s * 1000,
            context={
                "from": old,
                "to": new,
                "t_s": round(t_s, 3),
                "estimate_bps": round(abr.estimator.estimate_bps),
            },
        )

    def _book(self, stint: tuple[str, float] | None) -> None:
        if stint is not None:
            self._event("RENDITION_TIME", stint[0], stint[1] * 1000)

    def _stopping(self) -> bool:
        """Locust asked this user to stop (end of run, ramp-down): end the session gracefully,
        within ``--stop-timeout``, so its closing events still reach the stats."""
        return getattr(self, "_state", None) == LOCUST_STATE_STOPPING

    def _account(
        self, buffer: PlayoutBuffer, now: float, media_s: float, started: bool, joined: float, rendition: str
    ) -> bool:
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
