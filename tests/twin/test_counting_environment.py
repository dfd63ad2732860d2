"""The twin's event count (SimPy's id counter less the queue) equals a count taken in `step`."""

from __future__ import annotations

import simpy

from twin.model.twin import CountingEnvironment


class SteppedEnvironment(CountingEnvironment):
    """Counts each processed event in `step`, the way the twin used to."""

    def __init__(self) -> None:
        super().__init__()
        self.stepped = 0

    def step(self) -> None:
        if self.peek() != simpy.core.Infinity:  # run() without `until` ends on a step with nothing left
            self.stepped += 1
        super().step()


def _model(env: simpy.Environment) -> None:
    """Timeouts, a resource queue and processes waiting on processes: every kind of event the twin makes."""
    pool = simpy.Resource(env, capacity=2)

    def user(i: int) -> simpy.events.ProcessGenerator:
        with pool.request() as req:
            yield req
            yield env.timeout(0.5 + i * 0.1)

    def parent() -> simpy.events.ProcessGenerator:
        children = [env.process(user(i)) for i in range(7)]
        yield env.all_of(children)
        yield env.timeout(1.0)

    for _ in range(3):
        env.process(parent())


def test_processed_counts_every_event_the_environment_stepped_through() -> None:
    for until in (0.7, 2.0, None):
        env = SteppedEnvironment()
        _model(env)
        env.run(until=until)
        assert env.stepped > 0
        assert env.processed == env.stepped
        assert env.processed == env.stepped  # reading the count does not change it
