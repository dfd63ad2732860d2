"""Client (publisher) side of an RTMP connection, sans I/O.

Drives the same publish flow ffmpeg sends (connect, releaseStream, FCPublish, createStream,
publish), then carries media as FLV tag bodies. The load generators use it to publish many
streams from one process; the tests use it to drive ``ServerConnection`` byte by byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from live.ingest.rtmp import amf0
from live.ingest.rtmp.chunks import ChunkLimits, ChunkReader, ChunkWriter, RtmpMessage
from live.ingest.rtmp.errors import LocalProtocolError, RtmpProtocolError
from live.ingest.rtmp.handshake import ClientHandshake, HandshakeState
from live.ingest.rtmp.messages import (
    CSID_AUDIO,
    CSID_COMMAND,
    CSID_CONTROL,
    CSID_STREAM_COMMAND,
    CSID_VIDEO,
    MessageType,
    UserControlEvent,
    parse_u32,
    parse_user_control,
    u32,
    user_control,
)


class ClientState(Enum):
    HANDSHAKE = "handshake"
    CONNECTING = "connecting"
    CREATING_STREAM = "creating stream"
    PUBLISHING_REQUESTED = "publish requested"
    PUBLISHING = "publishing"
    REJECTED = "rejected"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class PublishStarted:
    stream_id: int


@dataclass(frozen=True, slots=True)
class PublishRejected:
    code: str
    description: str


@dataclass(frozen=True, slots=True)
class StatusReceived:
    code: str
    level: str
    description: str


ClientEvent = PublishStarted | PublishRejected | StatusReceived


class ClientConnection:
    """Publish one stream: ``ClientConnection(app, tc_url, stream_key)``."""

    def __init__(self, app: str, tc_url: str, stream_key: str, chunk_size: int = 4096) -> None:
        self.app = app
        self.tc_url = tc_url
        self.stream_key = stream_key
        self.state = ClientState.HANDSHAKE
        self.stream_id = 0
        self._handshake = ClientHandshake()
        self._reader = ChunkReader(ChunkLimits(max_message_size=1 << 20))
        self._writer = ChunkWriter()
        self._chunk_size = chunk_size
        self._out: list[bytes] = [self._handshake.data_to_send()]
        self._events: list[ClientEvent] = []
        self._txn = 0.0
        self._create_txn = 0.0

    def data_to_send(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def events_received(self) -> list[ClientEvent]:
        events, self._events = self._events, []
        return events

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        if self.state is ClientState.HANDSHAKE:
            rest = self._handshake.receive(data)
            self._out.append(self._handshake.data_to_send())
            if self._handshake.state is not HandshakeState.DONE:
                return
            self._start_connect()
            data = rest
            if not data:
                return
        for message in self._reader.feed(data):
            self._handle(message)

    def send_metadata(self, metadata: dict[str, Any]) -> None:
        self._require_publishing()
        payload = amf0.encode("@setDataFrame", "onMetaData", amf0.EcmaArray(metadata))
        self._out.append(
            self._writer.write(CSID_STREAM_COMMAND, MessageType.DATA_AMF0, self.stream_id, 0, payload)
        )

    def send_video(self, timestamp_ms: int, tag_body: bytes) -> None:
        self._require_publishing()
        self._out.append(
            self._writer.write(CSID_VIDEO, MessageType.VIDEO, self.stream_id, timestamp_ms, tag_body)
        )

    def send_audio(self, timestamp_ms: int, tag_body: bytes) -> None:
        self._require_publishing()
        self._out.append(
            self._writer.write(CSID_AUDIO, MessageType.AUDIO, self.stream_id, timestamp_ms, tag_body)
        )

    def unpublish(self) -> None:
        self._require_publishing()
        self._command(CSID_COMMAND, 0, "FCUnpublish", None, self.stream_key)
        self._command(CSID_COMMAND, 0, "deleteStream", None, float(self.stream_id))
        self.state = ClientState.CLOSED

    def _require_publishing(self) -> None:
        if self.state is not ClientState.PUBLISHING:
            raise LocalProtocolError(f"cannot send media in state {self.state.value}")

    def _command(self, csid: int, stream_id: int, name: str, *args: Any) -> float:
        self._txn += 1.0
        payload = amf0.encode(name, self._txn, *args)
        self._out.append(self._writer.write(csid, MessageType.COMMAND_AMF0, stream_id, 0, payload))
        return self._txn

    def _start_connect(self) -> None:
        self.state = ClientState.CONNECTING
        self._out.append(self._writer.set_chunk_size(self._chunk_size))
        self._command(CSID_COMMAND, 0, "connect", {
            "app": self.app, "type": "nonprivate", "flashVer": "FMLE/3.0 (compatible; livetwin)",
            "tcUrl": self.tc_url,
        })

    def _handle(self, message: RtmpMessage) -> None:
        if message.type_id == MessageType.USER_CONTROL:
            event, data = parse_user_control(message.payload)
            if event == UserControlEvent.PING_REQUEST:
                self._out.append(self._writer.write(
                    CSID_CONTROL, MessageType.USER_CONTROL, 0, 0,
                    user_control(UserControlEvent.PING_RESPONSE, parse_u32(data, "ping"))))
            return
        if message.type_id == MessageType.WINDOW_ACK_SIZE:
            return
        if message.type_id != MessageType.COMMAND_AMF0:
            return
        values = amf0.decode(message.payload)
        if not values or not isinstance(values[0], str):
            raise RtmpProtocolError("command without a name")
        name = values[0]
        if name == "_result" and self.state is ClientState.CONNECTING:
            self.state = ClientState.CREATING_STREAM
            self._command(CSID_COMMAND, 0, "releaseStream", None, self.stream_key)
            self._command(CSID_COMMAND, 0, "FCPublish", None, self.stream_key)
            self._create_txn = self._command(CSID_COMMAND, 0, "createStream", None)
        elif (name == "_result" and self.state is ClientState.CREATING_STREAM
              and len(values) > 1 and values[1] == self._create_txn):
            if len(values) < 4 or not isinstance(values[3], float):
                raise RtmpProtocolError("createStream result without a stream id")
            self.stream_id = int(values[3])
            self.state = ClientState.PUBLISHING_REQUESTED
            self._command(CSID_STREAM_COMMAND, self.stream_id, "publish", None,
                          self.stream_key, "live")
        elif name == "_error":
            info = values[3] if len(values) > 3 and isinstance(values[3], dict) else {}
            self.state = ClientState.REJECTED
            self._events.append(PublishRejected(str(info.get("code", "")),
                                                str(info.get("description", ""))))
        elif name == "onStatus":
            info = values[3] if len(values) > 3 and isinstance(values[3], dict) else {}
            code = str(info.get("code", ""))
            level = str(info.get("level", ""))
            self._events.append(StatusReceived(code, level, str(info.get("description", ""))))
            if self.state is ClientState.PUBLISHING_REQUESTED:
                if code == "NetStream.Publish.Start":
                    self.state = ClientState.PUBLISHING
                    self._events.append(PublishStarted(self.stream_id))
                elif level == "error":
                    self.state = ClientState.REJECTED
                    self._events.append(PublishRejected(code, str(info.get("description", ""))))

    @property
    def bytes_received(self) -> int:
        return self._reader.bytes_received

    def acknowledgement(self) -> bytes:
        """An Acknowledgement message for what we have received (sent by the I/O layer)."""
        return self._writer.write(CSID_CONTROL, MessageType.ACKNOWLEDGEMENT, 0, 0,
                                  u32(self._reader.bytes_received))
