"""A WHIP publisher's Opus becomes the ladder's AAC-LC in the transcoder, timestamps kept."""

from __future__ import annotations

import itertools
from fractions import Fraction

import av
from live.media.units import AccessUnit, TrackKind
from live.transcode.ladder import LadderSettings, audio_plan
from live.transcode.pipeline import _AudioTranscoder
from live.webrtc.assembler import OPUS_CONFIG


def opus_packets(count: int) -> list[bytes]:
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "s16"
    encoder.time_base = Fraction(1, 48000)
    encoder.open()
    packets: list[bytes] = []
    for n in range(count):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(bytes(frame.planes[0].buffer_size))
        frame.sample_rate, frame.pts = 48000, n * 960
        packets += [bytes(p) for p in encoder.encode(frame)]
    return packets


def test_opus_from_whip_is_planned_as_a_transcode_to_aac_lc_and_decoded_by_the_transcoder() -> None:
    plan = audio_plan(OPUS_CONFIG, LadderSettings())
    assert plan is not None and plan.transcode and plan.sample_rate == 48000 and plan.channels == 2
    transcoder = _AudioTranscoder(OPUS_CONFIG, plan)
    assert transcoder.config.codec == "aac" and transcoder.config.codec_string == "mp4a.40.2"
    units: list[AccessUnit] = []
    for n, packet in enumerate(opus_packets(50)):
        units += transcoder.push(AccessUnit(TrackKind.AUDIO, 1000 + 20 * n, 1000 + 20 * n, packet, True, 0.0))
    units += transcoder.push(None)
    assert len(units) >= 40  # ~1 s of 1024-sample AAC frames
    assert 1000 - 25 <= units[0].pts_ms <= 1000  # less the AAC priming frame
    assert all(b.pts_ms > a.pts_ms for a, b in itertools.pairwise(units))
