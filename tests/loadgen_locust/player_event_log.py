"""Locustfile add-on for tests: append every player event (not HTTP requests) to a JSON-lines file.

Locust's CSVs aggregate by name and miss what fires in the last second of a run; a test that
asserts the order and timing of ABR switches reads this log instead. Path: LIVETWIN_EVENT_LOG.
"""

from __future__ import annotations

import json
import os
from typing import Any

from locust import events

_PATH = os.environ.get("LIVETWIN_EVENT_LOG")


@events.request.add_listener
def _record(
    request_type: str, name: str, response_time: float, context: dict[str, Any] | None = None, **_: Any
) -> None:
    if _PATH and request_type not in ("GET", "POST", "HEAD"):
        with open(_PATH, "a", encoding="utf-8") as log:
            log.write(
                json.dumps(
                    {"type": request_type, "name": name, "value_ms": response_time, "context": context or {}}
                )
                + "\n"
            )
