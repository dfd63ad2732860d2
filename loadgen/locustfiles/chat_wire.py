"""Chat endpoint addressing for the Locust chatter, free of Locust so tests can import it
(importing locust monkey-patches the whole process with gevent)."""

from __future__ import annotations

from urllib.parse import quote, urlsplit


def chat_url(host: str, channel: str, token: str | None, chat_port: int | None) -> str:
    """The chat endpoint for ``host`` (an http(s) URL); ``chat_port`` overrides its port."""
    parts = urlsplit(host)
    scheme = "wss" if parts.scheme == "https" else "ws"
    port = chat_port if chat_port is not None else parts.port
    netloc = parts.hostname or "127.0.0.1"
    if port is not None:
        netloc = f"{netloc}:{port}"
    query = "" if not token else f"?token={quote(token)}"
    return f"{scheme}://{netloc}/chat/{quote(channel)}{query}"
