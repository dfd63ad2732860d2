"""The messages between a transcode supervisor and its worker process, and how they are framed.

Supervisor and worker are both our own code, talking over the child's stdin/stdout: frames of a
4-byte big-endian length and a pickled message. The messages are defined here, in a module both
sides import, so a pickled message names the same class on either side (the worker runs as
``python -m live.transcode.child``, whose own module is ``__main__``). A frame longer than
``MAX_MESSAGE`` or a message of the wrong type is a ``WorkerProtocolError``: our bug, never
the publisher's.

Parent to worker: ``WorkerStart`` once, then ``WorkerInput`` per access unit, ``WorkerFlush``
at end of stream. Worker to parent: ``WorkerReady`` once its codecs are open, ``WorkerOutput``
after every input, ``WorkerReport`` about once a second and a final one before it exits.
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass
from typing import BinaryIO

from live.media.units import AccessUnit, AudioConfig, VideoConfig
from live.transcode.decoders import DecoderChoice
from live.transcode.encoders import EncoderChoice
from live.transcode.events import TranscodeEvent
from live.transcode.ladder import Ladder, LadderSettings
from live.transcode.pipeline import TranscodeMetrics, TranscodeSettings

_HEADER = struct.Struct(">I")
HEADER_SIZE = _HEADER.size
EXIT_BAD_INPUT = 3  # the worker's exit status when the publisher's stream cannot be transcoded
MAX_MESSAGE = 64 * 1024 * 1024  # one message; far above any access unit or event batch


class WorkerProtocolError(RuntimeError):
    """The other end of the worker channel sent something that is not a message (our bug)."""


@dataclass(frozen=True, slots=True)
class WorkerStart:
    stream_id: str
    video: VideoConfig
    fps: float
    audio: AudioConfig | None
    ladder: LadderSettings
    settings: TranscodeSettings


@dataclass(frozen=True, slots=True)
class WorkerInput:
    unit: AccessUnit
    sent: float  # parent's time.monotonic() at submit: the frame's arrival for delay and lag


@dataclass(frozen=True, slots=True)
class WorkerFlush:
    """End of stream: drain the encoders, report, exit."""


@dataclass(frozen=True, slots=True)
class WorkerReady:
    pid: int
    encoder: EncoderChoice
    decoder: DecoderChoice
    ladder: Ladder


@dataclass(frozen=True, slots=True)
class WorkerOutput:
    events: tuple[TranscodeEvent, ...]
    consumed: int  # inputs read by the worker so far (the parent's backlog accounting)


@dataclass(frozen=True, slots=True)
class WorkerReport:
    metrics: TranscodeMetrics
    final: bool = False


def encode_message(message: object) -> bytes:
    """One frame: the length header and the pickled message."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    if len(body) > MAX_MESSAGE:
        raise WorkerProtocolError(f"message of {len(body)} bytes exceeds {MAX_MESSAGE}")
    return _HEADER.pack(len(body)) + body


def body_size(header: bytes) -> int:
    """The length a frame's ``HEADER_SIZE``-byte header announces, checked against the limit."""
    (size,) = _HEADER.unpack(header)
    if size > MAX_MESSAGE:
        raise WorkerProtocolError(f"message length {size} exceeds {MAX_MESSAGE}")
    return int(size)


def decode_body(body: bytes) -> object:
    message: object = pickle.loads(body)
    return message


def read_message(stream: BinaryIO) -> object | None:
    """The next message from a blocking stream; None at end of input (or a cut-off frame)."""
    header = stream.read(HEADER_SIZE)
    if len(header) < HEADER_SIZE:
        return None
    size = body_size(header)
    body = stream.read(size)
    if len(body) < size:
        return None
    return decode_body(body)
