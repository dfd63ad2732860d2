"""Chat's one typed settings object, built at the edge (CLI, file) and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from live.chat.moderation import ModerationLimits

DEFAULT_EMOTES = frozenset(
    {
        "Kappa",
        "PogChamp",
        "LUL",
        "Kreygasm",
        "BibleThump",
        "ResidentSleeper",
        "SeemsGood",
        "NotLikeThis",
        "VoHiYo",
        "HeyGuys",
        "CoolCat",
        "FailFish",
        "BabyRage",
        "4Head",
        "DansGame",
    }
)


class SlowClientPolicy(Enum):
    DISCONNECT = "disconnect"  # close 1008 with a reason; the client reconnects and resumes from its last id
    SKIP = (
        "skip"  # drop batches for it while its queue is full; it then gets a "skipped" frame naming the ids
    )


@dataclass(frozen=True, slots=True)
class ChatSettings:
    batch_interval_s: float = 0.075  # per-room batching window (issue 7: ~50-100 ms)
    join_history: int = 100  # events replayed to a client joining without ?after=
    history_window: int = 1000  # events kept per room for resume (and retained in JetStream)
    rate_limit: int = 20  # messages per rate_window_s for viewers
    rate_limit_privileged: int = 100  # for moderators and the broadcaster
    rate_window_s: float = 30.0
    max_text_chars: int = 500
    max_frame_bytes: int = 4096  # largest client frame; websockets closes 1009 above it
    send_queue_bytes: int = 256 * 1024  # per-client bytes waiting in the kernel/transport before it is slow
    socket_send_buffer: int | None = None  # SO_SNDBUF per client socket; None leaves the kernel's autotuning
    slow_client: SlowClientPolicy = SlowClientPolicy.DISCONNECT
    compression: bool = False  # permessage-deflate costs ~64 KiB zlib state per connection
    ping_interval_s: float | None = 20.0
    ping_timeout_s: float | None = 20.0
    max_connections_per_address: int = 100  # IPv4 address or IPv6 /64; more are refused (503) at accept
    frame_rate_per_s: float = 10.0  # client frames per connection, every kind (pings, auth, moderation)
    frame_burst: int = 30  # ... of which this many at once; a client refused this many in a row is closed
    failed_sign_in_limit: int = 20  # unknown tokens from one address within failed_sign_in_window_s ...
    failed_sign_in_window_s: float = 60.0  # ... (each unknown token is also answered from memory that long)
    failed_sign_in_ban_s: float = 60.0  # ... and its tokens are not looked up for this long
    moderation: ModerationLimits = field(default_factory=ModerationLimits)
    emotes: frozenset[str] = DEFAULT_EMOTES

    def __post_init__(self) -> None:
        if not 0.001 <= self.batch_interval_s <= 1.0:
            raise ValueError("batch_interval_s must be within [0.001, 1.0]")
        if not 1 <= self.join_history <= self.history_window:
            raise ValueError("join_history must be within [1, history_window]")
        if not 1 <= self.rate_limit <= self.rate_limit_privileged:
            raise ValueError("rate_limit must be within [1, rate_limit_privileged]")
        if self.max_text_chars < 1 or self.max_frame_bytes < 64 or self.send_queue_bytes < 1024:
            raise ValueError("max_text_chars, max_frame_bytes and send_queue_bytes are too small")
        if self.max_connections_per_address < 1 or self.frame_rate_per_s <= 0 or self.frame_burst < 1:
            raise ValueError("max_connections_per_address, frame_rate_per_s and frame_burst must be positive")
        sign_ins = (self.failed_sign_in_limit, self.failed_sign_in_window_s, self.failed_sign_in_ban_s)
        if sign_ins[0] < 1 or sign_ins[1] <= 0 or sign_ins[2] < 0:
            raise ValueError("failed_sign_in_limit and failed_sign_in_window_s must be positive")
