"""Ad breaks: started by the streamer, marked in every playlist, filled per viewer, booked per view.

A break is one record (channel, start, duration). The origin marks it in every rendition's
media playlist at the next segment boundary, the same text for every viewer so edges cache
it: an ``EXT-X-DATERANGE`` interstitial (``CLASS="com.apple.hls.interstitial"``, HLS 2nd ed.
appendix D) whose ``X-ASSET-LIST`` the player fetches, and the SCTE-35 splice out and back in.
The asset list is where viewers differ: creatives for most, an empty list for subscribers.
Impressions the player reports are booked at the configured CPM, each (break, viewer, creative)
once, through ``bookings.book_impression`` (whole cents, never a float).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from live.api.errors import ApiError, not_found
from live.commerce import bookings
from live.commerce.scte35 import hex_attribute, splice_insert
from live.commerce.settings import CommerceSettings
from live.commerce.store import CommerceStore, Tx

#: How long after a break ends its impressions are still taken (players report late).
IMPRESSION_GRACE_S = 300.0


class AdMarker(Protocol):
    """The origin side: put a break's tags into every rendition at the next segment boundary."""

    def next_boundary(self, channel: str) -> float | None:
        """Wall-clock time (epoch s) of the next segment boundary; None when not live."""
        ...

    def add_date_ranges(self, channel: str, end_s: float, tags: list[str]) -> None: ...


@dataclass(frozen=True, slots=True)
class AdBreak:
    id: int
    channel: str
    starts_at: float
    duration_s: int


def _date(epoch_s: float) -> str:
    stamp = datetime.fromtimestamp(epoch_s, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def asset_list_path(break_id: int, base: str = "") -> str:
    return f"{base}/api/v1/ad-breaks/{break_id}/asset-list"


def daterange_tags(ad_break: AdBreak, asset_list_base: str = "") -> list[str]:
    """The playlist lines that mark ``ad_break`` (RFC 8216bis 4.4.5.1, HLS interstitials).

    ``asset_list_base`` ("": relative, resolved against the playlist's own URL) is the platform's
    site when playlists are served from elsewhere (a CDN edge, which serves ``/hls/`` only)."""
    start = _date(ad_break.starts_at)
    duration = f"{ad_break.duration_s:.3f}"
    out = hex_attribute(splice_insert(ad_break.id, out=True, duration_s=ad_break.duration_s))
    back = hex_attribute(splice_insert(ad_break.id, out=False))
    asset_list = asset_list_path(ad_break.id, asset_list_base)
    return [
        f'#EXT-X-DATERANGE:ID="ad-{ad_break.id}",CLASS="com.apple.hls.interstitial",START-DATE="{start}",'
        f'DURATION={duration},X-ASSET-LIST="{asset_list}",X-RESUME-OFFSET=0,'
        f'X-RESTRICT="SKIP,JUMP",X-SNAP="OUT,IN"',
        f'#EXT-X-DATERANGE:ID="splice-{ad_break.id}",START-DATE="{start}",PLANNED-DURATION={duration},'
        f"SCTE35-OUT={out}",
        f'#EXT-X-DATERANGE:ID="splice-{ad_break.id}",START-DATE="{start}",DURATION={duration},'
        f"SCTE35-IN={back}",
    ]


class AdBreaks:
    def __init__(
        self,
        store: CommerceStore,
        settings: CommerceSettings,
        marker: AdMarker | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.marker = marker
        self.clock = clock
        #: (URI, seconds) of each creative; `live serve` fills it once its clips are transcoded.
        self.creatives: tuple[tuple[str, float], ...] = settings.ad_creatives
        #: Where playlists point players for the asset list: "" (the playlist's host) unless
        #: `live serve --public-hls-url` serves them from a CDN; then this site (set once bound).
        self.asset_list_base = ""

    async def start(self, channel: str, duration_s: int) -> AdBreak:
        settings = self.settings
        if not settings.ad_break_min_s <= duration_s <= settings.ad_break_max_s:
            raise ApiError(
                400,
                "invalid_field",
                f"duration_s: must be {settings.ad_break_min_s}-{settings.ad_break_max_s} seconds",
                field="duration_s",
            )
        now = self.clock()
        boundary = self.marker.next_boundary(channel) if self.marker is not None else now
        if boundary is None:
            raise ApiError(409, "not_live", f"{channel} is not live; ad breaks run in a live stream")

        async def insert(tx: Tx) -> AdBreak:
            last = await tx.one(
                "SELECT starts_at, duration_s FROM ad_breaks WHERE channel = ? "
                "ORDER BY starts_at DESC LIMIT 1",
                channel,
            )
            if last is not None:
                free_at = float(last[0]) + int(last[1]) + settings.ad_break_cooldown_s
                if free_at > now:
                    raise ApiError(
                        429,
                        "rate_limited",
                        f"one ad break per {settings.ad_break_cooldown_s:g} s after the last one ended",
                        retry_after_s=free_at - now,
                    )
            row = await tx.one(
                "INSERT INTO ad_breaks (channel, starts_at, duration_s, created_at) "
                "VALUES (?, ?, ?, ?) RETURNING id",
                channel,
                boundary,
                duration_s,
                now,
            )
            assert row is not None
            return AdBreak(int(row[0]), channel, boundary, duration_s)

        ad_break = await self.store.run(insert)
        if self.marker is not None:
            tags = daterange_tags(ad_break, self.asset_list_base)
            self.marker.add_date_ranges(channel, ad_break.starts_at + duration_s, tags)
        return ad_break

    async def get(self, break_id: int) -> AdBreak:
        async def read(tx: Tx) -> Any:
            return await tx.one(
                "SELECT id, channel, starts_at, duration_s FROM ad_breaks WHERE id = ?", break_id
            )

        row = await self.store.run(read)
        if row is None:
            raise not_found(f"no ad break {break_id}")
        return AdBreak(int(row[0]), str(row[1]), float(row[2]), int(row[3]))

    def assets(self, ad_break: AdBreak, subscriber: bool) -> list[dict[str, Any]]:
        """Creatives to fill the break, in order (repeating as needed); none for a subscriber."""
        creatives = self.creatives
        if subscriber or not creatives:
            return []
        filled: list[dict[str, Any]] = []
        total = 0.0
        while total + 1e-6 < ad_break.duration_s and len(filled) < 64:
            uri, duration = creatives[len(filled) % len(creatives)]
            filled.append({"URI": uri, "DURATION": duration})
            total += duration
        return filled

    async def impression(self, ad_break: AdBreak, viewer: str, creative: int, subscriber: bool) -> bool:
        """Book one view of creative number ``creative`` by ``viewer``; False when not bookable."""
        count = len(self.assets(ad_break, subscriber=False))
        if creative < 0:
            raise ApiError(400, "invalid_field", "creative: must be a non-negative index", field="creative")
        if creative >= count:
            raise not_found(f"this break has {count} creatives; there is no number {creative}")
        now = self.clock()
        if now > ad_break.starts_at + ad_break.duration_s + IMPRESSION_GRACE_S:
            raise ApiError(409, "break_over", "impressions are taken until shortly after the break")
        if subscriber:
            return False

        async def book(tx: Tx) -> bool:
            new = await tx.one(
                "INSERT INTO ad_impressions (ad_break_id, viewer, creative, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING creative",
                ad_break.id,
                viewer,
                creative,
                now,
            )
            if new is None:
                return False
            await bookings.book_impression(tx, self.settings, ad_break.channel, now)
            return True

        return await self.store.run(book)
