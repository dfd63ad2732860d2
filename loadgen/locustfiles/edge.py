"""Locust's side of the settings hand-over: `LocustSettings` read once, at Locust's init event.

Every locustfile of ours imports this module, so the listener is registered once per Locust
process; users reach the settings through their environment (`settings(self.environment)`)
instead of reading variables at import.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from locust import events
from locust.env import Environment

from loadgen.locustfiles.settings import LocustSettings

_ATTRIBUTE = "livetwin_settings"


def _read() -> LocustSettings:
    found = LocustSettings.from_environ(os.environ)
    if found.t0 is None:  # t = 0 of the schedule: when this Locust process started
        found = dataclasses.replace(found, t0=time.time())
    return found


@events.init.add_listener
def _read_settings(environment: Environment, **_: Any) -> None:
    setattr(environment, _ATTRIBUTE, _read())


def settings(environment: Environment) -> LocustSettings:
    """The settings read at init (read now for an environment that never fired it, e.g. in tests)."""
    found = getattr(environment, _ATTRIBUTE, None)
    if not isinstance(found, LocustSettings):
        found = _read()
        setattr(environment, _ATTRIBUTE, found)
    return found
