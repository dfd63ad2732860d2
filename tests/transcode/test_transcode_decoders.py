"""Decoder selection: hardware (NVDEC) only after a real test decode, else software."""

from __future__ import annotations

import av
import pytest
from live.transcode.decoders import (
    DecoderChoice,
    open_decoder,
    probe_hardware_decoder,
    select_decoder,
)


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_hardware_decoder_is_chosen_only_when_its_test_decode_works(codec: str) -> None:
    choice = select_decoder(codec)
    failure = probe_hardware_decoder(codec)
    if failure is None:
        assert choice.hardware and choice.device_type == "cuda"
    else:
        assert not choice.hardware and choice.reason == failure
        assert "hwaccel" in failure or "software" in failure
    assert choice.name == {"h264": "h264", "h265": "hevc"}[codec]


def test_software_decoder_when_hardware_is_disabled() -> None:
    choice = select_decoder("h264", prefer_hardware=False)
    assert not choice.hardware and "disabled" in choice.reason


def test_unknown_codec_is_refused() -> None:
    with pytest.raises(ValueError, match="vp8"):
        select_decoder("vp8")


def test_software_decoder_context_decodes_with_frame_threads() -> None:
    ctx = open_decoder(DecoderChoice("h264", "h264", False, "test"), b"", threads=2)
    assert not ctx.is_hwaccel and ctx.thread_count == 2
    assert isinstance(ctx, av.video.codeccontext.VideoCodecContext)
