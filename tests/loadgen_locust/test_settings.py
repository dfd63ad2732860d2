"""The Locust users' settings survive the hand-over through LIVETWIN_* variables unchanged."""

from __future__ import annotations

import dataclasses

from loadgen.locustfiles.settings import ENVIRONMENT, LocustSettings
from loadgen.schedule import ViewerSchedule


def test_settings_round_trip_through_the_environment() -> None:
    settings = dataclasses.replace(
        LocustSettings(),
        master_path="/hls/ch2/master.m3u8",
        session_s=12.5,
        chat_channel="ch1",
        chat_port=8181,
        chat_tokens=("t1", "t2"),
        chat_rate=0.5,
        event_log="/tmp/events.jsonl",
        schedule=ViewerSchedule((3, 1), (), 2, 5.0, 90.0),
        t0=1_700_000_000.25,
        channels=("ch1", "ch2"),
        edges=("http://127.0.0.1:8001", "https://edge2.example:8443"),
    )
    assert LocustSettings.from_environ(settings.to_environ()) == settings


def test_unset_or_empty_variables_keep_the_defaults() -> None:
    assert LocustSettings.from_environ({}) == LocustSettings()
    assert LocustSettings.from_environ({name: "" for name in ENVIRONMENT.values()}) == LocustSettings()


def test_readme_variables_are_read() -> None:
    settings = LocustSettings.from_environ(
        {"LIVETWIN_VIEWER_SESSION_S": "30", "LIVETWIN_CHAT_TOKEN": "a,b", "LIVETWIN_CHAT_PORT": "9000"}
    )
    assert (settings.session_s, settings.chat_tokens, settings.chat_port) == (30.0, ("a", "b"), 9000)


def test_a_bad_edge_is_refused_when_read() -> None:
    import pytest

    with pytest.raises(ValueError, match="without a path"):
        LocustSettings.from_environ({"LIVETWIN_EDGES": "http://127.0.0.1:8001/hls"})
