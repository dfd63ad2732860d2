"""Cheers are room events of their own type: encoded once, decoded strictly, replayed on join."""

from __future__ import annotations

import json

import pytest
from live.chat.moderation import Relationship
from live.chat.protocol import ChatMessage, Cheer, PeerError, decode_event, encode_event
from live.chat.rooms import Member, Room
from live.chat.settings import ChatSettings


def test_a_cheer_round_trips_through_the_broker_payload() -> None:
    cheer = Cheer(12, "alice", 500, "great play", 1_795_517_271_000, ("subscriber",))
    text = encode_event(cheer)
    assert json.loads(text) == {"type": "cheer", "id": 12, "user": "alice", "bits": 500, "text": "great play",
                                "sent_at": 1_795_517_271_000, "badges": ["subscriber"]}
    assert decode_event(text) == cheer
    assert decode_event(encode_event(Cheer(1, "bob", 1, "", 0))) == Cheer(1, "bob", 1, "", 0)


@pytest.mark.parametrize("bad", [{"bits": 0}, {"bits": "5"}, {"badges": "x"}, {"user": ""}])
def test_a_malformed_cheer_from_a_peer_is_refused(bad: dict[str, object]) -> None:
    payload = {"type": "cheer", "id": 1, "user": "bob", "bits": 5, "text": "", "sent_at": 0, **bad}
    with pytest.raises(PeerError):
        decode_event(json.dumps(payload))


def test_a_cheer_is_its_own_frame_and_counts_among_the_last_messages_on_join() -> None:
    room: Room[str] = Room("lobby", None, ChatSettings())
    room.load((), None)
    room.receive(ChatMessage(1, "bob", "hi", 0))
    room.receive(Cheer(2, "alice", 100, "gg", 1))
    room.receive(ChatMessage(3, "bob", "wow", 2))
    room.arm_flush()
    room.flush(lambda conn: 0)
    frames = room.replay(Member("conn", None, Relationship(), 0))
    kinds = [json.loads(frame)["type"] for frame in frames]
    assert kinds == ["messages", "cheer", "messages"]
    assert json.loads(frames[1])["bits"] == 100
