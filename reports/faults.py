"""Each fault of a run, and what it did, as a sentence a planner reads (not raw JSON).

Input is the summary's `faults` (what was injected) and `fault_effects` (what the twin measured
around it), matched in order; unknown keys are ignored, so an older run directory still renders.
"""

from __future__ import annotations

from typing import Any

from reports.numbers import count, ratio_pct, scaled, seconds


def _at(e: dict[str, Any]) -> str:
    return f"At {seconds(e.get('at_s', 0.0))}"


def _spike(f: dict[str, Any], e: dict[str, Any]) -> str:
    text = f"{_at(e)} the stream ranked {f.get('stream_rank', 1)} went viral"
    if "stream_viewers_before" in e:
        text += (
            f": {count(e['stream_viewers_before'])} to {count(e['stream_viewers_peak'])} viewers "
            f"({e['stream_growth']:.1f}x)"
        )
    if f.get("duration_s"):
        text += f" for {seconds(f['duration_s'])}"
    if "origin_rps_growth" in e:
        growth = (e["origin_rps_growth"] - 1.0) * 100.0
        text += (
            f"; origin requests went from {scaled(e['origin_rps_before'])}/s to "
            f"{scaled(e['origin_rps_peak_during'])}/s ({growth:+.2g} %), the edges' coalescing absorbing it"
        )
    return text + "."


def _availability(e: dict[str, Any]) -> str:
    if not e.get("dipped"):
        return " Availability did not dip."
    before, worst = ratio_pct(e.get("availability_before")), ratio_pct(e["availability_min"])
    text = f" Availability fell from {before} to {worst}"
    if e.get("recovered_at_s") is not None:
        return text + f" and was back at {seconds(e['recovered_at_s'])}."
    return text + f" and had not recovered by the end ({ratio_pct(e.get('availability_end'))})."


def fault_sentence(fault: dict[str, Any], effect: dict[str, Any]) -> str:
    kind = effect.get("kind", fault.get("kind"))
    if kind == "viral_spike":
        return _spike(fault, effect)
    if kind == "region_outage":
        return (
            f"{_at(effect)} region {fault.get('region', '?')} went down for "
            f"{seconds(fault.get('duration_s', 0.0))} (edges and ingest)." + _availability(effect)
        )
    if kind == "transcoder_loss":
        return (
            f"{_at(effect)} {count(fault.get('nodes_lost', 0))} {str(fault.get('node_type', 'GPU')).upper()} "
            "transcoder nodes failed." + _availability(effect)
        )
    if kind == "node_loss":
        tier = fault.get("tier", "?")
        where = f" in {fault['region']}" if fault.get("region") else ""
        text = f"{_at(effect)} {count(fault.get('nodes_lost', 0))} {tier} nodes{where} failed"
        if fault.get("duration_s"):
            text += f" for {seconds(fault['duration_s'])}"
        else:
            text += " (the autoscaler replaces them)"
        if effect.get("utilization_peak") is not None:
            text += (
                f"; {tier} utilization went from {ratio_pct(effect.get('utilization_before'))} "
                f"to {ratio_pct(effect['utilization_peak'])} at the worst"
            )
        if effect.get("chat_delay_p99_max_s") is not None:
            text += f"; chat delay p99 peaked at {seconds(effect['chat_delay_p99_max_s'])}"
        return text + "." + _availability(effect)
    if kind == "viewer_packet_loss":
        return (
            f"{_at(effect)} {ratio_pct(fault.get('loss'))} of packets were lost on the viewer links in "
            f"{fault.get('region', '?')} for {seconds(fault.get('duration_s', 0.0))}: players' TCP "
            "throughput fell to the Mathis bound, so they switched down or stalled."
        )
    if kind == "chat_broker_failover":
        return (
            f"{_at(effect)} the chat broker failed over for {seconds(fault.get('duration_s', 0.0))}: "
            "messages reached only readers on their sender's node; the rest arrived late."
        )
    if kind == "chat_storm":
        text = f"{_at(effect)} a chat storm hit the stream ranked {fault.get('stream_rank', 1)}"
        if "chat_delay_max_s" in effect:
            text += f": chat delay peaked at {seconds(effect['chat_delay_max_s'])}"
            after = effect.get("chat_delay_after_s")
            if after is not None:
                text += f" and was {seconds(after)} five minutes after it ended"
        return text + "."
    if kind == "ad_break":
        return f"{_at(effect)} an ad break started on the stream ranked {fault.get('stream_rank', 1)}."
    if kind == "worker_restart":
        return (
            f"{_at(effect)} the transcode worker of the stream ranked {fault.get('stream_rank', 1)} died; "
            f"its output stopped for {seconds(fault.get('restart_s', 0.0))} while it restarted."
        )
    return f"{_at(effect)} {kind}."


def fault_sentences(summary: dict[str, Any]) -> list[str]:
    faults = summary.get("faults", [])
    effects = summary.get("fault_effects", [])
    return [fault_sentence(f, e) for f, e in zip(faults, effects, strict=False)]
