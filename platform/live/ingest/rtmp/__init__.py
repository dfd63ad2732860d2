"""RTMP ingest: a sans-I/O protocol core (server and client) and its asyncio server."""
