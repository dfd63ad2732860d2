"""A chaos run's timeline: fault start and end, viewer stalls, chat gaps, each at seconds from t0.

Every chaos test writes one (JSON, plus a few readable lines) to `reports/chaos/`, which CI
keeps as an artifact; docs/chaos.md says how to read it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "reports" / "chaos"


@dataclass(slots=True)
class Timeline:
    """Events of one chaos run, in the order they were noted (thread-safe)."""

    name: str
    t0: float = field(default_factory=time.monotonic)
    events: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 3)

    def note(self, what: str, **detail: Any) -> float:
        """Record ``what`` happening now; answers its time (seconds from t0)."""
        at = self.now()
        with self._lock:
            self.events.append({"t_s": at, "event": what, **detail})
        return at

    def result(self, **values: Any) -> None:
        """Record measured outcomes (recovery times, losses) for the summary."""
        with self._lock:
            self.results.update(values)

    def write(self, directory: Path = DEFAULT_DIR) -> Path:
        """Write ``NAME.json`` and ``NAME.txt`` under ``directory``; answers the JSON path."""
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            events = sorted(self.events, key=lambda e: float(e["t_s"]))
            results = dict(self.results)
        doc: dict[str, Any] = {"name": self.name, "events": events, "results": results}
        path = directory / f"{self.name}.json"
        path.write_text(json.dumps(doc, indent=1, default=str) + "\n", encoding="utf-8")
        lines = [f"{e['t_s']:8.3f}s  {e['event']}  " + " ".join(
            f"{k}={v}" for k, v in e.items() if k not in ("t_s", "event")) for e in events]
        lines += [f"result {k}: {v}" for k, v in results.items()]
        (directory / f"{self.name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path
