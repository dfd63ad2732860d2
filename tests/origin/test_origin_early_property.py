"""Early answers under any interleaving of holds, progress, timeouts, endings and shutdown.

What the HTTP layer relies on (``live.origin.app``): an early answer runs at most once, only
for a holder that is still waiting when it runs (never after the handler answered by itself,
say with a 503 on timeout), and only for a position the progress really reached; and every
holder is eventually woken.
"""

from __future__ import annotations

import asyncio

from hypothesis import example, given, settings
from hypothesis import strategies as st
from live.origin.blocking import Blocker, PartTarget, Progress, WaitOutcome

Op = tuple[str, int]

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("hold"), st.integers(0, 2)),  # wait for a part this far past the last
        st.tuples(st.just("short"), st.integers(0, 2)),  # the same with a tiny timeout
        st.tuples(st.just("advance"), st.integers(1, 3)),  # publish this many parts
        st.tuples(st.just("yield"), st.integers(1, 3)),  # let the loop run this many times
        st.tuples(st.just("sleep"), st.just(0)),  # long enough for the tiny timeouts to pass
        st.tuples(st.just("end"), st.just(0)),
        st.tuples(st.just("shutdown"), st.just(0)),
    ),
    max_size=30,
)


async def scenario(ops: list[Op]) -> None:
    blocker = Blocker(1000)
    state: dict[str, object] = {"progress": Progress(0, 0, False), "ended": False}
    log: list[tuple[str, int]] = []  # ("early" | "returned", holder), in the order they happened
    targets: dict[int, int] = {}
    progress_at_early: dict[int, Progress] = {}

    def probe() -> tuple[bool, Progress | None]:
        return bool(state["ended"]), state["progress"]  # type: ignore[return-value]

    async def holder(n: int, part: int, timeout_s: float) -> WaitOutcome:
        def early() -> None:
            log.append(("early", n))
            progress_at_early[n] = state["progress"]  # type: ignore[assignment]
        try:
            return await blocker.wait("c", "r", PartTarget(0, part), probe, timeout_s, early)
        finally:
            log.append(("returned", n))

    tasks: list[asyncio.Task[WaitOutcome]] = []
    for kind, value in ops:
        if kind in ("hold", "short"):
            last = state["progress"]
            assert isinstance(last, Progress)
            part = last.part + 1 + value
            targets[len(tasks)] = part
            tasks.append(asyncio.ensure_future(holder(len(tasks), part, 30 if kind == "hold" else 0.001)))
        elif kind == "advance" and not state["ended"]:
            last = state["progress"]
            assert isinstance(last, Progress)
            state["progress"] = Progress(0, last.part + value, False)
            blocker.notify("c", "r", state["progress"], False)  # type: ignore[arg-type]
        elif kind == "yield":
            for _ in range(value):
                await asyncio.sleep(0)
        elif kind == "sleep":
            await asyncio.sleep(0.002)
        elif kind == "end":
            state["ended"] = True
            blocker.notify("c", None, None, True)
        elif kind == "shutdown":
            blocker.drain_all()
        await asyncio.sleep(0)  # the loop turns between any two things that happen to it
    for _ in range(3):
        await asyncio.sleep(0)
    blocker.drain_all()  # every holder must wake now
    await asyncio.wait_for(asyncio.gather(*tasks), 5)

    early = [n for kind, n in log if kind == "early"]
    assert len(early) == len(set(early))  # at most once each
    for n in early:
        assert log.index(("early", n)) < log.index(("returned", n))  # while still holding
        assert PartTarget(0, targets[n]).ready(progress_at_early[n])  # its part really exists
    assert sorted(n for kind, n in log if kind == "returned") == list(range(len(tasks)))


@settings(max_examples=300, deadline=None)
@given(OPS)
@example([("short", 0), ("sleep", 0), ("advance", 1)])  # timed out, then its part arrives
@example([("hold", 0), ("advance", 1), ("shutdown", 0)])  # released, then shut down at once
def test_early_answers_run_once_only_for_holders_still_waiting(ops: list[Op]) -> None:
    asyncio.run(scenario(ops))
