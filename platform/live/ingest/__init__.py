"""Ingest: the protocols publishers speak, feeding one live-stream registry."""
