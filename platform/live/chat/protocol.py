"""Chat wire protocol: client JSON in, typed requests out; room events to JSON once, fanned out many times.

Pure (no I/O), so hypothesis can throw any bytes at ``parse_client_message``: it returns one of the
request dataclasses or raises ``ClientError`` naming the member at fault. The server never crashes
on client input. Room events (``ChatMessage``, ``ModerationEvent``) are what the broker carries and
what clients receive; ``encode_event`` renders each one to a JSON fragment exactly once per node and
``decode_event`` reads a fragment back (a peer node's payload, validated as strictly as a client's).

The protocol is documented for client authors in docs/chat-protocol.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, NoReturn

TIMEOUT_MIN_S: Final = 1
TIMEOUT_MAX_S: Final = 1_209_600  # two weeks, Twitch's longest timeout
SLOW_MAX_S: Final = 120
FOLLOWERS_MAX_S: Final = 7_776_000  # three months
USER_MAX_CHARS: Final = 25
REASON_MAX_CHARS: Final = 500
TOKEN_MAX_CHARS: Final = 256
DEFAULT_MAX_TEXT_CHARS: Final = 500


class ClientError(Exception):
    """The client sent something the protocol does not allow; it gets an ``error`` frame, not a crash.

    ``code`` is a stable machine-readable word (see docs/chat-protocol.md); the message names the
    member at fault.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PeerError(Exception):
    """A broker payload from another chat node did not decode: that node (or the broker) is at fault."""


# ---------------------------------------------------------------- client requests


@dataclass(frozen=True, slots=True)
class Auth:
    token: str


@dataclass(frozen=True, slots=True)
class Send:
    text: str


@dataclass(frozen=True, slots=True)
class Ping:
    nonce: int


@dataclass(frozen=True, slots=True)
class DeleteMessage:
    message_id: int


@dataclass(frozen=True, slots=True)
class Timeout:
    user: str
    seconds: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Ban:
    user: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Unban:
    """Lifts a ban or a timeout."""

    user: str


@dataclass(frozen=True, slots=True)
class ClearChat:
    pass


@dataclass(frozen=True, slots=True)
class ModeChange:
    """Only the members that are not None change."""

    slow_s: int | None = None
    followers_only: bool | None = None
    followers_min_s: int | None = None
    subscribers_only: bool | None = None
    emote_only: bool | None = None
    unique: bool | None = None


@dataclass(frozen=True, slots=True)
class AddModerator:
    user: str


@dataclass(frozen=True, slots=True)
class RemoveModerator:
    user: str


ModAction = DeleteMessage | Timeout | Ban | Unban | ClearChat | ModeChange | AddModerator | RemoveModerator
ClientMessage = Auth | Send | Ping | ModAction


# ---------------------------------------------------------------- room events


@dataclass(frozen=True, slots=True)
class EmoteRange:
    """Code-point offsets, ``end`` inclusive, as Twitch's IRC ``emotes`` tag counts them."""

    start: int
    end: int
    name: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    id: int  # 0 until the broker assigns the room's next id
    user: str
    text: str
    sent_at: int  # server epoch milliseconds
    badges: tuple[str, ...] = ()
    emotes: tuple[EmoteRange, ...] = ()


@dataclass(frozen=True, slots=True)
class ModerationEvent:
    id: int
    at: int  # server epoch milliseconds
    by: str
    action: ModAction


@dataclass(frozen=True, slots=True)
class Cheer:
    """Bits cheered in the room: booked by commerce first, then published like a message."""

    id: int
    user: str
    bits: int
    text: str
    sent_at: int  # server epoch milliseconds
    badges: tuple[str, ...] = ()


RoomEvent = ChatMessage | ModerationEvent | Cheer


