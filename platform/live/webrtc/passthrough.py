"""Receive WHIP media from aiortc as depacketized frames, without decoding them.

aiortc's ``RTCRtpReceiver`` reassembles RTP into frames (its jitter buffer) and then decodes
every frame in a thread (``aiortc.rtcrtpreceiver.decoder_worker``) before its track's
``recv()`` returns pictures. Ingest wants the coded frames: the transcoder decodes once anyway,
and the ladder's passthrough rung forwards the publisher's H.264 untouched. aiortc has no
option for that, so this module replaces the worker function the receiver starts with one that,
for receivers registered here, hands each reassembled frame (``JitterFrame``: Annex B bytes for
H.264 with start codes, the raw payload for Opus, and the RTP timestamp counted from the first
packet) to the track as it is. Every other receiver in the process (a test's viewer, say) keeps
aiortc's decoding worker. The replacement is installed once, on the first ``register``, and
checks the one private name it needs, so an aiortc that renames it fails loudly at start.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import weakref
from typing import Any

import aiortc.rtcrtpreceiver as _receiver_module
from aiortc.mediastreams import MediaStreamTrack

_passthrough_queues: weakref.WeakSet[asyncio.Queue[Any]] = weakref.WeakSet()
_original_worker = getattr(_receiver_module, "decoder_worker", None)
_installed = False


def _worker(loop: asyncio.AbstractEventLoop, input_q: queue.Queue[Any], output_q: asyncio.Queue[Any],
            decode_error: threading.Event) -> None:
    if output_q not in _passthrough_queues:
        assert _original_worker is not None
        _original_worker(loop, input_q, output_q, decode_error)
        return
    while True:
        task = input_q.get()
        if task is None:
            asyncio.run_coroutine_threadsafe(output_q.put(None), loop)
            return
        _codec, encoded_frame = task
        asyncio.run_coroutine_threadsafe(output_q.put(encoded_frame), loop)


def register(track: MediaStreamTrack) -> None:
    """Make the remote ``track`` (``receiver.track``, before the answer is set) yield frames."""
    global _installed
    if not _installed:
        if _original_worker is None or not hasattr(_receiver_module, "decoder_worker"):
            raise RuntimeError("this aiortc has no rtcrtpreceiver.decoder_worker: "
                               "WHIP passthrough needs aiortc 1.16")
        _receiver_module.decoder_worker = _worker  # type: ignore[assignment]
        _installed = True
    track_queue = getattr(track, "_queue", None)
    if not isinstance(track_queue, asyncio.Queue):
        raise RuntimeError("aiortc's remote track has no frame queue: WHIP passthrough needs aiortc 1.16")
    _passthrough_queues.add(track_queue)
