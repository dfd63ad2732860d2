"""Live transcoding: one source stream into an ABR ladder with aligned IDRs.

- ``ladder``: which renditions a source gets (pure policy).
- ``encoders`` / ``decoders``: NVENC/NVDEC only after a real test encode/decode, else x264/x265
  and software decoding; the choice and its reason are kept for metrics and the API.
- ``pipeline``: decode once, scale once per rung, encode every rung (the synchronous core);
  ``events``: what it emits per rendition (plain dataclasses, no PyAV).
- ``guard``: the real-time guard's shedding policy.
- ``child``: the worker process, one per stream; ``supervisor``: the ``TranscodeSupervisor``
  that starts, feeds and restarts it; ``wire``: the messages between the two and their framing.
- ``filesource``: a media file as input (VOD, benchmarks, tests).
"""
