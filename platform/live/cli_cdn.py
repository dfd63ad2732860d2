"""`live cdn`: start the nginx shields and edges (live.cdn) or print one node's nginx.conf."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from live.cli_types import port


def add_cdn_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cdn = commands.add_parser(
        "cdn", help="run nginx shields and edges in front of the origin (or print one's config)",
        description="Start real nginx processes, one per node (shields in front of the origins, "
                    "edges in front of the shields), each with its own config, cache and logs "
                    "under --data; print one line per node and run until interrupted. "
                    "`live cdn config` prints one node's nginx.conf instead (docs/cdn.md).")
    cdn.add_argument("--origin", action="append", default=[], metavar="URL",
                     help="origin base URL, e.g. http://127.0.0.1:8080 (repeatable: the first "
                          "is preferred, the others take over on errors)")
    cdn.add_argument("--shields", type=int, default=1, help="shield nodes (default 1)")
    cdn.add_argument("--edges", type=int, default=2, help="edge nodes (default 2)")
    cdn.add_argument("--host", default="127.0.0.1", help="address the nodes listen on")
    cdn.add_argument("--base-port", type=port, default=8400,
                     help="first node's port; shields first, then edges (default 8400)")
    cdn.add_argument("--data", type=Path, default=None, metavar="DIR",
                     help="directory for each node's config, cache and logs (required)")
    cdn.add_argument("--metrics-port", type=port, default=None, metavar="PORT",
                     help="serve the tier's counters as Prometheus text on this port")
    cdn.add_argument("--duration", type=float, default=None, metavar="S",
                     help="stop after S seconds (default: run until interrupted)")
    _cdn_node_arguments(cdn)
    config = cdn.add_subparsers(dest="cdn_command", metavar="config").add_parser(
        "config", help="print a complete, commented nginx.conf for one node",
        description="Print the nginx.conf of one edge or shield, usable as is with "
                    "`nginx -c FILE` (paths under --cache-dir and --run-dir).")
    config.add_argument("--role", choices=["edge", "shield"], required=True)
    config.add_argument("--upstream", action="append", required=True, metavar="URL",
                        help="shield (for an edge) or origin (for a shield) URL; repeatable")
    config.add_argument("--listen", default="0.0.0.0:8090", metavar="HOST:PORT",
                        help="address to listen on (default 0.0.0.0:8090)")
    config.add_argument("--cache-dir", type=Path, default=Path("/var/cache/livetwin-cdn"),
                        metavar="DIR", help="proxy cache directory")
    config.add_argument("--run-dir", type=Path, default=Path("/var/lib/livetwin-cdn"),
                        metavar="DIR", help="logs, pid file and nginx temp files")
    config.add_argument("--user", default=None,
                        help="worker processes' user when nginx starts as root (e.g. www-data)")
    _cdn_node_arguments(config)


def _cdn_node_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-size", default="1g", metavar="SIZE",
                        help="cache size per node, e.g. 512m or 4g (default 1g)")
    parser.add_argument("--tls-cert", type=Path, default=None, metavar="PEM",
                        help="edges serve HTTP/2 over TLS with this certificate chain")
    parser.add_argument("--tls-key", type=Path, default=None, metavar="PEM",
                        help="private key for --tls-cert")
    parser.add_argument("--workers", type=int, default=1,
                        help="nginx worker processes per node (0 = one per core; default 1)")
    parser.add_argument("--target-duration", type=int, default=2, metavar="S",
                        help="longest EXT-X-TARGETDURATION served (timeouts exceed 3x it)")


def run_cdn(args: argparse.Namespace) -> int:
    from live.cdn.config import Listen, NodeSettings, Role, TlsFiles, Upstream, render
    from live.cdn.launcher import CdnError, ClusterSettings, run_tier

    if (args.tls_cert is None) != (args.tls_key is None):
        print("live cdn: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    tls = None if args.tls_cert is None else TlsFiles(args.tls_cert.resolve(), args.tls_key.resolve())
    try:
        if args.cdn_command == "config":
            print(render(NodeSettings(
                role=Role(args.role), upstreams=tuple(Upstream.parse(u) for u in args.upstream),
                listen=Listen.parse(args.listen), cache_dir=args.cache_dir.absolute(),
                cache_size=args.cache_size, run_dir=args.run_dir.absolute(), tls=tls,
                workers=args.workers, target_duration_s=args.target_duration, user=args.user)),
                end="")
            return 0
        if not args.origin or args.data is None:
            print("live cdn: --origin URL and --data DIR are required", file=sys.stderr)
            return 2
        settings = ClusterSettings(
            origins=tuple(Upstream.parse(u) for u in args.origin), data_dir=args.data.absolute(),
            shields=args.shields, edges=args.edges, host=args.host, base_port=args.base_port,
            cache_size=args.cache_size, tls=tls, workers=args.workers,
            target_duration_s=args.target_duration)
    except ValueError as exc:
        print(f"live cdn: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run_tier(settings, args.metrics_port, args.duration))
    except (CdnError, OSError) as exc:
        print(f"live cdn: {exc}", file=sys.stderr)
        return 1
    return 0
