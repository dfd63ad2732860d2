"""What a WHIP or WHEP offer must hold before a peer connection is spent on it.

The HTTP layer checks the offer's shape here (RFC 8866 line syntax, RFC 8829 5.8 / RFC 8839
ICE credentials, RFC 8122 fingerprint) and the codecs (RFC 6184 H.264, RFC 7587 Opus) so a
malformed or useless offer gets a 400 with a reason instead of a half-built session. Pure: text
in, an ``Offer`` or an ``SdpError`` out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: An SDP offer from a browser is 3-8 KiB; anything past this is not an offer we want.
MAX_SDP_BYTES: Final = 64 * 1024
MAX_MEDIA_SECTIONS: Final = 16
_DIRECTIONS: Final = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})


class SdpError(ValueError):
    """The peer's offer is unusable; ``status`` is the HTTP answer it gets (RFC 9725 4.2)."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class MediaSection:
    """One ``m=`` section: its kind, the direction the offerer states, and its codec names."""

    kind: str
    direction: str
    codecs: tuple[str, ...]  # rtpmap encoding names, upper case, in offer order
    rejected: bool  # port 0

    @property
    def offerer_sends(self) -> bool:
        return not self.rejected and self.direction in ("sendrecv", "sendonly")

    @property
    def offerer_receives(self) -> bool:
        return not self.rejected and self.direction in ("sendrecv", "recvonly")


@dataclass(frozen=True, slots=True)
class Offer:
    sections: tuple[MediaSection, ...]

    def sections_of(self, kind: str) -> tuple[MediaSection, ...]:
        return tuple(s for s in self.sections if s.kind == kind)


def parse_offer(text: str) -> Offer:
    """The media sections of an SDP offer, or SdpError saying what is wrong with it."""
    if len(text.encode("utf-8", "replace")) > MAX_SDP_BYTES:
        raise SdpError(f"SDP offer larger than {MAX_SDP_BYTES} bytes", 413)
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line]
    if not lines or lines[0] != "v=0":
        raise SdpError("not an SDP offer: it must start with v=0")
    for number, line in enumerate(lines, 1):
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise SdpError(f"SDP line {number} is not type=value: {line[:40]!r}")
    session_attrs: set[str] = set()
    sections: list[MediaSection] = []
    current: dict[str, object] | None = None
    raw: list[dict[str, object]] = []
    for line in lines[1:]:
        kind, value = line[0], line[2:]
        if kind == "m":
            fields = value.split()
            if len(fields) < 4 or not fields[1].split("/")[0].isdigit():
                raise SdpError(f"malformed media line: {line[:60]!r}")
            current = {"kind": fields[0], "port": int(fields[1].split("/")[0]),
                       "pts": fields[3:], "attrs": set(), "rtpmap": {}, "direction": None}
            raw.append(current)
            if len(raw) > MAX_MEDIA_SECTIONS:
                raise SdpError(f"more than {MAX_MEDIA_SECTIONS} media sections")
        elif kind == "a":
            name, _, rest = value.partition(":")
            target = current["attrs"] if current is not None else session_attrs
            assert isinstance(target, set)
            target.add(name)
            if current is not None and name == "rtpmap":
                pt, _, encoding = rest.partition(" ")
                rtpmap = current["rtpmap"]
                assert isinstance(rtpmap, dict)
                rtpmap[pt] = encoding.split("/")[0].upper()
            if current is not None and name in _DIRECTIONS:
                current["direction"] = name
            elif current is None and name in _DIRECTIONS:
                session_attrs.add("dir:" + name)
    if not raw:
        raise SdpError("SDP offer has no media section")
    session_direction = next((a[4:] for a in session_attrs if a.startswith("dir:")), "sendrecv")
    for section in raw:
        attrs = section["attrs"]
        assert isinstance(attrs, set)
        for needed in ("ice-ufrag", "ice-pwd", "fingerprint"):
            if needed not in attrs and needed not in session_attrs:
                raise SdpError(f"SDP offer has no a={needed} for its {section['kind']} section")
        rtpmap = section["rtpmap"]
        pts = section["pts"]
        assert isinstance(rtpmap, dict) and isinstance(pts, list)
        codecs = tuple(rtpmap[pt] for pt in pts if pt in rtpmap)
        direction = section["direction"] or session_direction
        assert isinstance(direction, str)
        sections.append(MediaSection(str(section["kind"]), direction, codecs, section["port"] == 0))
    return Offer(tuple(sections))


def check_whip_offer(text: str) -> Offer:
    """A WHIP offer must send H.264 video; audio, if any, is taken as Opus."""
    offer = parse_offer(text)
    video = [s for s in offer.sections_of("video") if s.offerer_sends]
    if not video:
        raise SdpError("WHIP offer sends no video")
    if not any("H264" in s.codecs for s in video):
        raise SdpError("WHIP offer has no H.264 video: this server ingests H.264 (and Opus)")
    audio = [s for s in offer.sections_of("audio") if s.offerer_sends]
    if audio and not any("OPUS" in s.codecs for s in audio):
        raise SdpError("WHIP offer sends audio without Opus")
    return offer


def check_whep_offer(text: str) -> Offer:
    """A WHEP offer must receive H.264 video (the ladder's codec); audio is Opus if wanted."""
    offer = parse_offer(text)
    video = [s for s in offer.sections_of("video") if s.offerer_receives]
    if not video:
        raise SdpError("WHEP offer receives no video")
    if not any("H264" in s.codecs for s in video):
        raise SdpError("WHEP offer cannot receive H.264: the ladder is H.264")
    return offer
