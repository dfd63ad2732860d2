"""The DVR: every live stream's last hours on disk, rewindable, and a VOD once it ends.

``DvrRecorder`` (a ``PartSink`` beside the origin) writes each complete segment through the
``SegmentStore`` (``LocalDiskStore`` under ``--data``) and files it in the ``DvrCatalog``, which
applies the window, the byte cap and VOD retention; ``live.dvr.app`` serves the playlists and the
segment files from disk. ``Dvr`` (``live.dvr.service``) puts them together for ``live serve``.
"""
