"""The instruments the platform measures itself with: a clock-painting publisher and a probe viewer.

Glass-to-glass latency is measured by publishing frames that carry their capture time in the
pixels (``clockcode``, ``publisher``) and playing the stream back like an LL-HLS player
(``hls_client``, ``probe``), reading the painted clock from every decoded frame
(docs/glass-to-glass.md). ``live demo`` runs them against the platform it starts, and
``loadgen publish`` / ``loadgen probe`` (and the real runs built on them) against a running
one. They live in the product, not in ``loadgen``, because the product uses them itself and
must not import its load tool; they sit beside the origin and chat (they may use
``live.media`` and ``live.ingest``) and import nothing of the platform process above them.
"""
