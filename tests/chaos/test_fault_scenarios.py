"""Chaos cases written as YAML: the `faults:` format of a scenario's `real:` section (issue 23).

The reader checks tier faults with file:line errors like every other field; `loadgen run`
refuses what it cannot perform; and a chat node cut off from NATS by a YAML-written sequence
of link faults (latency, 5 % and 20 % loss, a 10 s partition, a bandwidth cap) still delivers
every acknowledged message to every reader, once and in order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

import pytest

from loadgen.faults.netns import NetnsLink
from loadgen.faults.plan import FaultPlan, PlanError, Targets
from loadgen.faults.services import ChildService, PrivateNats, free_port, wait_port
from loadgen.faults.timeline import Timeline
from loadgen.realrun.launch import RealRunError
from loadgen.realrun.tiers import check_tier_faults
from twin.scenario.nodes import ScenarioError
from twin.scenario.reader import parse_scenario
from twin.scenario.schema import RealFaultKind, RealSpec

from .harness import PYTHON, ROOT, child_env
from .test_chat_chaos import ROOM, SENDERS, Member, _talk

BASELINE = (ROOT / "scenarios" / "baseline.yaml").read_text(encoding="utf-8").split("\nreal:")[0] + "\n"
REAL = """real:
  duration_s: 60
  warmup_s: 5
  viewers: 0
  faults:
{faults}
"""

CHAT_LINK_FAULTS = """\
    - {kind: latency, at_s: 1, duration_s: 3, between: [chat-1, nats], delay_ms: 80, jitter_ms: 20}
    - {kind: loss, at_s: 5, duration_s: 3, between: [chat-1, nats], loss_pct: 5}
    - {kind: loss, at_s: 9, duration_s: 3, between: [chat-1, nats], loss_pct: 20}
    - {kind: partition, at_s: 13, duration_s: 10, between: [chat-1, nats]}
    - {kind: bandwidth, at_s: 24, duration_s: 3, between: [chat-1, nats], rate_kbit: 256}
    - {kind: hang, at_s: 28, duration_s: 2, target: nats}
