"""The SRT stream ID a publisher sends, read in the SRT access-control syntax.

SRT carries a free-form stream ID in its handshake (SRTO_STREAMID, up to 512 bytes). The SRT
project's access-control convention (``docs/features/access-control.md`` in Haivision/srt) is
``#!::`` followed by comma-separated ``key=value`` pairs: ``r`` resource, ``m`` mode
(``request``, ``publish``, ``bidirectional``), ``u`` user, ``s`` session, ``t`` type
(``stream``, ``file``, ``auth``), ``h`` host. We take the stream key from ``r=live/{key}``
(or ``r={key}``), and also accept a bare key, which is what simple publishers send. Pure: a
string in, a ``StreamId`` or a ``StreamIdError`` out, checked before the handshake completes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

#: The SRT handshake limits the stream ID to 512 bytes.
MAX_STREAM_ID = 512
PREFIX = "#!::"
_KEYS = frozenset({"r", "m", "u", "s", "t", "h"})
_MODES = frozenset({"request", "publish", "bidirectional"})
_STREAM_KEY = re.compile(r"[A-Za-z0-9_\-]{1,128}\Z")
_APP = "live"


class StreamIdError(ValueError):
    """The publisher's stream ID is malformed or asks for something we do not serve."""

    def __init__(self, reason: str, *, mode: bool = False) -> None:
        super().__init__(reason)
        #: True when the syntax was fine but the mode is not ``publish`` (SRT_REJX_BAD_MODE).
        self.mode = mode


@dataclass(frozen=True, slots=True)
class StreamId:
    stream_key: str
    mode: str = "publish"
    user: str | None = None
    session: str | None = None


def parse_stream_id(text: str) -> StreamId:
    """The stream key a publisher asks to publish with, from its SRT stream ID."""
    if len(text.encode()) > MAX_STREAM_ID:
        raise StreamIdError(f"stream ID longer than {MAX_STREAM_ID} bytes")
    if text.startswith("%23"):
        text = unquote(text)  # ffmpeg passes ?streamid= through without decoding it
    if not text.startswith(PREFIX):
        key = text.removeprefix(f"{_APP}/")
        if not _STREAM_KEY.match(key):
            raise StreamIdError("stream ID is neither '#!::r=live/KEY,m=publish' nor a bare key")
        return StreamId(key)
    fields: dict[str, str] = {}
    for item in text[len(PREFIX):].split(","):
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise StreamIdError(f"stream ID item {item!r} is not key=value")
        if name in fields:
            raise StreamIdError(f"stream ID repeats key {name!r}")
        fields[name] = value
    unknown = sorted(set(fields) - _KEYS)
    if unknown:
        raise StreamIdError(f"stream ID has unsupported keys {unknown}")
    mode = fields.get("m", "request")
    if mode not in _MODES:
        raise StreamIdError(f"stream ID mode {mode!r} is not one of {sorted(_MODES)}")
    if mode != "publish":
        raise StreamIdError(f"mode {mode!r}: this listener only takes publishers (m=publish)",
                            mode=True)
    stream_type = fields.get("t", "stream")
    if stream_type != "stream":
        raise StreamIdError(f"type {stream_type!r}: only t=stream is served")
    resource = fields.get("r")
    if resource is None:
        raise StreamIdError("stream ID has no resource (r=live/KEY)")
    key = resource.removeprefix(f"{_APP}/")
    if not _STREAM_KEY.match(key):
        raise StreamIdError(f"resource {resource!r} is not live/KEY")
    return StreamId(key, mode, fields.get("u"), fields.get("s"))
