"""The Locust users' settings: one frozen object, read once from the environment at Locust's init.

Locust starts our users in its own process (and `--processes` forks more), so whoever starts
it (`loadgen locust`, `loadgen run`, a test) hands settings over as ``LIVETWIN_*`` environment
variables (README); `to_environ` writes them and `from_environ` reads them back, once, at
Locust's ``init`` event (`loadgen.locustfiles.edge`). Free of Locust so that tests and
`loadgen.realrun` can import it (importing locust monkey-patches the process with gevent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from loadgen.locustfiles.failover import edge_base
from loadgen.schedule import ViewerSchedule

#: The environment variable of each field (`loadgen locust` documents them in the README).
ENVIRONMENT = {
    "master_path": "LIVETWIN_HLS_MASTER",
    "session_s": "LIVETWIN_VIEWER_SESSION_S",
    "chat_channel": "LIVETWIN_CHAT_CHANNEL",
    "chat_port": "LIVETWIN_CHAT_PORT",
    "chat_tokens": "LIVETWIN_CHAT_TOKEN",
    "chat_rate": "LIVETWIN_CHAT_RATE",
    "event_log": "LIVETWIN_EVENT_LOG",
    "schedule": "LIVETWIN_SCHEDULE",
    "t0": "LIVETWIN_T0",
    "channels": "LIVETWIN_CHANNELS",
    "edges": "LIVETWIN_EDGES",
}
DEFAULT_SCHEDULE = ViewerSchedule((1,), (), 0, 1.0, 60.0)


@dataclass(frozen=True, slots=True)
class LocustSettings:
    """What the viewer, chatter and run users need to know.

    `master_path`: the multivariant playlist a plain viewer watches; `session_s`: how long one
    viewer session lasts before the user rejoins. Chat users connect to `chat_channel` on
    `chat_port` (None: the host's port) and, with `chat_tokens` (each user picks one), send
    `chat_rate` messages/s. `event_log`: where player events go as JSON lines ("" for
    nowhere). `loadgen run`'s users follow `schedule` from the wall-clock second `t0` (None:
    when Locust started) over `channels` in rank order. `edges`: CDN edge base URLs a viewer
    spreads over and fails over between (empty: Locust's ``--host`` alone).
    """

    master_path: str = "/hls/demo/master.m3u8"
    session_s: float = 60.0
    chat_channel: str = "demo"
    chat_port: int | None = None
    chat_tokens: tuple[str, ...] = ()
    chat_rate: float = 0.2
    event_log: str = ""
    schedule: ViewerSchedule = DEFAULT_SCHEDULE
    t0: float | None = None
    channels: tuple[str, ...] = ("demo",)
    edges: tuple[str, ...] = ()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> LocustSettings:
        """Read the ``LIVETWIN_*`` variables; an unset or empty one keeps the default."""
        base = cls()

        def get(field: str) -> str:
            return environ.get(ENVIRONMENT[field], "")

        return cls(
            master_path=get("master_path") or base.master_path,
            session_s=float(get("session_s") or base.session_s),
            chat_channel=get("chat_channel") or base.chat_channel,
            chat_port=int(get("chat_port")) if get("chat_port") else None,
            chat_tokens=tuple(t for t in get("chat_tokens").split(",") if t),
            chat_rate=float(get("chat_rate") or base.chat_rate),
            event_log=get("event_log"),
            schedule=ViewerSchedule.from_json(get("schedule")) if get("schedule") else base.schedule,
            t0=float(get("t0")) if get("t0") else None,
            channels=tuple(get("channels").split(",")) if get("channels") else base.channels,
            edges=tuple(edge_base(e) for e in get("edges").split(",") if e.strip()),
        )

    def to_environ(self) -> dict[str, str]:
        """The ``LIVETWIN_*`` variables that make `from_environ` give these settings back."""
        return {
            ENVIRONMENT["master_path"]: self.master_path,
            ENVIRONMENT["session_s"]: repr(self.session_s),
            ENVIRONMENT["chat_channel"]: self.chat_channel,
            ENVIRONMENT["chat_port"]: "" if self.chat_port is None else str(self.chat_port),
            ENVIRONMENT["chat_tokens"]: ",".join(self.chat_tokens),
            ENVIRONMENT["chat_rate"]: repr(self.chat_rate),
            ENVIRONMENT["event_log"]: self.event_log,
            ENVIRONMENT["schedule"]: self.schedule.to_json(),
            ENVIRONMENT["t0"]: "" if self.t0 is None else repr(self.t0),
            ENVIRONMENT["channels"]: ",".join(self.channels),
            ENVIRONMENT["edges"]: ",".join(self.edges),
        }