@dataclass(frozen=True, slots=True)
class Modes:
    slow_s: int = 0
    followers_only: bool = False
    followers_min_s: int = 0
    subscribers_only: bool = False
    emote_only: bool = False
    unique: bool = False

    def changed(self, change: ModeChange) -> Modes:
        return Modes(
            slow_s=self.slow_s if change.slow_s is None else change.slow_s,
            followers_only=self.followers_only if change.followers_only is None else change.followers_only,
            followers_min_s=self.followers_min_s
            if change.followers_min_s is None
            else change.followers_min_s,
            subscribers_only=(
                self.subscribers_only if change.subscribers_only is None else change.subscribers_only
            ),
            emote_only=self.emote_only if change.emote_only is None else change.emote_only,
            unique=self.unique if change.unique is None else change.unique,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "slow": self.slow_s,
            "followers_only": self.followers_only,
            "followers_min": self.followers_min_s,
            "subscribers_only": self.subscribers_only,
            "emote_only": self.emote_only,
            "unique": self.unique,
        }


# ---------------------------------------------------------------- parsing


def _object(raw: str | bytes, max_bytes: int, who: type[Exception]) -> Mapping[str, Any]:
    if len(raw) > max_bytes:
        _fail(who, "too_large", f"frame of {len(raw)} bytes is over the {max_bytes}-byte limit")
    try:
        value: Any = json.loads(raw)
    except (ValueError, RecursionError) as error:
        _fail(who, "bad_json", f"frame is not JSON: {error}")
    if not isinstance(value, dict):
        _fail(who, "bad_json", f"frame must be a JSON object, got {type(value).__name__}")
    obj: dict[str, Any] = value
    return obj


def _fail(who: type[Exception], code: str, message: str) -> NoReturn:
    if who is ClientError:
        raise ClientError(code, message)
    raise PeerError(f"{code}: {message}")


class _Reader:
    """Typed member access that names the member at fault."""

    __slots__ = ("kind", "obj", "who")

    def __init__(self, obj: Mapping[str, Any], kind: str, who: type[Exception]) -> None:
        self.obj, self.kind, self.who = obj, kind, who

    def bad(self, member: str, want: str) -> NoReturn:
        _fail(self.who, "bad_field", f"{self.kind!r}: member {member!r} must be {want}")

    def integer(self, member: str, low: int, high: int, default: int | None = None) -> int:
        value = self.obj.get(member, default)
        if type(value) is not int or not low <= value <= high:
            self.bad(member, f"an integer in [{low}, {high}]")
        return int(value)

    def opt_integer(self, member: str, low: int, high: int) -> int | None:
        return None if self.obj.get(member) is None else self.integer(member, low, high)

    def opt_bool(self, member: str) -> bool | None:
        value = self.obj.get(member)
        if value is not None and type(value) is not bool:
            self.bad(member, "true or false")
        return value

    def string(self, member: str, high: int, low: int = 1, default: str | None = None) -> str:
        value = self.obj.get(member, default)
        if not isinstance(value, str) or not low <= len(value) <= high:
            self.bad(member, f"a string of {low}-{high} characters")
        return str(value)

    def user(self, member: str = "user") -> str:
        value = self.string(member, USER_MAX_CHARS, 3)
        if not all(c.isascii() and (c.isalnum() or c == "_") for c in value):
            self.bad(member, "a user name of letters, digits and _")
        return value


def _normalize_text(text: str) -> str:
    """Collapse surrounding whitespace; refuse control characters that would break other clients' views."""
    text = text.strip()
    for char in text:
        if ord(char) < 32 or 0x7F <= ord(char) < 0xA0 or char in "\u2028\u2029":
            raise ClientError("bad_text", "'send': 'text' must not contain control characters")
    return text


