"""Locust chat user over the WebSocket chat protocol (docs/chat-protocol.md).

Connects to ``/chat/{channel}`` on the chat port, reads live messages and reports delivery
latency (now minus the server's ``sent_at``, same-host clocks) as request_type CHAT_DELIVERY.
With session tokens (`LocustSettings.chat_tokens`, ``LIVETWIN_CHAT_TOKEN``, comma-separated:
each user signs in with one at random) it also sends `chat_rate` messages per second; without
one it is a read-only viewer. Frames are written and room events read with the platform's own
protocol core (`live.chat.protocol`). Locust's gevent patches make the ``websockets`` sync
client cooperative; every receive is bounded by a timeout.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from live.chat.protocol import ChatMessage, PeerError, decode_event, encode_frame
from locust import User, constant, task
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from loadgen.locustfiles.chat_wire import chat_url
from loadgen.locustfiles.edge import settings

RECEIVE_WINDOW_S = 1.0  # one task run reads for this long, then yields to Locust


class Chatter(User):
    """A chat client: reads always, sends at a configured rate when it has a token."""

    wait_time = constant(0)  # each task already blocks up to RECEIVE_WINDOW_S in recv()

    def on_start(self) -> None:
        config = settings(self.environment)
        # several tokens spread the senders over accounts (the rate limit is per user)
        self.token = random.choice(config.chat_tokens) if config.chat_tokens else None
        self.rate = config.chat_rate if self.token else 0.0
        self.url = chat_url(
            self.host or "http://127.0.0.1", config.chat_channel, self.token, config.chat_port
        )
        self.ws: ClientConnection | None = None
        self.last_id = 0
        self.next_send = time.monotonic()
        self.sent = 0
        self._connect()

    def on_stop(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None

    def _fire(self, kind: str, name: str, ms: float, exc: BaseException | None = None) -> None:
        self.environment.events.request.fire(
            request_type=kind, name=name, response_time=ms, response_length=0, exception=exc, context={}
        )

    def _connect(self) -> None:
        t0 = time.monotonic()
        try:
            self.ws = connect(self.url, open_timeout=5, max_size=1 << 20)
            welcome = _frame(self.ws.recv(timeout=5))
        except (OSError, TimeoutError, ConnectionClosed, ValueError) as exc:
            self.ws = None
            self._fire("WS", "connect", (time.monotonic() - t0) * 1000, exc)
            return
        if welcome.get("type") != "welcome":
            self._fire("WS", "connect", 0, RuntimeError(f"first frame was {welcome.get('type')!r}"))
            self.ws.close()
            self.ws = None
            return
        # history (ids <= last_id) is not live delivery: skip it for latency
        self.last_id = max(self.last_id, int(welcome.get("last_id") or 0))
        self._fire("WS", "connect", (time.monotonic() - t0) * 1000)

    @task
    def chat(self) -> None:
        if self.ws is None:
            time.sleep(1.0)  # gevent-patched: back off before reconnecting
            self._connect()
            return
        until = time.monotonic() + RECEIVE_WINDOW_S
        while (left := until - time.monotonic()) > 0:
            if self.rate > 0 and time.monotonic() >= self.next_send:
                self.next_send = time.monotonic() + 1.0 / self.rate
                self.sent += 1
                try:
                    self.ws.send(encode_frame("send", text=f"locust {id(self):x} #{self.sent}"))
                except ConnectionClosed as exc:
                    self._fire("WS", "send", 0, exc)
                    self.ws = None
                    return
            wait = left if self.rate <= 0 else max(0.0, min(left, self.next_send - time.monotonic()))
            try:
                frame = self.ws.recv(timeout=wait)
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                self._fire("WS", "closed", 0, exc)
                self.ws = None
                return
            self._handle(frame)

    def _handle(self, frame: str | bytes) -> None:
        try:
            event = _frame(frame)
            kind = event.get("type")
            messages = (
                [decode_event(json.dumps(m)) for m in event.get("messages", [])] if kind == "messages" else []
            )
        except (ValueError, PeerError) as exc:
            self._fire("WS", "bad-frame", 0, exc)
            return
        now_ms = time.time() * 1000
        for message in messages:
            if not isinstance(message, ChatMessage) or message.id <= self.last_id:
                continue
            self.last_id = message.id
            self._fire("CHAT_DELIVERY", "message", max(0.0, now_ms - message.sent_at))
        if kind == "error":
            code = str(event.get("code"))
            self._fire("WS", f"error:{code}", 0, RuntimeError(f"{code}: {event.get('message')}"))


def _frame(raw: str | bytes) -> dict[str, Any]:
    """A server frame's envelope (`type` and its members); its room events go to `decode_event`."""
    frame = json.loads(raw)
    if not isinstance(frame, dict):
        raise ValueError(f"a chat frame is a JSON object, not {type(frame).__name__}")
    return frame
