"""`live leases`: where each live channel is, as the control plane (NATS JetStream) knows it."""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from live.ingest.leases import BUCKET, list_leases


def add_cluster_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    leases = commands.add_parser(
        "leases", help="list the live channels the control plane holds leases for",
        description="Print one JSON object a line per leased channel: the ingest node holding "
                    "it, the origins it pushes to, and the age of its last renewal "
                    "(docs/scaleout.md).")
    leases.add_argument("--control-plane", required=True, metavar="URL",
                        help="nats://HOST:PORT of the control plane")
    leases.add_argument("--bucket", default=BUCKET, help=f"the lease bucket (default {BUCKET})")


def run_leases(args: argparse.Namespace) -> int:
    found = asyncio.run(list_leases(args.control_plane, args.bucket))
    now = time.time()
    for channel, lease in found.items():
        at = lease.get("at")
        age = round(now - at, 1) if isinstance(at, int | float) else None
        print(json.dumps({"channel": channel, **lease, "renewed_s_ago": age}), flush=True)
    return 0
