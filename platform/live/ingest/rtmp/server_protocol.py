"""Server side of one RTMP connection, sans I/O: bytes in, events out, bytes to send.

It runs the handshake, the chunk stream, the protocol control messages and the publish
command flow (RTMP spec 1.0 section 7.2; the connect/releaseStream/FCPublish/createStream/
publish/FCUnpublish/deleteStream sequence ffmpeg and OBS send). Decisions that need the
platform (is this stream key valid? is the channel free?) come out as a ``PublishRequested``
event; the application answers with ``accept_publish`` or ``reject_publish``.

Usage::

    conn = ServerConnection()
    conn.receive_data(data)
    for event in conn.events_received(): ...
    sock.write(conn.data_to_send())
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from live.ingest.rtmp import amf0
from live.ingest.rtmp.chunks import ChunkLimits, ChunkReader, ChunkWriter, RtmpMessage
from live.ingest.rtmp.errors import LimitExceeded, LocalProtocolError, RtmpProtocolError
from live.ingest.rtmp.handshake import HandshakeState, ServerHandshake
from live.ingest.rtmp.messages import (
    CSID_COMMAND,
    CSID_CONTROL,
    CSID_STREAM_COMMAND,
    MessageType,
    PeerBandwidthLimit,
    UserControlEvent,
    parse_u32,
    parse_user_control,
    set_peer_bandwidth,
    u32,
    user_control,
)


class ConnectionState(Enum):
    HANDSHAKE = "handshake"
    AWAIT_CONNECT = "await connect"
    CONNECTED = "connected"
    CLOSED = "closed"


class StreamState(Enum):
    CREATED = "created"
    PUBLISH_PENDING = "publish pending"
    PUBLISHING = "publishing"


# Legal stream transitions; anything else is the peer's protocol error.
_STREAM_TRANSITIONS: dict[StreamState, frozenset[StreamState]] = {
    StreamState.CREATED: frozenset({StreamState.PUBLISH_PENDING}),
    StreamState.PUBLISH_PENDING: frozenset({StreamState.PUBLISHING, StreamState.CREATED}),
    StreamState.PUBLISHING: frozenset({StreamState.CREATED}),
}


@dataclass(frozen=True, slots=True)
class Connected:
    """The client's ``connect`` was accepted."""

    app: str
    tc_url: str
    properties: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PublishRequested:
    """The client asks to publish ``name`` (the stream key) on message stream ``stream_id``."""

    stream_id: int
    name: str
    publish_type: str
    query: str


@dataclass(frozen=True, slots=True)
class MetadataReceived:
    """@setDataFrame/onMetaData (or a bare onMetaData) on a publishing stream."""

    stream_id: int
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MediaReceived:
    """One audio (type 8) or video (type 9) message: an FLV tag body."""

    stream_id: int
    type_id: int
    timestamp: int  # 32-bit ms as sent; the caller unwraps it
    payload: bytes


@dataclass(frozen=True, slots=True)
class PublishEnded:
    """The publishing stream ended by FCUnpublish, closeStream or deleteStream."""

    stream_id: int
    reason: str


Event = Connected | PublishRequested | MetadataReceived | MediaReceived | PublishEnded


#: What a peer may make us hold before a stream key is accepted: connect, createStream and
#: publish are a few hundred bytes each, so tens of KiB is plenty for any honest client.
PRE_PUBLISH_LIMITS = ChunkLimits(
    max_chunk_size=64 * 1024, max_message_size=32 * 1024, max_chunk_streams=8,
    max_pending_bytes=64 * 1024,
)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    apps: frozenset[str] = frozenset({"live"})
    chunk_size: int = 4096  # what we send with; clients choose their own
    window_ack_size: int = 5_000_000
    peer_bandwidth: int = 5_000_000
    max_streams: int = 4
    #: The limits once a publish has been accepted (a keyframe can be megabytes).
    limits: ChunkLimits = field(default_factory=ChunkLimits)
    #: The limits until then: an unauthenticated peer gets only this much of our memory.
    pre_publish_limits: ChunkLimits = PRE_PUBLISH_LIMITS


