"""Locust users and load shape of `loadgen run`: the scenario's viewer schedule, chat and spikes.

Configured by `loadgen.realrun` through `LocustSettings` (handed over as ``LIVETWIN_*``
variables, read once at Locust's init): the `ViewerSchedule`, t0 (the wall-clock second every
publisher was live, t = 0 of the scenario) and the channel names in rank order. The shape sets
the total user count every second (viewers of all channels plus the fixed chat users) and
names the user classes to run, so chat users exist only when the schedule has some; each
viewer session picks its channel with the current per-channel targets as weights, so a spike
on one channel lands there within a session length. The base classes are imported as modules,
not names, so Locust only runs the classes defined here.
"""

from __future__ import annotations

import random
import time
from typing import Any

from locust import LoadTestShape, User, events
from locust.env import Environment

from loadgen.locustfiles import chatter, llhls_viewer
from loadgen.locustfiles.edge import settings
from loadgen.schedule import pick_channel


class RunViewer(llhls_viewer.LlHlsViewer):
    def master_path(self) -> str:
        run = self.settings
        assert run.t0 is not None  # edge.settings fills it in
        index = pick_channel(run.schedule.targets(time.time() - run.t0), random.random())
        return f"/hls/{run.channels[min(index, len(run.channels) - 1)]}/master.m3u8"


class RunChatter(chatter.Chatter):
    """A chat user; the schedule fixes how many (`fixed_count`, set at init)."""


@events.init.add_listener
def _fix_chatters(environment: Environment, **_: Any) -> None:
    RunChatter.fixed_count = settings(environment).schedule.chatters


class RunShape(LoadTestShape):
    """Total users each tick: the schedule's viewers at this second plus the chat users."""

    def tick(self) -> tuple[int, float, list[type[User]]] | None:
        assert self.runner is not None  # Locust attaches the shape to its runner before ticking
        run = settings(self.runner.environment)
        assert run.t0 is not None
        t = time.time() - run.t0
        schedule = run.schedule
        if t >= schedule.end_s:
            return None
        users: list[type[User]] = [RunViewer, RunChatter] if schedule.chatters > 0 else [RunViewer]
        return schedule.viewers(t) + schedule.chatters, schedule.spawn_rate, users
