"""The room core without sockets: feed broker events, joins and buffer sizes; assert what it sends."""

from __future__ import annotations

import json
from typing import Any

from live.chat.auth import ChatUser
from live.chat.broker import Snapshot
from live.chat.moderation import Relationship
from live.chat.protocol import Ban, ChatMessage, DeleteMessage, ModerationEvent, RoomEvent
from live.chat.rooms import Delivery, Member, Room
from live.chat.settings import ChatSettings, SlowClientPolicy

LIMIT = 4096


def room(**settings: Any) -> Room[str]:
    r: Room[str] = Room("lobby", 1, ChatSettings(send_queue_bytes=LIMIT, **settings))
    r.load((), None)
    return r


def message(event_id: int, text: str = "") -> ChatMessage:
    return ChatMessage(event_id, "alice", text or f"m{event_id}", 1_700_000_000_000 + event_id)


def member(conn: str, after: int = 0) -> Member[str]:
    return Member(conn, None, Relationship(), after)


def decoded(frames: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    return [json.loads(frame) for frame in frames]


def ids(frames: tuple[str, ...] | list[str]) -> list[int]:
    out: list[int] = []
    for frame in decoded(frames):
        if frame["type"] == "messages":
            out.extend(m["id"] for m in frame["messages"])
        else:
            out.append(frame["id"])
    return out


def flush(r: Room[str], waiting: dict[str, int | None] | None = None) -> Delivery[str]:
    delivery = r.flush(lambda conn: (waiting or {}).get(conn, 0))
    assert delivery is not None
    return delivery


def feed(r: Room[str], *events: RoomEvent) -> list[Snapshot | None]:
    return [r.receive(event) for event in events]


def test_messages_between_flushes_go_to_every_member_as_one_batch_frame() -> None:
    r = room()
    for conn in ("a", "b", "c"):
        assert r.attach(member(conn)) == []
    feed(r, message(1))
    assert r.arm_flush()
    feed(r, message(2), message(3))
    assert not r.arm_flush()  # one timer per batch
    delivery = flush(r)
    assert len(delivery.frames) == 1 and ids(delivery.frames) == [1, 2, 3]
    assert sorted(delivery.to) == ["a", "b", "c"] and delivery.messages == 3
    assert r.flushed_id == 3 and r.flush(lambda conn: 0) is None  # nothing pending: nothing to send
    feed(r, message(4))
    assert r.arm_flush()  # the next batch arms again


def test_a_moderation_event_is_its_own_frame_in_order_and_asks_for_a_snapshot() -> None:
    r = room()
    r.attach(member("a"))
    ban = ModerationEvent(2, 1_700_000_000_002, "owner", Ban("troll"))
    snapshots = feed(r, message(1), ban, message(3))
    assert snapshots[0] is None and snapshots[2] is None
    saved = snapshots[1]
    assert saved is not None and saved.as_of == 2 and "troll" in saved.payload.decode()
    delivery = flush(r)
    assert [f["type"] for f in decoded(delivery.frames)] == ["messages", "moderation", "messages"]
    assert ids(delivery.frames) == [1, 2, 3]


def test_events_before_load_wait_for_the_backlog_and_duplicates_are_dropped() -> None:
    r: Room[str] = Room("lobby", None, ChatSettings())
    feed(r, message(3), message(4))  # live delivery raced ahead of the backlog
    r.load((message(1), message(2), message(3)), None)
    assert r.last_id == r.flushed_id == 4 and [e.id for e, _ in r.ring] == [1, 2, 3, 4]
    feed(r, message(4), message(2))
    assert r.pending == [] and not r.arm_flush()


def test_join_replays_the_last_visible_messages_and_resume_replays_everything_after_its_id() -> None:
    r = room(join_history=2, history_window=10)
    feed(r, message(1), message(2), message(3), ModerationEvent(4, 0, "owner", DeleteMessage(3)), message(5))
    flush(r)
    assert ids(r.attach(member("joiner"))) == [2, 5]  # deleted 3 left out, moderation too
    assert ids(r.attach(member("resumer", after=2))) == [3, 4, 5]


def test_a_resume_ahead_of_the_log_waits_and_is_replayed_once_the_log_catches_up() -> None:
    r = room()
    r.attach(member("a"))
    feed(r, message(1))
    flush(r)
    late = member("late", after=2)  # saw id 2 on another node before this one got it
    assert r.attach(late) == [] and late in r.waiting
    feed(r, message(2), message(3))
    delivery = flush(r)
    assert delivery.to == ("a",)
    assert [(conn, ids(frames)) for conn, frames in delivery.replays] == [("late", [3])]
    assert late in r.members and r.waiting == []


def test_disconnect_policy_puts_a_slow_client_out_and_the_others_keep_receiving() -> None:
    r = room(slow_client=SlowClientPolicy.DISCONNECT)
    r.attach(member("fast"))
    r.attach(slow := member("slow"))
    feed(r, message(1))
    delivery = flush(r, {"slow": LIMIT + 1, "fast": LIMIT})
    assert delivery.to == ("fast",) and delivery.too_slow == ("slow",) and slow not in r.members


def test_skip_policy_tells_a_slow_client_which_ids_it_missed_once_it_drains() -> None:
    r = room(slow_client=SlowClientPolicy.SKIP)
    r.attach(member("fast"))
    r.attach(member("slow"))
    feed(r, message(1), message(2))
    first = flush(r, {"slow": LIMIT + 1})
    assert first.to == ("fast",) and first.newly_skipped == 1 and first.too_slow == ()
    feed(r, message(3))
    assert flush(r, {"slow": LIMIT + 1}).newly_skipped == 0  # still behind: counted once
    feed(r, message(4))
    drained = flush(r, {"slow": 0})
    assert decoded([notice for conn, notice in drained.notices if conn == "slow"]) == [
        {"type": "skipped", "from": 1, "to": 3}
    ]
    assert sorted(drained.to) == ["fast", "slow"] and ids(drained.frames) == [4]


def test_a_closing_connection_gets_nothing_and_stays_until_it_leaves() -> None:
    r = room()
    r.attach(closing := member("closing"))
    feed(r, message(1))
    delivery = r.flush(lambda conn: None)
    assert delivery is not None and delivery.to == () and delivery.too_slow == ()
    assert closing in r.members
    r.detach(closing)
    assert not r.members


def test_welcome_names_the_role_and_reports_a_resume_older_than_the_window() -> None:
    r = room(join_history=2, history_window=3)
    feed(r, *(message(i) for i in range(1, 7)))
    flush(r)
    owner = Member("o", ChatUser(1, "Owner"), Relationship(), after=1)
    welcome = json.loads(r.welcome(owner))
    assert welcome["role"] == "broadcaster" and welcome["last_id"] == 6 and welcome["truncated"]
    assert not json.loads(r.welcome(member("v", after=4)))["truncated"]
    assert json.loads(r.welcome(member("anon")))["user"] is None
