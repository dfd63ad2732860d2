"""Locust users and load shape of `loadgen run`: the scenario's viewer schedule, chat and spikes.

Configured by `loadgen.realrun` through the environment: ``LIVETWIN_SCHEDULE`` (a
`ViewerSchedule` as JSON), ``LIVETWIN_T0`` (the wall-clock second every publisher was live,
t = 0 of the scenario) and ``LIVETWIN_CHANNELS`` (channel names in rank order). The shape sets
the total user count every second (viewers of all channels plus the fixed chat users); each
viewer session picks its channel with the current per-channel targets as weights, so a spike
on one channel lands there within a session length. The base classes are imported as modules,
not names, so Locust only runs the classes defined here.
"""

from __future__ import annotations

import os
import random
import time

from locust import LoadTestShape

from loadgen.locustfiles import chatter, llhls_viewer
from loadgen.schedule import ViewerSchedule, pick_channel

SCHEDULE = ViewerSchedule.from_json(
    os.environ.get("LIVETWIN_SCHEDULE") or ViewerSchedule((1,), (), 0, 1.0, 60.0).to_json()
)
T0 = float(os.environ.get("LIVETWIN_T0") or time.time())
CHANNELS = (os.environ.get("LIVETWIN_CHANNELS") or "demo").split(",")


class RunViewer(llhls_viewer.LlHlsViewer):
    def master_path(self) -> str:
        index = pick_channel(SCHEDULE.targets(time.time() - T0), random.random())
        return f"/hls/{CHANNELS[min(index, len(CHANNELS) - 1)]}/master.m3u8"


if SCHEDULE.chatters > 0:  # Locust reads fixed_count 0 as "not fixed": define the class only when used

    class RunChatter(chatter.Chatter):
        fixed_count = SCHEDULE.chatters


class RunShape(LoadTestShape):
    """Total users each tick: the schedule's viewers at this second plus the chat users."""

    def tick(self) -> tuple[int, float] | None:
        t = time.time() - T0
        if t >= SCHEDULE.end_s:
            return None
        return SCHEDULE.viewers(t) + SCHEDULE.chatters, SCHEDULE.spawn_rate
