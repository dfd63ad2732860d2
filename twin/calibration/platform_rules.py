"""What the twin takes from the platform itself rather than from calibration.yaml.

The twin must model the platform it claims to predict, so nothing the platform already decides
is restated here by hand: the renditions a fleet source is transcoded into come from the
platform's ladder policy (`live.transcode.ladder.build_ladder` over `DEFAULT_RUNGS`), the part
and segment durations from the packager's `PackagingSettings`, the players' hold-back from the
channel timing (`ChannelTiming.part_hold_back_s`, RFC 8216bis 4.4.3.8) and how far ahead a
blocking reload may ask from the origin (`live.origin.blocking`, RFC 8216bis 6.2.5.2), and how
long chat batches messages (`live.chat.settings.ChatSettings.batch_interval_s`).
tests/twin/test_platform_rules.py fails when the twin and the platform diverge.
"""

from __future__ import annotations

from dataclasses import dataclass

from live.chat.settings import ChatSettings
from live.origin.blocking import DirectiveError, Directives, Progress, check_reachable
from live.package.ladder_packager import PackagingSettings
from live.transcode.ladder import DEFAULT_RUNGS, Ladder, LadderSettings, SourceInfo, build_ladder

#: how calibration provenance names the platform's own modules
LADDER_SOURCE = "platform: live.transcode.ladder.build_ladder over DEFAULT_RUNGS for the fleet source"
PART_SOURCE = "platform: live.package.ladder_packager.PackagingSettings.part_target_s"
SEGMENT_SOURCE = "platform: live.package.ladder_packager.PackagingSettings.segment_target_s"
CHAT_BATCH_SOURCE = "platform: live.chat.settings.ChatSettings.batch_interval_s (per-room batching window)"
HOLD_BACK_SOURCE = "platform: live.package.timing.ChannelTiming.part_hold_back_s / part_target_s"


@dataclass(frozen=True, slots=True)
class FleetSource:
    """The typical publisher of the fleet: what the ladder policy is applied to."""

    width: int
    height: int
    fps: float
    codec: str
    video_kbps: int


@dataclass(frozen=True, slots=True)
class PlatformRung:
    """One rendition the platform delivers of a fleet source, as the twin needs it."""

    name: str
    width: int
    height: int
    fps: float
    bitrate_kbps: int
    passthrough: bool

    @property
    def mpixels_per_s(self) -> float:
        return self.width * self.height * self.fps / 1e6


def platform_ladder(source: FleetSource, settings: LadderSettings | None = None) -> Ladder:
    """The platform's own ladder for `source` (its default template unless `settings` says otherwise)."""
    info = SourceInfo(
        source.width, source.height, float(source.fps), source.codec, video_kbps=source.video_kbps
    )
    return build_ladder(info, settings or LadderSettings(rungs=DEFAULT_RUNGS))


def fleet_rungs(source: FleetSource) -> tuple[PlatformRung, ...]:
    """The delivered renditions, passthrough first, then the encoded rungs largest first."""
    rungs = []
    for r in platform_ladder(source).video:
        kbps = r.video_kbps if r.video_kbps is not None else source.video_kbps
        rungs.append(PlatformRung(r.name, r.width, r.height, r.fps, kbps, r.passthrough))
    return tuple(rungs)


def packaging() -> PackagingSettings:
    """The packager's part and segment targets (the platform's defaults)."""
    return PackagingSettings()


def part_s() -> float:
    return float(packaging().part_target_s)


def segment_s() -> float:
    return float(packaging().segment_target_s)


def chat_batch_s() -> float:
    """How long a chat message waits for its room's batch frame at most."""
    return float(ChatSettings().batch_interval_s)


def hold_back_parts() -> float:
    """PART-HOLD-BACK in parts, as the origin's playlists state it."""
    timing = packaging().timing
    return float(timing.part_hold_back_s / timing.part_target_s)


def player_request_allowed(last_msn: int, last_part: int, ask_msn: int, ask_part: int) -> bool:
    """Whether the origin answers (holds) a blocking reload for (ask_msn, ask_part), not 400."""
    parts = max(1, round(segment_s() / part_s()))
    progress = Progress(last_msn, last_part, segment_end=last_part == parts - 1)
    try:
        check_reachable(Directives(msn=ask_msn, part=ask_part), progress, part_s(), parts)
    except DirectiveError:
        return False
    return True
