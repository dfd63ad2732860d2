"""Picks the room-log broker a chat node uses from the URL it is configured with.

Apart from ``broker`` (the contract and the in-process broker) so that the contract does not
depend on its NATS implementation, which depends on the contract.
"""

from __future__ import annotations

from live.chat.broker import Broker, MemoryBroker
from live.chat.nats_broker import NatsBroker


def open_broker(url: str | None, history_window: int = 1000) -> Broker:
    """The broker ``live serve --chat-broker`` names: None for in-process, ``nats://...`` for NATS."""
    if url is None:
        return MemoryBroker(history_window)
    scheme = url.partition("://")[0].lower()
    if scheme in ("nats", "tls"):
        return NatsBroker(url, history_window=history_window)
    raise ValueError(f"chat broker {url!r}: expected a nats:// URL (or none for the in-process broker)")