def parse_client_message(
    raw: str | bytes, *, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS, max_bytes: int = 4096
) -> ClientMessage:
    """One client frame to a request; ``ClientError`` for anything malformed or out of bounds."""
    obj = _object(raw, max_bytes, ClientError)
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ClientError("bad_type", "frame needs a string member 'type'")
    r = _Reader(obj, kind, ClientError)
    match kind:
        case "send":
            value = obj.get("text")
            if not isinstance(value, str):
                raise ClientError("bad_field", "'send': member 'text' must be a string")
            text = _normalize_text(value)
            if not text:
                raise ClientError("empty_text", "'send': 'text' is empty")
            if len(text) > max_text_chars:
                raise ClientError("too_long", f"'send': 'text' is over {max_text_chars} characters")
            return Send(text)
        case "auth":
            return Auth(r.string("token", TOKEN_MAX_CHARS))
        case "ping":
            return Ping(r.integer("nonce", 0, 2**53, 0))
        case "delete":
            return DeleteMessage(r.integer("id", 1, 2**63))
        case "timeout":
            return Timeout(
                r.user(),
                r.integer("seconds", TIMEOUT_MIN_S, TIMEOUT_MAX_S),
                r.string("reason", REASON_MAX_CHARS, 0, ""),
            )
        case "ban":
            return Ban(r.user(), r.string("reason", REASON_MAX_CHARS, 0, ""))
        case "unban":
            return Unban(r.user())
        case "clear":
            return ClearChat()
        case "mod":
            return AddModerator(r.user())
        case "unmod":
            return RemoveModerator(r.user())
        case "modes":
            change = ModeChange(
                slow_s=r.opt_integer("slow", 0, SLOW_MAX_S),
                followers_only=r.opt_bool("followers_only"),
                followers_min_s=r.opt_integer("followers_min", 0, FOLLOWERS_MAX_S),
                subscribers_only=r.opt_bool("subscribers_only"),
                emote_only=r.opt_bool("emote_only"),
                unique=r.opt_bool("unique"),
            )
            if change == ModeChange():
                raise ClientError("bad_field", "'modes': names no mode to change")
            return change
        case _:
            raise ClientError("bad_type", f"unknown frame type {kind[:40]!r}")


# ---------------------------------------------------------------- emotes


def emote_ranges(text: str, emotes: frozenset[str]) -> tuple[EmoteRange, ...]:
    """Whitespace-separated words that are emote names, with code-point offsets."""
    ranges: list[EmoteRange] = []
    position = 0
    for word in text.split(" "):
        if word in emotes:
            ranges.append(EmoteRange(position, position + len(word) - 1, word))
        position += len(word) + 1
    return tuple(ranges)


def only_emotes(text: str, emotes: frozenset[str]) -> bool:
    words = text.split()
    return bool(words) and all(word in emotes for word in words)


# ---------------------------------------------------------------- encoding


def _action_json(action: ModAction) -> dict[str, Any]:
    match action:
        case DeleteMessage(message_id):
            return {"action": "delete", "message_id": message_id}
        case Timeout(user, seconds, reason):
            return {"action": "timeout", "user": user, "seconds": seconds, "reason": reason}
        case Ban(user, reason):
            return {"action": "ban", "user": user, "reason": reason}
        case Unban(user):
            return {"action": "unban", "user": user}
        case ClearChat():
            return {"action": "clear"}
        case AddModerator(user):
            return {"action": "mod", "user": user}
        case RemoveModerator(user):
            return {"action": "unmod", "user": user}
        case ModeChange():
            return {
                "action": "modes",
                "change": {
                    k: v
                    for k, v in (
                        ("slow", action.slow_s),
                        ("followers_only", action.followers_only),
                        ("followers_min", action.followers_min_s),
                        ("subscribers_only", action.subscribers_only),
                        ("emote_only", action.emote_only),
                        ("unique", action.unique),
                    )
                    if v is not None
                },
            }
    raise AssertionError(f"unhandled action {action!r}")  # pragma: no cover


