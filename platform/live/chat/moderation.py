"""Room moderation as a replicated state machine (Twitch's model: broadcaster, moderators, viewers).

Every chat node applies the same room log in the same id order, so every node holds the same
moderation state without talking to the others: ``authorize`` is checked on the node where the
action is requested (against its replica), and ``apply`` is the deterministic transition every
node runs when the event comes back from the broker. ``check_send`` is the pure verdict on a
chat line; ``observe`` feeds accepted lines back so slow mode and the duplicate and unique limits
see them.

A user's standing is an explicit state machine (``Standing`` and ``_STANDING``): ACTIVE,
TIMED_OUT (until an instant) and BANNED. Memory is bounded: the per-user last-line table and the
room's recent-lines table forget entries older than the longest window that reads them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from typing import Any

from live.chat.protocol import (
    AddModerator,
    Ban,
    ChatMessage,
    ClearChat,
    DeleteMessage,
    ModAction,
    ModeChange,
    ModerationEvent,
    Modes,
    RemoveModerator,
    Timeout,
    Unban,
    only_emotes,
)


class Role(Enum):
    VIEWER = 0
    MODERATOR = 1
    BROADCASTER = 2


class Standing(Enum):
    ACTIVE = "active"
    TIMED_OUT = "timed_out"
    BANNED = "banned"


# (standing, action) -> standing after. A pair absent from the table is refused by ``authorize``
# with a reason (e.g. timing out a banned user, unbanning someone in good standing).
_STANDING: dict[tuple[Standing, str], Standing] = {
    (Standing.ACTIVE, "timeout"): Standing.TIMED_OUT,
    (Standing.TIMED_OUT, "timeout"): Standing.TIMED_OUT,  # replaces the running timeout
    (Standing.ACTIVE, "ban"): Standing.BANNED,
    (Standing.TIMED_OUT, "ban"): Standing.BANNED,
    (Standing.TIMED_OUT, "unban"): Standing.ACTIVE,
    (Standing.BANNED, "unban"): Standing.ACTIVE,
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused: ``code`` is the client-visible word; ``retry_after_s`` if waiting helps."""

    code: str
    message: str
    retry_after_s: float = 0.0


class ModerationRefused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


@dataclass(frozen=True, slots=True)
class Relationship:
    """What the commerce side knows of a viewer: a paid subscription, and since when they follow."""

    subscriber: bool = False
    followed_at_s: float | None = None


@dataclass(frozen=True, slots=True)
class ModerationLimits:
    duplicate_window_s: float = 30.0  # same user, same text: refused within this window (always on)
    unique_window_s: float = 30.0  # unique mode: nobody may repeat a line seen in the room this recently
    unique_capacity: int = 4096  # most distinct recent lines unique mode remembers


def _key(user: str) -> str:
    return user.lower()


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


