"""The offer checks: what gets a 400 before any peer connection is made, and what passes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from live.webrtc.sdp import MAX_SDP_BYTES, SdpError, check_whep_offer, check_whip_offer, parse_offer

ICE = "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef0123456789\r\na=fingerprint:sha-256 AA:BB\r\n"


def offer(*sections: str) -> str:
    return "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" + "".join(sections)


Codecs = tuple[tuple[int, str], ...]


def video(direction: str = "sendonly", codecs: Codecs = ((96, "VP8"), (97, "H264"))) -> str:
    pts = " ".join(str(pt) for pt, _ in codecs)
    maps = "".join(f"a=rtpmap:{pt} {name}/90000\r\n" for pt, name in codecs)
    return f"m=video 9 UDP/TLS/RTP/SAVPF {pts}\r\nc=IN IP4 0.0.0.0\r\n{ICE}a={direction}\r\n{maps}"


def audio(direction: str = "sendonly", name: str = "opus") -> str:
    return f"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n{ICE}a={direction}\r\na=rtpmap:111 {name}/48000/2\r\n"


def test_a_browser_style_whip_offer_with_h264_and_opus_passes() -> None:
    parsed = check_whip_offer(offer(audio(), video()))
    assert [s.kind for s in parsed.sections] == ["audio", "video"]
    assert parsed.sections[1].codecs == ("VP8", "H264")
    assert parsed.sections[1].offerer_sends and not parsed.sections[1].offerer_receives


def test_a_whip_offer_without_h264_is_refused_with_a_reason() -> None:
    with pytest.raises(SdpError, match=r"no H\.264") as caught:
        check_whip_offer(offer(video(codecs=((96, "VP8"), (98, "VP9")))))
    assert caught.value.status == 400


def test_a_whip_offer_that_only_receives_is_refused() -> None:
    with pytest.raises(SdpError, match="sends no video"):
        check_whip_offer(offer(video("recvonly")))


def test_whip_audio_must_be_opus() -> None:
    with pytest.raises(SdpError, match="without Opus"):
        check_whip_offer(offer(video(), audio(name="PCMU")))


def test_a_whep_offer_must_receive_h264() -> None:
    assert check_whep_offer(offer(video("recvonly"), audio("recvonly")))
    with pytest.raises(SdpError, match="receives no video"):
        check_whep_offer(offer(video("sendonly")))
    with pytest.raises(SdpError, match=r"cannot receive H\.264"):
        check_whep_offer(offer(video("recvonly", ((96, "VP8"),))))


def test_a_rejected_section_counts_for_nothing() -> None:
    with pytest.raises(SdpError):
        check_whip_offer(offer(video().replace("m=video 9", "m=video 0")))


@pytest.mark.parametrize("text, reason", [
    ("", "v=0"),
    ("hello world", "v=0"),
    ("v=0\r\nthis is not sdp\r\n", "type=value"),
    (offer(), "no media section"),
    (offer("m=video\r\n"), "malformed media line"),
    (offer(video().replace("a=ice-ufrag:abcd\r\n", "")), "ice-ufrag"),
    (offer(video().replace("a=fingerprint:sha-256 AA:BB\r\n", "")), "fingerprint"),
    (offer(*[video()] * 17), "more than 16"),
])
def test_malformed_offers_say_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(SdpError, match=reason) as caught:
        parse_offer(text)
    assert caught.value.status == 400


def test_an_oversized_offer_is_413() -> None:
    with pytest.raises(SdpError) as caught:
        parse_offer("v=0\r\n" + "a=x\r\n" * (MAX_SDP_BYTES // 5 + 1))
    assert caught.value.status == 413


def test_session_level_credentials_and_direction_apply_to_every_section() -> None:
    text = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" + ICE + "a=sendonly\r\n"
            "m=video 9 UDP/TLS/RTP/SAVPF 97\r\na=rtpmap:97 H264/90000\r\n")
    assert check_whip_offer(text).sections[0].direction == "sendonly"


@given(st.text(max_size=400))
def test_any_text_is_an_offer_or_an_sdp_error(text: str) -> None:
    try:
        parse_offer(text)
    except SdpError as exc:
        assert exc.status in (400, 413)
