"""The moderation state machine against a plain model, and the room modes' verdicts."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from live.chat.moderation import (
    ModerationRefused,
    ModerationState,
    Relationship,
    Role,
    Standing,
)
from live.chat.protocol import (
    AddModerator,
    Ban,
    ChatMessage,
    ClearChat,
    DeleteMessage,
    ModAction,
    ModeChange,
    ModerationEvent,
    RemoveModerator,
    Timeout,
    Unban,
)
from live.chat.settings import DEFAULT_EMOTES

USERS = ["owner", "mod_a", "mod_b", "viewer_a", "viewer_b"]
OWNER = "owner"


class ModerationMachine(RuleBasedStateMachine):
    """Random actors take random actions at random times; the replica must match the model."""

    def __init__(self) -> None:
        super().__init__()
        self.state = ModerationState()
        self.now = 1_000_000
        self.next_id = 1
        self.model_mods: set[str] = set()
        self.model_bans: set[str] = set()
        self.model_timeouts: dict[str, int] = {}

    def _role(self, user: str) -> Role:
        return (
            Role.BROADCASTER if user == OWNER else Role.MODERATOR if user in self.model_mods else Role.VIEWER
        )

    def _model_standing(self, user: str) -> Standing:
        if user in self.model_bans:
            return Standing.BANNED
        return Standing.TIMED_OUT if self.model_timeouts.get(user, 0) > self.now else Standing.ACTIVE

    def _allowed(self, actor: str, action: ModAction) -> bool:
        role = self._role(actor)
        if role is Role.VIEWER:
            return False
        if isinstance(action, (AddModerator, RemoveModerator)):
            target = self._role(action.user)
            return (
                role is Role.BROADCASTER
                and target is not Role.BROADCASTER
                and (
                    (target is Role.VIEWER)
                    if isinstance(action, AddModerator)
                    else (target is Role.MODERATOR)
                )
            )
        if isinstance(action, (Timeout, Ban, Unban)):
            target = self._role(action.user)
            if target is Role.BROADCASTER or (target is Role.MODERATOR and role is not Role.BROADCASTER):
                return False
            standing = self._model_standing(action.user)
            if isinstance(action, Unban):
                return standing is not Standing.ACTIVE
            if isinstance(action, Timeout):
                return standing is not Standing.BANNED
            return standing is not Standing.BANNED
        return True

    @rule(seconds=st.integers(0, 3000))
    def time_passes(self, seconds: int) -> None:
        self.now += seconds * 1000

    @rule(
        actor=st.sampled_from(USERS),
        subject=st.sampled_from(USERS),
        kind=st.sampled_from(["timeout", "ban", "unban", "mod", "unmod", "slow"]),
        seconds=st.integers(1, 1_209_600),
    )
    def act(self, actor: str, subject: str, kind: str, seconds: int) -> None:
        action: ModAction = {
            "timeout": Timeout(subject, seconds),
            "ban": Ban(subject),
            "unban": Unban(subject),
            "mod": AddModerator(subject),
            "unmod": RemoveModerator(subject),
            "slow": ModeChange(slow_s=seconds % 121),
        }[kind]
        expected = self._allowed(actor, action)
        try:
            self.state.authorize(self._role(actor), action, subject == OWNER, self.now)
        except ModerationRefused as refused:
            assert not expected, f"{actor} refused {action}: {refused.refusal}"
            return
        assert expected, f"{actor} was allowed {action}"
        self.state.apply(ModerationEvent(self.next_id, self.now, actor, action))
        self.next_id += 1
        match action:
            case Timeout(user, secs, _):
                self.model_timeouts[user] = self.now + secs * 1000
            case Ban(user, _):
                self.model_bans.add(user)
                self.model_timeouts.pop(user, None)
            case Unban(user):
                self.model_bans.discard(user)
                self.model_timeouts.pop(user, None)
            case AddModerator(user):
                self.model_mods.add(user)
            case RemoveModerator(user):
                self.model_mods.discard(user)

    @invariant()
    def a_snapshot_restores_the_same_roles_standings_and_modes(self) -> None:
        restored = ModerationState.restore(json.loads(json.dumps(self.state.snapshot())))
        assert restored.modes == self.state.modes
        for user in USERS:
            assert restored.role(user) is self.state.role(user)
            assert restored.standing(user, self.now) == self.state.standing(user, self.now)

    @invariant()
    def standings_and_roles_match_the_model(self) -> None:
        for user in USERS:
            standing, until = self.state.standing(user, self.now)
            assert standing is self._model_standing(user)
            assert self.state.role(user, user == OWNER) is self._role(user)
            refusal = self.state.check_send(
                user, self._role(user), f"hi {self.next_id}", self.now, Relationship(), DEFAULT_EMOTES
            )
            if standing is Standing.BANNED:
                assert refusal is not None and refusal.code == "banned"
            elif standing is Standing.TIMED_OUT:
                assert refusal is not None and refusal.code == "timed_out"
                assert refusal.retry_after_s == (until - self.now) / 1000
            elif self._role(user) is not Role.VIEWER:
                assert refusal is None


TestModerationMachine = ModerationMachine.TestCase
TestModerationMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


@settings(max_examples=100)
@given(gaps=st.lists(st.integers(0, 20_000), min_size=1, max_size=30), slow=st.integers(1, 120))
def test_slow_mode_spaces_a_viewers_accepted_messages_by_at_least_the_interval(
    gaps: list[int], slow: int
) -> None:
    state = ModerationState()
    state.apply(ModerationEvent(1, 0, OWNER, ModeChange(slow_s=slow)))
    now, accepted = 0, []
    for i, gap in enumerate(gaps):
        now += gap
        if state.check_send("viewer", Role.VIEWER, f"line {i}", now, Relationship(), DEFAULT_EMOTES) is None:
            accepted.append(now)
            state.observe(ChatMessage(i + 2, "viewer", f"line {i}", now))
    assert all(b - a >= slow * 1000 for a, b in itertools.pairwise(accepted))
    assert accepted and accepted[0] == gaps[0]


@settings(max_examples=100)
@given(words=st.lists(st.sampled_from(["Kappa", "LUL", "hello", "PogChamp", "x"]), min_size=1, max_size=5))
def test_emote_only_admits_a_viewer_line_exactly_when_every_word_is_an_emote(words: list[str]) -> None:
    state = ModerationState()
    state.apply(ModerationEvent(1, 0, OWNER, ModeChange(emote_only=True)))
    text = " ".join(words)
    refusal = state.check_send("viewer", Role.VIEWER, text, 10, Relationship(), DEFAULT_EMOTES)
    assert (refusal is None) == all(w in DEFAULT_EMOTES for w in words)
    assert state.check_send("mod", Role.MODERATOR, text, 10, Relationship(), DEFAULT_EMOTES) is None


def test_duplicate_line_is_refused_within_the_window_even_for_moderators() -> None:
    state = ModerationState()
    state.observe(ChatMessage(1, "mod", "Same  Thing", 0))
    refusal = state.check_send("mod", Role.MODERATOR, "same thing", 10_000, Relationship(), DEFAULT_EMOTES)
    assert (
        refusal is not None and refusal.code == "duplicate" and refusal.retry_after_s == pytest.approx(20.0)
    )
    assert (
        state.check_send("mod", Role.MODERATOR, "same thing", 30_000, Relationship(), DEFAULT_EMOTES) is None
    )


def test_unique_mode_refuses_a_line_anyone_just_posted() -> None:
    state = ModerationState()
    state.apply(ModerationEvent(1, 0, OWNER, ModeChange(unique=True)))
    state.observe(ChatMessage(2, "alice", "first!", 1000))
    refusal = state.check_send("bob", Role.VIEWER, "FIRST!", 2000, Relationship(), DEFAULT_EMOTES)
    assert refusal is not None and refusal.code == "unique"


def test_followers_only_admits_followers_after_the_minimum_age_and_subscribers_always() -> None:
    state = ModerationState()
    state.apply(ModerationEvent(1, 0, OWNER, ModeChange(followers_only=True, followers_min_s=600)))
    now = 1_000_000_000

    def verdict(rel: Relationship) -> str | None:
        refusal = state.check_send("fan", Role.VIEWER, "hi", now, rel, DEFAULT_EMOTES)
        return None if refusal is None else refusal.code

    assert verdict(Relationship()) == "followers_only"
    assert verdict(Relationship(followed_at_s=now / 1000 - 60)) == "followers_only"
    assert verdict(Relationship(followed_at_s=now / 1000 - 601)) is None
    assert verdict(Relationship(subscriber=True)) is None


def test_clear_chat_and_delete_hide_messages_from_history() -> None:
    state = ModerationState()
    state.apply(ModerationEvent(5, 0, OWNER, DeleteMessage(3)))
    assert not state.visible(3) and state.visible(4)
    state.apply(ModerationEvent(10, 0, OWNER, ClearChat()))
    assert not any(state.visible(i) for i in range(1, 11)) and state.visible(11)


@settings(max_examples=100)
@given(
    data=st.dictionaries(
        st.sampled_from(["moderators", "banned", "timeouts", "modes", "cleared_before", "deleted"]),
        st.none()
        | st.integers()
        | st.lists(st.text(max_size=5) | st.integers(), max_size=3)
        | st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=3), max_size=3),
    )
)
def test_restoring_a_malformed_snapshot_raises_value_error_naming_the_member(data: dict[str, object]) -> None:
    try:
        ModerationState.restore(data)
    except ValueError as error:
        assert "moderation snapshot" in str(error)
