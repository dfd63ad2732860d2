"""Locustfile add-on: append every player event (not HTTP requests) to a JSON-lines file.

Locust's CSVs aggregate by name (min/max/average) and miss what fires in the last second of a
run; `loadgen run` needs each event with its wall-clock time to cut its measurement window and
compute percentiles and ratios, and a test asserting the order of ABR switches reads it too.
Path: `LocustSettings.event_log` (``LIVETWIN_EVENT_LOG``; nothing is written without it). Each
Locust process appends its own lines; one write per line keeps them whole.
"""

from __future__ import annotations

import json
import time
from typing import Any

from locust import events
from locust.env import Environment

from loadgen.locustfiles.edge import settings

HTTP_METHODS = ("GET", "POST", "HEAD")


@events.init.add_listener
def _log_player_events(environment: Environment, **_: Any) -> None:
    path = settings(environment).event_log
    if not path:
        return

    def record(
        request_type: str, name: str, response_time: float, context: dict[str, Any] | None = None, **_: Any
    ) -> None:
        if request_type in HTTP_METHODS:
            return
        line = json.dumps(
            {
                "t": time.time(),
                "type": request_type,
                "name": name,
                "value_ms": response_time,
                "context": context or {},
            }
        )
        with open(path, "a", encoding="utf-8") as log:
            log.write(line + "\n")

    environment.events.request.add_listener(record)
