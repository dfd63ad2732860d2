"""Which rendition a WHEP viewer gets, from the bandwidth estimate its browser reports.

The viewer's receiver estimates the bandwidth it can take and reports it in REMB
(draft-alvestrand-rmcat-remb) RTCP feedback. A receive-side estimator never reports much above
what it receives (Chromium caps it near 1.5 x the incoming rate), and we send the ladder's
fixed bitrates without probing, so going up is a step of one rung once the estimate has stayed
well above the current rung for a while, even past the estimate (the only way it learns more),
and going down, straight to the best rung under the estimate, waits for the estimate to fall or
to stay short for a while after such a step. The relay makes the switch at the target
rendition's next IDR, so the viewer's decoder never sees a P-frame of another stream.
Pure: estimates and a clock in, a target out.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AbrPolicy:
    down_headroom: float = 0.85  # leave the rung when it needs more than this share of the estimate
    up_ratio: float = 1.3  # step up once the estimate exceeds the rung by this factor ...
    settle_s: float = 3.0  # ... for this long, and never sooner than this after a switch


@dataclass(frozen=True, slots=True)
class RenditionOption:
    name: str
    bandwidth_bps: int


def start_rendition(options: list[RenditionOption], start_bps: int) -> str:
    """The best rendition under ``start_bps`` (the lowest when none is), before any estimate."""
    ordered = sorted(options, key=lambda o: o.bandwidth_bps)
    fitting = [o for o in ordered if o.bandwidth_bps <= start_bps]
    return (fitting[-1] if fitting else ordered[0]).name


class RenditionChooser:
    """One viewer's rendition choice; ``target`` is where it should be, ``on_estimate`` moves it."""

    def __init__(self, options: list[RenditionOption], start: str, policy: AbrPolicy | None = None,
                 now: float = 0.0) -> None:
        if not options:
            raise ValueError("no renditions to choose from")
        self.policy = policy or AbrPolicy()
        self.options = sorted(options, key=lambda o: o.bandwidth_bps)
        names = [o.name for o in self.options]
        self.target = start if start in names else self.options[0].name
        self._switched_at = now
        self._above_since: float | None = None
        self._last_estimate: float | None = None

    def update_options(self, options: list[RenditionOption]) -> None:
        """The ladder changed (a rung retired): keep the target if it is still there."""
        if not options:
            return
        self.options = sorted(options, key=lambda o: o.bandwidth_bps)
        if self.target not in {o.name for o in self.options}:
            self.target = self.options[0].name

    def _index(self) -> int:
        return next(i for i, o in enumerate(self.options) if o.name == self.target)

    def on_estimate(self, estimate_bps: float, now: float) -> str | None:
        """Take one estimate; the new target name if it changes, else None.

        Down: the rung needs more than ``down_headroom`` of the estimate and the estimate is
        falling (a congestion signal), or has stayed short for two settle periods since the last
        switch (a fresh step up is given that long for the estimate to catch up with it).
        Up: one rung, once the estimate has exceeded the rung by ``up_ratio`` for ``settle_s``.
        """
        policy = self.policy
        index = self._index()
        current = self.options[index]
        falling = self._last_estimate is not None and estimate_bps < self._last_estimate * 0.95
        self._last_estimate = estimate_bps
        if current.bandwidth_bps > estimate_bps * policy.down_headroom and index > 0:
            self._above_since = None
            if falling or now - self._switched_at >= 2 * policy.settle_s:
                fitting = [i for i, o in enumerate(self.options)
                           if o.bandwidth_bps <= estimate_bps * policy.down_headroom]
                return self._switch(fitting[-1] if fitting else 0, now)
            return None
        if index + 1 < len(self.options) and estimate_bps >= current.bandwidth_bps * policy.up_ratio:
            if self._above_since is None:
                self._above_since = now
            if (now - self._above_since >= policy.settle_s
                    and now - self._switched_at >= policy.settle_s):
                return self._switch(index + 1, now)
        else:
            self._above_since = None
        return None

    def _switch(self, index: int, now: float) -> str | None:
        name = self.options[index].name
        self._above_since = None
        if name == self.target:
            return None
        self.target = name
        self._switched_at = now
        return name