class ServerConnection:
    """One client connection's RTMP state."""

    def __init__(self, settings: ServerSettings | None = None) -> None:
        self.settings = settings or ServerSettings()
        self.state = ConnectionState.HANDSHAKE
        self.app = ""
        self._handshake = ServerHandshake()
        self._reader = ChunkReader(self.settings.pre_publish_limits)
        self.publish_accepted = False
        self._writer = ChunkWriter()
        self._out: list[bytes] = []
        self._events: list[Event] = []
        self._streams: dict[int, StreamState] = {}
        self._stream_names: dict[int, str] = {}
        self._next_stream_id = 1
        self._peer_window = 0
        self._last_ack = 0
        self.media_dropped = 0
        # Messages that arrive while the application decides on a publish wait here, so a
        # client that pipelines media after `publish` loses nothing however TCP splits it.
        self._decision_pending = False
        self._held: list[RtmpMessage] = []
        self._held_bytes = 0

    # ---- I/O facing ------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes from the peer. Raises RtmpProtocolError if the peer broke the protocol."""
        if self.state is ConnectionState.CLOSED:
            raise LocalProtocolError("receive_data on a closed connection")
        if self.state is ConnectionState.HANDSHAKE:
            rest = self._handshake.receive(data)
            self._out.append(self._handshake.data_to_send())
            if self._handshake.state is not HandshakeState.DONE:
                return
            self.state = ConnectionState.AWAIT_CONNECT
            data = rest
            if not data:
                return
        for message in self._reader.feed(data):
            if self._decision_pending:
                self._hold(message)
            else:
                self._handle(message)
        self._maybe_acknowledge()

    def events_received(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    @property
    def buffered_bytes(self) -> int:
        """What the peer currently makes us hold (unparsed input and partial messages)."""
        return self._reader.buffered

    @property
    def bytes_received(self) -> int:
        return self._reader.bytes_received

    # ---- application decisions -------------------------------------------------------------

    def accept_publish(self, stream_id: int) -> None:
        """Start the stream; the connection now gets the full (post-publish) limits."""
        self._transition(stream_id, StreamState.PUBLISHING, local=True)
        self.publish_accepted = True
        self._reader.limits = self.settings.limits
        name = self._stream_names.get(stream_id, "")
        self._send(CSID_CONTROL, MessageType.USER_CONTROL, 0,
                   user_control(UserControlEvent.STREAM_BEGIN, stream_id))
        self._on_status(stream_id, "status", "NetStream.Publish.Start",
                        f"{name} is now published.", details=name)
        self._release_held()

    def reject_publish(self, stream_id: int, code: str, description: str) -> None:
        """Answer the publish with an error status; the caller then closes the connection."""
        self._transition(stream_id, StreamState.CREATED, local=True)
        self._on_status(stream_id, "error", code, description)
        self._release_held()

    def _hold(self, message: RtmpMessage) -> None:
        self._held_bytes += len(message.payload)
        limit = self._reader.limits.max_pending_bytes
        if self._held_bytes > limit:
            raise LimitExceeded(f"more than {limit} bytes sent before the publish was answered")
        self._held.append(message)

    def _release_held(self) -> None:
        self._decision_pending = False
        held, self._held, self._held_bytes = self._held, [], 0
        for index, message in enumerate(held):
            if self._decision_pending:
                for rest in held[index:]:
                    self._hold(rest)
                return
            self._handle(message)

    def close(self) -> None:
        self.state = ConnectionState.CLOSED

    # ---- internals -------------------------------------------------------------------------

    def _transition(self, stream_id: int, target: StreamState, *, local: bool) -> None:
        current = self._streams.get(stream_id)
        if current is None or target not in _STREAM_TRANSITIONS[current]:
            message = f"stream {stream_id}: {current and current.value} -> {target.value}"
            if local:
                raise LocalProtocolError(message)
            raise RtmpProtocolError(message)
        self._streams[stream_id] = target

    def _send(self, csid: int, type_id: int, stream_id: int, payload: bytes) -> None:
        self._out.append(self._writer.write(csid, type_id, stream_id, 0, payload))

    def _command(self, csid: int, stream_id: int, *values: Any) -> None:
        self._send(csid, MessageType.COMMAND_AMF0, stream_id, amf0.encode(*values))

    def _on_status(
        self, stream_id: int, level: str, code: str, description: str, details: str = ""
    ) -> None:
        info: dict[str, Any] = {"level": level, "code": code, "description": description}
        if details:
            info["details"] = details
        self._command(CSID_STREAM_COMMAND, stream_id, "onStatus", 0.0, None, info)

    def _maybe_acknowledge(self) -> None:
        received = self._reader.bytes_received
        if self._peer_window and received - self._last_ack >= self._peer_window:
            self._last_ack = received
            self._send(CSID_CONTROL, MessageType.ACKNOWLEDGEMENT, 0, u32(received))

    def _handle(self, message: RtmpMessage) -> None:
        kind = message.type_id
        if kind in (MessageType.AUDIO, MessageType.VIDEO):
            if self._streams.get(message.stream_id) is StreamState.PUBLISHING:
                self._events.append(
                    MediaReceived(message.stream_id, kind, message.timestamp, message.payload)
                )
            else:
                self.media_dropped += 1
        elif kind in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
            self._handle_command(message, _amf_values(message))
        elif kind in (MessageType.DATA_AMF0, MessageType.DATA_AMF3):
            self._handle_data(message.stream_id, _amf_values(message))
        elif kind == MessageType.USER_CONTROL:
            event, data = parse_user_control(message.payload)
            if event == UserControlEvent.PING_REQUEST:
                self._send(CSID_CONTROL, MessageType.USER_CONTROL, 0,
                           user_control(UserControlEvent.PING_RESPONSE,
                                        parse_u32(data, "Ping Request")))
        elif kind == MessageType.WINDOW_ACK_SIZE:
            self._peer_window = parse_u32(message.payload, "Window Acknowledgement Size")
        elif kind == MessageType.ACKNOWLEDGEMENT:
            parse_u32(message.payload, "Acknowledgement")
        elif kind == MessageType.SET_PEER_BANDWIDTH:
            if len(message.payload) < 5:
                raise RtmpProtocolError("Set Peer Bandwidth shorter than 5 bytes")
        elif kind == MessageType.AGGREGATE:
            raise RtmpProtocolError("aggregate messages are not accepted from publishers")
        # Set Chunk Size and Abort were applied by the chunk reader; shared objects are ignored.

    def _handle_command(self, message: RtmpMessage, values: list[Any]) -> None:
        if not values or not isinstance(values[0], str):
            raise RtmpProtocolError("command message without a command name")
        name = values[0]
        txn = values[1] if len(values) > 1 and isinstance(values[1], float) else 0.0
        args = values[2:]
        if self.state is ConnectionState.AWAIT_CONNECT:
            if name != "connect":
                raise RtmpProtocolError(f"{name!r} before connect")
            self._connect(txn, args)
            return
        if name == "createStream":
            if len(self._streams) >= self.settings.max_streams:
                raise RtmpProtocolError(f"more than {self.settings.max_streams} streams")
            stream_id = self._next_stream_id
            self._next_stream_id += 1
            self._streams[stream_id] = StreamState.CREATED
            self._command(CSID_COMMAND, 0, "_result", txn, None, float(stream_id))
        elif name in ("releaseStream", "FCPublish"):
            self._command(CSID_COMMAND, 0, "_result", txn, None, amf0.UNDEFINED)
            if name == "FCPublish":
                self._command(CSID_COMMAND, 0, "onFCPublish", 0.0, None,
                              {"code": "NetStream.Publish.Start",
                               "description": _stream_name(args)})
        elif name == "publish":
            self._publish(message.stream_id, args)
        elif name == "FCUnpublish":
            self._command(CSID_COMMAND, 0, "_result", txn, None, amf0.UNDEFINED)
            for stream_id, state in list(self._streams.items()):
                if state is not StreamState.CREATED and self._stream_names.get(
                    stream_id
                ) == _stream_name(args).split("?", 1)[0]:
                    self._end(stream_id, "FCUnpublish")
        elif name == "closeStream":
            self._end(message.stream_id, "closeStream")
        elif name == "deleteStream":
            target = args[1] if len(args) > 1 and isinstance(args[1], float) else None
            if target is None:
                raise RtmpProtocolError("deleteStream without a stream id")
            stream_id = int(target)
            self._end(stream_id, "deleteStream")
            self._streams.pop(stream_id, None)
            self._stream_names.pop(stream_id, None)
        elif name == "connect":
            raise RtmpProtocolError("connect sent twice")
        elif name in ("_checkbw", "getStreamLength", "_result", "_error", "onBWDone"):
            pass
        elif txn:
            self._command(CSID_COMMAND, 0, "_error", txn, None,
                          {"level": "error", "code": "NetConnection.Call.Failed",
                           "description": f"unsupported command {name[:64]!r}"})

    def _connect(self, txn: float, args: list[Any]) -> None:
        props = args[0] if args and isinstance(args[0], dict) else {}
        app = str(props.get("app", "")).strip("/")
        tc_url = str(props.get("tcUrl", ""))
        if app.split("?", 1)[0] not in self.settings.apps:
            self._command(CSID_COMMAND, 0, "_error", txn, None,
                          {"level": "error", "code": "NetConnection.Connect.Rejected",
                           "description": f"unknown application {app[:64]!r}"})
            raise RtmpProtocolError(f"connect to unknown application {app[:64]!r}")
        self.app = app
        self.state = ConnectionState.CONNECTED
        self._send(CSID_CONTROL, MessageType.WINDOW_ACK_SIZE, 0, u32(self.settings.window_ack_size))
        self._send(CSID_CONTROL, MessageType.SET_PEER_BANDWIDTH, 0,
                   set_peer_bandwidth(self.settings.peer_bandwidth, PeerBandwidthLimit.DYNAMIC))
        self._out.append(self._writer.set_chunk_size(self.settings.chunk_size))
        encoding = props.get("objectEncoding", 0.0)
        self._command(
            CSID_COMMAND, 0, "_result", txn,
            {"fmsVer": "FMS/3,5,7,7009", "capabilities": 31.0, "mode": 1.0},
            {"level": "status", "code": "NetConnection.Connect.Success",
             "description": "Connection succeeded.",
             "objectEncoding": encoding if isinstance(encoding, float) else 0.0},
        )
        self._events.append(Connected(app, tc_url, dict(props)))

    def _publish(self, stream_id: int, args: list[Any]) -> None:
        full = _stream_name(args)
        if not full:
            raise RtmpProtocolError("publish without a stream name")
        if len(full) > 1024:
            raise RtmpProtocolError("publish name longer than 1024 characters")
        publish_type = args[2] if len(args) > 2 and isinstance(args[2], str) else "live"
        name, _, query = full.partition("?")
        self._transition(stream_id, StreamState.PUBLISH_PENDING, local=False)
        self._stream_names[stream_id] = name
        self._events.append(PublishRequested(stream_id, name, publish_type, query))
        self._decision_pending = True

    def _end(self, stream_id: int, reason: str) -> None:
        state = self._streams.get(stream_id)
        if state is None or state is StreamState.CREATED:
            return
        self._streams[stream_id] = StreamState.CREATED
        if state is StreamState.PUBLISHING:
            self._on_status(stream_id, "status", "NetStream.Unpublish.Success",
                            f"{self._stream_names.get(stream_id, '')} is now unpublished.")
            self._events.append(PublishEnded(stream_id, reason))

    def _handle_data(self, stream_id: int, values: list[Any]) -> None:
        if values and values[0] == "@setDataFrame":
            values = values[1:]
        if (len(values) >= 2 and values[0] == "onMetaData" and isinstance(values[1], dict)
                and self._streams.get(stream_id) is StreamState.PUBLISHING):
            self._events.append(MetadataReceived(stream_id, dict(values[1])))


def _stream_name(args: list[Any]) -> str:
    return args[1] if len(args) > 1 and isinstance(args[1], str) else ""


def _amf_values(message: RtmpMessage) -> list[Any]:
    payload = message.payload
    if message.type_id in (MessageType.COMMAND_AMF3, MessageType.DATA_AMF3) and payload[:1] == b"\x00":
        payload = payload[1:]  # AMF3 command/data messages start with a 0 format selector
    return amf0.decode(payload)