def event_json(event: RoomEvent, modes: Modes | None = None) -> dict[str, Any]:
    if isinstance(event, ChatMessage):
        return {
            "type": "message",
            "id": event.id,
            "user": event.user,
            "text": event.text,
            "sent_at": event.sent_at,
            "badges": list(event.badges),
            "emotes": [[e.start, e.end, e.name] for e in event.emotes],
        }
    if isinstance(event, Cheer):
        return {
            "type": "cheer",
            "id": event.id,
            "user": event.user,
            "bits": event.bits,
            "text": event.text,
            "sent_at": event.sent_at,
            "badges": list(event.badges),
        }
    out = {"type": "moderation", "id": event.id, "at": event.at, "by": event.by}
    out.update(_action_json(event.action))
    if modes is not None:
        out["modes"] = modes.as_json()
    return out


def encode_event(event: RoomEvent, modes: Modes | None = None) -> str:
    """Compact JSON, rendered once per event per node and joined into batches without re-encoding."""
    return json.dumps(event_json(event, modes), ensure_ascii=False, separators=(",", ":"))


def encode_frame(kind: str, **members: Any) -> str:
    return json.dumps({"type": kind, **members}, ensure_ascii=False, separators=(",", ":"))


def batch_frame(fragments: Iterable[str]) -> str:
    """``{"type":"messages","messages":[...]}`` from already-encoded message fragments, joined once."""
    return '{"type":"messages","messages":[' + ",".join(fragments) + "]}"


def decode_event(raw: str | bytes, *, max_bytes: int = 65536) -> RoomEvent:
    """A room event from a peer node's payload; ``PeerError`` if it is not one we would have sent."""
    obj = _object(raw, max_bytes, PeerError)
    kind = obj.get("type")
    r = _Reader(obj, str(kind), PeerError)
    if kind == "message":
        badges, emotes = obj.get("badges", []), obj.get("emotes", [])
        if not isinstance(badges, list) or not all(isinstance(b, str) for b in badges):
            r.bad("badges", "a list of strings")
        if not isinstance(emotes, list) or not all(
            isinstance(e, list)
            and len(e) == 3
            and type(e[0]) is int
            and type(e[1]) is int
            and isinstance(e[2], str)
            for e in emotes
        ):
            r.bad("emotes", "a list of [start, end, name]")
        return ChatMessage(
            id=r.integer("id", 0, 2**63),
            user=r.user(),
            text=r.string("text", 65536),
            sent_at=r.integer("sent_at", 0, 2**53),
            badges=tuple(badges),
            emotes=tuple(EmoteRange(s, e, n) for s, e, n in emotes),
        )
    if kind == "cheer":
        badges = obj.get("badges", [])
        if not isinstance(badges, list) or not all(isinstance(b, str) for b in badges):
            r.bad("badges", "a list of strings")
        return Cheer(
            id=r.integer("id", 0, 2**63),
            user=r.user(),
            bits=r.integer("bits", 1, 2**53),
            text=r.string("text", 65536, low=0),
            sent_at=r.integer("sent_at", 0, 2**53),
            badges=tuple(badges),
        )
    if kind == "moderation":
        action_obj = dict(obj)
        action_obj["type"] = obj.get("action")
        if obj.get("action") == "modes":
            change = obj.get("change")
            if not isinstance(change, dict):
                r.bad("change", "an object")
            action_obj = {"type": "modes", **change}
        elif obj.get("action") == "delete":
            action_obj["id"] = obj.get("message_id")
        try:
            action = parse_client_message(json.dumps(action_obj), max_bytes=max_bytes)
        except ClientError as error:
            raise PeerError(f"moderation event: {error.message}") from None
        if isinstance(action, (Auth, Send, Ping)):
            raise PeerError(f"moderation event with non-moderation action {obj.get('action')!r}")
        return ModerationEvent(
            id=r.integer("id", 0, 2**63), at=r.integer("at", 0, 2**53), by=r.user("by"), action=action
        )
    raise PeerError(f"unknown room event type {str(kind)[:40]!r}")


def now_ms(clock_s: float) -> int:
    return math.floor(clock_s * 1000)
