"""The session table: states move only as the table allows, and the limits answer 429/503."""

from __future__ import annotations

import pytest
from live.api.ratelimit import Rate
from live.webrtc.sessions import Refused, SessionKind, SessionState, SessionTable, WebRtcLimits


def table(**limits: object) -> SessionTable:
    return SessionTable(WebRtcLimits(**limits))  # type: ignore[arg-type]


def test_a_session_moves_connecting_connected_closed_and_then_is_gone() -> None:
    sessions = table()
    record = sessions.admit(SessionKind.WHEP, "demo", "10.0.0.1", now=0.0)
    assert record.state is SessionState.CONNECTING and sessions.get(record.id) is record
    assert sessions.move(record.id, SessionState.CONNECTED) is record
    assert record.state is SessionState.CONNECTED
    sessions.move(record.id, SessionState.CLOSED)
    assert sessions.get(record.id) is None and len(sessions) == 0
    assert sessions.move(record.id, SessionState.CONNECTED) is None


def test_a_connected_session_cannot_go_back_to_connecting() -> None:
    sessions = table()
    record = sessions.admit(SessionKind.WHIP, "demo", "10.0.0.1", now=0.0)
    sessions.move(record.id, SessionState.CONNECTED)
    sessions.move(record.id, SessionState.CONNECTING)
    assert record.state is SessionState.CONNECTED


def test_only_sessions_still_connecting_past_the_ice_timeout_are_overdue() -> None:
    sessions = table(ice_timeout_s=10.0)
    stuck = sessions.admit(SessionKind.WHEP, "demo", "10.0.0.1", now=0.0)
    fine = sessions.admit(SessionKind.WHEP, "demo", "10.0.0.2", now=0.0)
    late = sessions.admit(SessionKind.WHEP, "demo", "10.0.0.3", now=5.0)
    sessions.move(fine.id, SessionState.CONNECTED)
    assert sessions.overdue(9.9) == []
    assert sessions.overdue(10.0) == [stuck]
    assert {r.id for r in sessions.overdue(15.0)} == {stuck.id, late.id}


def test_past_max_viewers_a_viewer_gets_503_with_retry_after_but_a_publisher_does_not() -> None:
    sessions = table(max_viewers=2)
    for n in range(2):
        sessions.admit(SessionKind.WHEP, "demo", f"10.0.0.{n}", now=0.0)
    with pytest.raises(Refused) as caught:
        sessions.admit(SessionKind.WHEP, "demo", "10.0.0.9", now=0.0)
    assert caught.value.status == 503 and caught.value.retry_after_s
    sessions.admit(SessionKind.WHIP, "other", "10.0.0.9", now=0.0)
    assert sessions.count(SessionKind.WHEP) == 2 and sessions.refused["viewers"] == 1


def test_one_client_flooding_posts_gets_429_and_others_are_unaffected() -> None:
    sessions = table(per_client=Rate(capacity=3, per_second=1.0))
    for _ in range(3):
        sessions.admit(SessionKind.WHEP, "demo", "10.0.0.1", now=0.0)
    with pytest.raises(Refused) as caught:
        sessions.admit(SessionKind.WHEP, "demo", "10.0.0.1", now=0.0)
    assert caught.value.status == 429 and caught.value.retry_after_s == pytest.approx(1.0)
    sessions.admit(SessionKind.WHEP, "demo", "10.0.0.2", now=0.0)
    sessions.admit(SessionKind.WHEP, "demo", "10.0.0.1", now=1.0)


def test_the_table_never_holds_more_than_max_sessions() -> None:
    sessions = table(max_sessions=3)
    for n in range(3):
        sessions.admit(SessionKind.WHIP, f"c{n}", f"10.0.0.{n}", now=0.0)
    with pytest.raises(Refused) as caught:
        sessions.admit(SessionKind.WHIP, "c9", "10.0.0.9", now=0.0)
    assert caught.value.status == 503


def test_unusable_limits_are_refused_at_construction() -> None:
    with pytest.raises(ValueError):
        WebRtcLimits(ice_timeout_s=0)
