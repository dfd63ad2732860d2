"""livetwin's platform package: ingest, transcode, package, origin, chat, commerce, API."""

__version__ = "0.1.0"
