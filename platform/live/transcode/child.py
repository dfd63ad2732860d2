"""The transcode worker process: one per live stream, driving a ``TranscodePipeline``.

Why a process: an encoder crash, a decoder bug fed a hostile stream, or a kill takes down one
stream's worker and nothing else, and streams spread over every core (the GIL is not shared).
The parent (``supervisor``) starts it as ``python -m live.transcode.child`` and talks to it in
the messages of ``wire`` over its stdin/stdout. The worker moves its fd 1 away first, so
nothing a library prints can corrupt the channel; its log goes to stderr.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import BinaryIO

from live.media.units import TrackKind
from live.transcode.decoders import select_decoder
from live.transcode.encoders import select_encoder
from live.transcode.ladder import LadderError, SourceInfo, build_ladder
from live.transcode.pipeline import TranscodeInputError, TranscodePipeline
from live.transcode.wire import (
    EXIT_BAD_INPUT,
    WorkerFlush,
    WorkerInput,
    WorkerOutput,
    WorkerProtocolError,
    WorkerReady,
    WorkerReport,
    WorkerStart,
    encode_message,
    read_message,
)

log = logging.getLogger(__name__)


def run_worker(inp: BinaryIO, out: BinaryIO, *, report_every_s: float = 1.0) -> int:
    """The worker's main loop: start message, then inputs until flush or end of input."""
    start = read_message(inp)
    if start is None:
        return 0
    if not isinstance(start, WorkerStart):
        raise WorkerProtocolError(f"expected WorkerStart, got {type(start).__name__}")
    source = SourceInfo(start.video.width, start.video.height, start.fps, start.video.codec, start.audio)
    ladder = build_ladder(source, start.ladder)
    choice = select_encoder(start.ladder.video_codec, prefer_hardware=start.settings.encoder.prefer_hardware)
    decoder = select_decoder(start.video.codec, prefer_hardware=start.settings.prefer_hardware_decode)
    pipeline = TranscodePipeline(
        start.video, ladder, choice, start.settings, audio=start.audio, decoder=decoder
    )

    def send(message: object) -> None:
        out.write(encode_message(message))
        out.flush()

    send(WorkerReady(os.getpid(), choice, decoder, ladder))
    consumed = 0
    send(WorkerOutput(tuple(pipeline.start()), consumed))
    last_report = time.monotonic()
    while True:
        message = read_message(inp)
        if message is None or isinstance(message, WorkerFlush):
            send(WorkerOutput(tuple(pipeline.flush()), consumed))
            send(WorkerReport(pipeline.metrics(), final=True))
            return 0
        if not isinstance(message, WorkerInput):
            raise WorkerProtocolError(f"unexpected {type(message).__name__}")
        consumed += 1
        unit = message.unit
        if unit.kind is TrackKind.VIDEO:
            events = pipeline.push_video(unit, arrival=message.sent)
        else:
            events = pipeline.push_audio(unit)
        send(WorkerOutput(tuple(events), consumed))
        now = time.monotonic()
        if now - last_report >= report_every_s:
            last_report = now
            send(WorkerReport(pipeline.metrics()))


def main() -> int:
    """``python -m live.transcode.child``: the protocol on stdin/stdout, logs on stderr."""
    logging.basicConfig(level=logging.INFO, format="transcode-worker %(levelname)s %(message)s")
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints from any library land in the log, not in the channel
    sys.stdout = sys.stderr
    try:
        return run_worker(sys.stdin.buffer, channel)
    except (LadderError, TranscodeInputError) as exc:
        log.error("stream cannot be transcoded: %s", exc)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
