"""The twin models the platform it predicts: its ladder, part and segment durations, hold-back and
blocking-reload pattern are the platform's own, and this file fails when they diverge."""

from __future__ import annotations

import copy

import pytest
import yaml
from live.origin.blocking import advance_part_limit
from live.package.ladder_packager import PackagingSettings
from live.transcode.ladder import DEFAULT_RUNGS, SourceInfo, build_ladder

from twin.calibration import platform_rules
from twin.calibration.parameters import CalibrationError, parse_calibration, shipped_text


def _fleet_source_info(raw: dict) -> SourceInfo:
    src = raw["fleet_source"]
    return SourceInfo(
        src["width"], src["height"], float(src["fps"]), src["codec"], video_kbps=src["video_kbps"]
    )


def test_fleet_ladder_is_the_platform_ladder_of_the_fleet_source(cal) -> None:
    raw = yaml.safe_load(shipped_text())
    platform = build_ladder(_fleet_source_info(raw)).video
    assert [r.name for r in cal.ladder] == [r.name for r in platform]
    assert [(r.width, r.height, r.fps, r.passthrough) for r in cal.ladder] == [
        (r.width, r.height, r.fps, r.passthrough) for r in platform
    ]
    encoded_kbps = [r.video_kbps for r in platform if not r.passthrough]
    assert [r.bitrate_bps / 1000 for r in cal.ladder if not r.passthrough] == encoded_kbps


def test_fleet_ladder_has_every_default_rung_a_1080p60_source_gets_and_nothing_else(cal) -> None:
    encoded = {(r.height, round(r.fps), r.bitrate_bps / 1000) for r in cal.ladder if not r.passthrough}
    assert encoded == {(s.height, round(s.max_fps), s.video_kbps) for s in DEFAULT_RUNGS}
    assert "720p60" not in {r.name for r in cal.ladder}  # the rung the platform never made


def test_part_segment_and_hold_back_are_the_packagers(cal) -> None:
    settings = PackagingSettings()
    assert cal.part_s == settings.part_target_s
    assert cal.segment_s == settings.segment_target_s
    assert cal.hold_back_parts * settings.part_target_s == pytest.approx(settings.timing.part_hold_back_s)
    assert dict(cal.sources)["part_s"].startswith("platform:")


def test_the_tracers_next_part_request_is_one_the_origin_holds_rather_than_refuses() -> None:
    parts = round(platform_rules.segment_s() / platform_rules.part_s())
    # a tracer joins hold_back parts behind the edge and asks for the next part: always reachable
    assert platform_rules.player_request_allowed(10, 2, 10, 3)
    assert platform_rules.player_request_allowed(10, parts - 1, 11, 0)
    # asking past the origin's advance limit is refused, so the twin's players never do it
    too_far = int(advance_part_limit(platform_rules.part_s())) + 2
    assert not platform_rules.player_request_allowed(10, 0, 10 + too_far // parts + 1, 0)


def test_calibration_may_not_restate_what_the_platform_decides() -> None:
    data = copy.deepcopy(yaml.safe_load(shipped_text()))
    data["params"]["part_s"] = {"value": 0.5, "unit": "s", "source": "hand-written"}
    with pytest.raises(CalibrationError, match="part_s"):
        parse_calibration(data)
    data = copy.deepcopy(yaml.safe_load(shipped_text()))
    data["ladder"] = [{"name": "720p60", "bitrate_kbps": 3500, "source": "hand-written"}]
    with pytest.raises(CalibrationError, match="ladder"):
        parse_calibration(data)