class ModerationState:
    """One room's moderation replica. Times are server epoch milliseconds (the log's clock)."""

    def __init__(self, limits: ModerationLimits = ModerationLimits()) -> None:
        self.limits = limits
        self.modes = Modes()
        self.moderators: set[str] = set()
        self.banned: set[str] = set()
        self.timeouts: dict[str, int] = {}  # user -> until (ms)
        self.deleted: set[int] = set()
        self.cleared_before = 0  # every message id <= this was cleared
        self._last_line: OrderedDict[str, tuple[int, str]] = OrderedDict()  # user -> (sent_at, folded text)
        self._recent_lines: OrderedDict[str, int] = OrderedDict()  # folded text -> sent_at

    # ---------------------------------------------------------------- queries

    def role(self, user: str | None, is_owner: bool = False) -> Role:
        """The broadcaster is whoever owns the channel's account (the caller knows); mods are listed here."""
        if is_owner:
            return Role.BROADCASTER
        if user is None:
            return Role.VIEWER
        return Role.MODERATOR if _key(user) in self.moderators else Role.VIEWER

    def standing(self, user: str, now_ms: int) -> tuple[Standing, int]:
        """The user's standing and, when timed out, the instant (ms) it ends."""
        key = _key(user)
        if key in self.banned:
            return Standing.BANNED, 0
        until = self.timeouts.get(key)
        if until is not None:
            if until > now_ms:
                return Standing.TIMED_OUT, until
            del self.timeouts[key]
        return Standing.ACTIVE, 0

    @staticmethod
    def badges(role: Role, relationship: Relationship) -> tuple[str, ...]:
        badges = (
            ["broadcaster"] if role is Role.BROADCASTER else ["moderator"] if role is Role.MODERATOR else []
        )
        if relationship.subscriber:
            badges.append("subscriber")
        return tuple(badges)

    # ---------------------------------------------------------------- sending

    def check_send(
        self,
        user: str,
        role: Role,
        text: str,
        now_ms: int,
        relationship: Relationship,
        emotes: frozenset[str],
    ) -> Refusal | None:
        """None if ``user`` may post ``text`` now, else why not. Broadcaster and mods bypass room modes."""
        standing, until = self.standing(user, now_ms)
        if standing is Standing.BANNED:
            return Refusal("banned", "you are banned from this room")
        if standing is Standing.TIMED_OUT:
            return Refusal("timed_out", "you are timed out", (until - now_ms) / 1000)
        key = _key(user)
        folded = _fold(text)
        last = self._last_line.get(key)
        if (
            last is not None
            and last[1] == folded
            and now_ms - last[0] < self.limits.duplicate_window_s * 1000
        ):
            return Refusal(
                "duplicate",
                "identical to your previous message",
                (last[0] + self.limits.duplicate_window_s * 1000 - now_ms) / 1000,
            )
        if role is not Role.VIEWER:
            return None
        modes = self.modes
        if modes.subscribers_only and not relationship.subscriber:
            return Refusal("subscribers_only", "the room is in subscribers-only mode")
        if modes.followers_only and not relationship.subscriber:
            followed = relationship.followed_at_s
            if followed is None:
                return Refusal("followers_only", "the room is in followers-only mode")
            wait_ms = followed * 1000 + modes.followers_min_s * 1000 - now_ms
            if wait_ms > 0:
                return Refusal("followers_only", "you have not followed long enough", wait_ms / 1000)
        if modes.emote_only and not only_emotes(text, emotes):
            return Refusal("emote_only", "the room is in emote-only mode")
        if modes.slow_s and last is not None and now_ms - last[0] < modes.slow_s * 1000:
            return Refusal(
                "slow_mode", "the room is in slow mode", (last[0] + modes.slow_s * 1000 - now_ms) / 1000
            )
        if modes.unique:
            seen = self._recent_lines.get(folded)
            if seen is not None and now_ms - seen < self.limits.unique_window_s * 1000:
                return Refusal("unique", "the room is in unique-chat mode and this line was just posted")
        return None

    def observe(self, message: ChatMessage) -> None:
        """Record a posted line (idempotent: a line seen early on its own node and again from the log)."""
        self._forget(message.sent_at)
        key, folded = _key(message.user), _fold(message.text)
        last = self._last_line.get(key)
        if last is None or last[0] <= message.sent_at:
            self._last_line[key] = (message.sent_at, folded)
            self._last_line.move_to_end(key)
        seen = self._recent_lines.get(folded)
        if seen is None or seen <= message.sent_at:
            self._recent_lines[folded] = message.sent_at
            self._recent_lines.move_to_end(folded)
            while len(self._recent_lines) > self.limits.unique_capacity:
                self._recent_lines.popitem(last=False)

    def _forget(self, now_ms: int) -> None:
        horizon = now_ms - 1000 * max(self.limits.duplicate_window_s, float(self.modes.slow_s), 120.0)
        while self._last_line:
            key, (at, _) = next(iter(self._last_line.items()))
            if at > horizon:
                break
            del self._last_line[key]
        unique_horizon = now_ms - 1000 * self.limits.unique_window_s
        while self._recent_lines:
            text, at = next(iter(self._recent_lines.items()))
            if at > unique_horizon:
                break
            del self._recent_lines[text]

    # ---------------------------------------------------------------- moderation actions

    def authorize(self, role: Role, action: ModAction, target_is_owner: bool, now_ms: int) -> None:
        """Raise ``ModerationRefused`` unless an actor in ``role`` may take ``action`` now (Twitch's rules).

        ``target_is_owner``: the action's target user (if it names one) owns the channel.
        """
        if role is Role.VIEWER:
            raise ModerationRefused(Refusal("forbidden", "only the broadcaster and moderators may moderate"))
        if isinstance(action, (AddModerator, RemoveModerator)):
            if role is not Role.BROADCASTER:
                raise ModerationRefused(
                    Refusal("forbidden", "only the broadcaster may add or remove moderators")
                )
            target = self.role(action.user, target_is_owner)
            if target is Role.BROADCASTER:
                raise ModerationRefused(Refusal("bad_target", "the broadcaster is not a moderator"))
            if isinstance(action, AddModerator) and target is Role.MODERATOR:
                raise ModerationRefused(Refusal("bad_target", f"{action.user} is already a moderator"))
            if isinstance(action, RemoveModerator) and target is not Role.MODERATOR:
                raise ModerationRefused(Refusal("bad_target", f"{action.user} is not a moderator"))
            return
        if isinstance(action, (Timeout, Ban, Unban)):
            target = self.role(action.user, target_is_owner)
            if target is Role.BROADCASTER or (target is Role.MODERATOR and role is not Role.BROADCASTER):
                raise ModerationRefused(
                    Refusal(
                        "bad_target", f"{action.user} is {target.name.lower()} and cannot be moderated by you"
                    )
                )
            kind = {Timeout: "timeout", Ban: "ban", Unban: "unban"}[type(action)]
            standing, _ = self.standing(action.user, now_ms)
            if (standing, kind) not in _STANDING:
                raise ModerationRefused(
                    Refusal("bad_target", f"{action.user} is {standing.value}; cannot {kind}")
                )

    def apply(self, event: ModerationEvent) -> None:
        """The transition every node runs, in log order. Never refuses: the event was authorized upstream."""
        action = event.action
        match action:
            case Timeout(user, seconds, _):
                key = _key(user)
                if key not in self.banned:
                    self.timeouts[key] = event.at + seconds * 1000
            case Ban(user, _):
                key = _key(user)
                self.banned.add(key)
                self.timeouts.pop(key, None)
            case Unban(user):
                key = _key(user)
                self.banned.discard(key)
                self.timeouts.pop(key, None)
            case AddModerator(user):
                self.moderators.add(_key(user))
            case RemoveModerator(user):
                self.moderators.discard(_key(user))
            case ModeChange():
                self.modes = self.modes.changed(action)
            case DeleteMessage(message_id):
                if message_id > self.cleared_before:
                    self.deleted.add(message_id)
            case ClearChat():
                self.cleared_before = event.id
                self.deleted = {i for i in self.deleted if i > event.id}

    def forget_deleted_before(self, oldest_id: int) -> None:
        """Drop delete marks for ids that left the history window (keeps ``deleted`` bounded)."""
        if self.deleted and min(self.deleted) < oldest_id:
            self.deleted = {i for i in self.deleted if i >= oldest_id}

    # ---------------------------------------------------------------- snapshots

    def snapshot(self) -> dict[str, Any]:
        """The durable part (roles, standings, modes, clears) as JSON-able data.

        A node that starts serving a room restores this and replays only the log after it, so a
        ban outlives the history window. Slow-mode and duplicate memory are transient and left out.
        """
        return {
            "moderators": sorted(self.moderators),
            "banned": sorted(self.banned),
            "timeouts": dict(sorted(self.timeouts.items())),
            "modes": self.modes.as_json(),
            "cleared_before": self.cleared_before,
            "deleted": sorted(self.deleted),
        }

    @classmethod
    def restore(cls, data: object, limits: ModerationLimits = ModerationLimits()) -> ModerationState:
        """The inverse of ``snapshot``; ``ValueError`` naming the member at fault for anything else."""
        if not isinstance(data, dict):
            raise ValueError("moderation snapshot must be an object")
        state = cls(limits)

        def names(member: str) -> set[str]:
            value = data.get(member)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"moderation snapshot: {member!r} must be a list of names")
            return {_key(v) for v in value}

        state.moderators, state.banned = names("moderators"), names("banned")
        timeouts, modes = data.get("timeouts"), data.get("modes")
        if not isinstance(timeouts, dict) or not all(
            isinstance(k, str) and type(v) is int for k, v in timeouts.items()
        ):
            raise ValueError("moderation snapshot: 'timeouts' must map names to instants")
        state.timeouts = {_key(k): v for k, v in timeouts.items()}
        cleared, deleted = data.get("cleared_before"), data.get("deleted")
        if (
            type(cleared) is not int
            or not isinstance(deleted, list)
            or not all(type(i) is int for i in deleted)
        ):
            raise ValueError("moderation snapshot: 'cleared_before' and 'deleted' must be ids")
        state.cleared_before, state.deleted = cleared, set(deleted)
        if not isinstance(modes, dict):
            raise ValueError("moderation snapshot: 'modes' must be an object")
        try:
            state.modes = Modes(
                slow_s=int(modes["slow"]),
                followers_only=bool(modes["followers_only"]),
                followers_min_s=int(modes["followers_min"]),
                subscribers_only=bool(modes["subscribers_only"]),
                emote_only=bool(modes["emote_only"]),
                unique=bool(modes["unique"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"moderation snapshot: bad 'modes': {error}") from None
        return state

    def visible(self, message_id: int) -> bool:
        """Whether a message in history should still be shown to a joining client."""
        return message_id > self.cleared_before and message_id not in self.deleted