"""


def _faults(text: str) -> RealSpec:
    spec = parse_scenario(BASELINE + REAL.format(faults=text), "chaos.yaml").real
    assert spec is not None
    return spec


def test_tier_faults_read_from_yaml() -> None:
    spec = _faults(CHAT_LINK_FAULTS)
    kinds = [f.kind for f in spec.faults]
    assert kinds == [RealFaultKind.LATENCY, RealFaultKind.LOSS, RealFaultKind.LOSS, RealFaultKind.PARTITION,
                     RealFaultKind.BANDWIDTH, RealFaultKind.HANG]
    assert spec.faults[0].between == ("chat-1", "nats") and spec.faults[0].jitter_ms == 20
    assert spec.faults[2].loss_pct == 20 and spec.faults[4].rate_kbit == 256
    assert spec.faults[5].target == "nats" and spec.faults[5].duration_s == 2


@pytest.mark.parametrize(("fault", "field", "says"), [
    ("{kind: kill, at_s: 1, duration_s: 2, target: moon}", "target", "expected a tier"),
    ("{kind: partition, at_s: 1, duration_s: 2, between: [origin]}", "between", "two tiers"),
    ("{kind: partition, at_s: 1, duration_s: 2, between: [nats, nats]}", "between", "two different"),
    ("{kind: loss, at_s: 1, duration_s: 2, between: [origin, edge-1]}", "loss_pct", ""),
    ("{kind: hang, at_s: 1, duration_s: 500, target: origin}", "duration_s", ""),
    ("{kind: latency, at_s: 1, duration_s: 2, between: [a, b], delay_ms: 5}", "between[0]", "a tier"),
])
def test_a_wrong_tier_fault_is_an_error_at_its_line(fault: str, field: str, says: str) -> None:
    with pytest.raises(ScenarioError) as info:
        _faults(f"    - {fault}\n")
    assert f"faults[0].{field}" in str(info.value) and says in str(info.value)


def test_loadgen_run_refuses_tier_faults_it_cannot_perform() -> None:
    check_tier_faults(_faults("    - {kind: hang, at_s: 10, duration_s: 3, target: origin}\n"))
    for fault in ("{kind: kill, at_s: 10, duration_s: 3, target: origin}",
                  "{kind: partition, at_s: 10, duration_s: 3, between: [publisher, ingest]}"):
        with pytest.raises(RealRunError, match="chaos suite"):
            check_tier_faults(_faults(f"    - {fault}\n"))


def test_a_plan_naming_a_missing_tier_fails_before_it_starts() -> None:
    with pytest.raises(PlanError, match="no link between chat-1 and nats"):
        FaultPlan(_faults(CHAT_LINK_FAULTS).faults, Targets())


@pytest.mark.slow
@pytest.mark.nats
async def test_a_chat_node_cut_off_from_nats_by_yaml_link_faults_loses_no_acknowledged_message(
    needs_root: None, tmp_path: Path
) -> None:
    timeline = Timeline("chat-node-nats-link")
    spec = _faults(CHAT_LINK_FAULTS)
    with NetnsLink() as link:
        nats_server = PrivateNats(tmp_path)
        nats_server.argv[nats_server.argv.index("-a") + 1] = link.outside  # reachable from the namespace
        nats_url = f"nats://{link.outside}:{nats_server.port}"
        ports = [free_port(), free_port()]
        cut = ChildService("chat-1", [*link.exec_prefix(), PYTHON, str(ROOT / "tests/chaos/chat_node.py"),
                                      link.inside, str(ports[0]), nats_url, ROOM, *SENDERS],
                           tmp_path / "chat-1.log", env=child_env())
        whole = ChildService("chat-2", [PYTHON, str(ROOT / "tests/chaos/chat_node.py"), "127.0.0.1",
                                        str(ports[1]), nats_url, ROOM, *SENDERS],
                             tmp_path / "chat-2.log", ports=[ports[1]], env=child_env())
        plan = FaultPlan(spec.faults, Targets(processes={"nats": nats_server},
                                              links={frozenset(("chat-1", "nats")): link}), timeline)
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        try:
            nats_server.ports = ()
            nats_server.start()
            wait_port(nats_server.port, time.monotonic() + 30, host=link.outside)
            cut.start()
            wait_port(ports[0], time.monotonic() + 30, host=link.inside, alive=cut)
            whole.start()
            hosts = {ports[0]: link.inside, ports[1]: "127.0.0.1"}
            readers = [Member(f"reader{i}", ports, i % 2, timeline, hosts=hosts) for i in range(4)]
            senders = [Member(name, ports, 1, timeline, token=f"token-{name}", hosts=hosts)
                       for name in SENDERS]
            sent: list[str] = []
            tasks = [asyncio.create_task(m.run(stop)) for m in (*readers, *senders)]
            tasks += [asyncio.create_task(_talk(s, stop, sent)) for s in senders]
            await asyncio.sleep(1)
            plan.start()
            faults_over = time.monotonic() + plan.end_s
            await asyncio.sleep(plan.end_s + 3)
            stop.set()
            acked = {text for s in senders for text in s.acked}
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not all(acked <= set(r.texts) for r in readers):
                await asyncio.sleep(0.2)
            caught_up = time.monotonic()
            for member in (*readers, *senders):
                if member.ws is not None:
                    await member.ws.close()
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)
            missing = {r.name: sorted(acked - set(r.texts))[:10] for r in readers if acked - set(r.texts)}
            disorder = [r.name for r in readers if r.ids != list(range(r.ids[0], r.ids[0] + len(r.ids)))]
            timeline.result(sent=len(sent), acknowledged=len(acked), readers_missing_acked=missing,
                            readers_out_of_order=disorder,
                            all_delivered_after_faults_s=round(caught_up - faults_over, 3),
                            reader_max_gap_s=round(max((g for r in readers for g in r.gaps), default=0.0), 3))
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            plan.close()
            cut.close()
            whole.close()
            nats_server.close()
            timeline.write()
    assert len(acked) > 100, timeline.results
    assert not missing, f"acknowledged messages lost: {missing}"
    assert not disorder, f"readers saw ids out of order, twice or with holes: {disorder}"


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_loadgen_runs_hang_of_origin_stops_the_platform_for_its_duration_then_continues_it(
    tmp_path: Path,
) -> None:
    from loadgen.realrun.launch import Children
    from loadgen.realrun.tiers import targets

    children = Children()
    children.start("platform", ["sleep", "30"], tmp_path / "platform.log")
    try:
        pid = children.procs["platform"].pid
        spec = _faults("    - {kind: hang, at_s: 0.2, duration_s: 1, target: origin}\n")
        timeline = Timeline("loadgen-hang-origin")
        plan = FaultPlan(spec.faults, targets(children), timeline)
        plan.start()
        time.sleep(0.7)
        assert _state(pid) == "T"  # stopped
        plan.close()
        assert _state(pid) in ("S", "R")
        assert [e["event"] for e in timeline.events] == ["fault start", "fault end"]
    finally:
        children.stop_all()


def test_run_json_writes_each_fault_as_its_yaml_did_so_the_twin_reads_it_back() -> None:
    from loadgen.realrun.tiers import fault_record
    from twin.validation.rundir import spec_from_mapping

    spec = _faults(CHAT_LINK_FAULTS + "    - {kind: worker_kill, at_s: 3}\n"
                   "    - {kind: viral_spike, at_s: 4, factor: 2, duration_s: 5}\n")
    real = {**dataclasses.asdict(spec), "faults": [fault_record(f) for f in spec.faults]}
    assert spec_from_mapping(json.loads(json.dumps(real)), "run.json") == spec
    dump = json.loads(json.dumps(dataclasses.asdict(spec)))  # every field of every fault
    assert spec_from_mapping(dump, "run.json") == spec
