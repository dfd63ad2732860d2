"""`live`: run the livetwin platform."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from live.commerce.settings import PaymentsSettings
from live.config import (
    CHANNELS_ENV,
    SEEDED_KEY_MIN,
    ChannelSeed,
    ServeSettings,
    check_public_hls_url,
    check_seed_keys,
    parse_duration,
    parse_size,
    seeds_from_environment,
    seeds_from_file,
)
from live.http_limits import HttpLimits
from live.webrtc.sessions import WebRtcLimits
from live.webrtc.settings import WebRtcSettings, WhipSettings

#: The environment variable `live serve` reads the /metrics bearer token from.
METRICS_TOKEN_ENV = "LIVETWIN_METRICS_TOKEN"


def _channel(text: str) -> ChannelSeed:
    try:
        return ChannelSeed.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _public_hls_url(text: str) -> str:
    try:
        return check_public_hls_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} out of range 0-65535")
    return port


def _listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPV6]:PORT``."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    return host, _port(port)


def _redis_url(text: str) -> str:
    if not text.startswith(("redis://", "rediss://", "unix://")):
        raise argparse.ArgumentTypeError(f"{text!r}: expected redis://HOST:PORT")
    return text


def _metrics_token(args: argparse.Namespace) -> str | None:
    """--metrics-token TOKEN, --metrics-token @FILE (first line) or $LIVETWIN_METRICS_TOKEN."""
    text = args.metrics_token if args.metrics_token is not None else os.environ.get(METRICS_TOKEN_ENV)
    if text is None:
        return None
    if text.startswith("@"):
        try:
            lines = Path(text[1:]).read_text().splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"--metrics-token {text}: cannot read the token file: {error}") from None
        text = lines[0].strip() if lines else ""
    if len(text) < SEEDED_KEY_MIN:
        raise ValueError(f"the metrics token must be at least {SEEDED_KEY_MIN} characters")
    return text


DEFAULT_SRT_PORT = 9000
_SRT_OFF = -1


def _srt_port(text: str) -> int:
    return _SRT_OFF if text.lower() in ("off", "none") else _port(text)


def _latency(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 60_000:
        raise argparse.ArgumentTypeError(f"SRT latency {value} ms out of range 0-60000")
    return value


def _passphrase(text: str) -> str:
    if not 10 <= len(text) <= 79:
        raise argparse.ArgumentTypeError("an SRT passphrase must be 10 to 79 characters")
    return text


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a number of seconds >= 0")
    return value


def _platform_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--rtmp-port", type=_port, default=1935,
                        help="RTMP port (default 1935; 0 = any free port)")
    parser.add_argument("--srt-port", type=_srt_port, default=None,
                        help="SRT listener UDP port (default 9000, skipped with a warning when "
                             "taken; 0 = any free port; off = none)")
    parser.add_argument("--srt-latency-ms", type=_latency, default=120, metavar="MS",
                        help="SRT receiver latency: how long lost packets may be retransmitted "
                             "(default 120)")
    parser.add_argument("--srt-passphrase", type=_passphrase, default=None, metavar="TEXT",
                        help="require SRT encryption (AES) with this passphrase (10-79 chars)")
    parser.add_argument("--http-port", type=_port, default=8080,
                        help="HTTP port (default 8080; 0 = any free port)")
    parser.add_argument("--chat-port", type=_port, default=8081,
                        help="WebSocket chat port (default 8081; 0 = any free port)")
    parser.add_argument("--chat-broker", default=None, metavar="URL",
                        help="nats://HOST:PORT to fan chat out through NATS JetStream across nodes "
                             "(default: in-process)")
    parser.add_argument("--data", type=Path, default=Path("data"),
                        help="directory for the embedded store (default ./data)")
    parser.add_argument("--database", default=None,
                        help="postgresql://... to use PostgreSQL instead of SQLite")
    parser.add_argument("--channel", type=_channel, action="append", default=[], metavar="NAME=KEY",
                        help="make sure channel NAME exists with stream key KEY (repeatable); "
                             "NAME=@FILE reads the key from FILE, so it is not visible in ps. "
                             f"{CHANNELS_ENV}='NAME=KEY ...' in the environment works too")
    parser.add_argument("--channel-file", type=Path, action="append", default=[], metavar="FILE",
                        help="seed channels from FILE: one NAME=KEY a line (repeatable)")
    parser.add_argument("--dev", action="store_true",
                        help=f"development machine: accept seeded keys shorter than {SEEDED_KEY_MIN} "
                             "characters")
    parser.add_argument("--trust-forwarded-for", action="store_true",
                        help="take API clients' addresses (for rate limits) from the last "
                             "X-Forwarded-For hop: only behind your own reverse proxy")
    parser.add_argument("--chat-rate-store", type=_redis_url, default=None, metavar="URL",
                        help="redis://HOST:PORT to count each user's chat message limit across every "
                             "chat node (default: each node counts alone)")
    parser.add_argument("--metrics-listen", type=_listen, default=None, metavar="HOST:PORT",
                        help="serve /metrics on this address instead of the HTTP port "
                             "(default: on the HTTP port)")
    parser.add_argument("--metrics-token", default=None, metavar="TOKEN",
                        help="answer /metrics only with 'Authorization: Bearer TOKEN'; @FILE reads it "
                             f"from FILE, and {METRICS_TOKEN_ENV} in the environment works too "
                             "(default: no token)")
    http = HttpLimits()
    parser.add_argument("--http-header-timeout", type=float, default=http.header_timeout_s, metavar="S",
                        help="close an HTTP connection whose request head is not complete S "
                             "seconds after it opened or after its previous response "
                             f"(default {http.header_timeout_s:g})")
    parser.add_argument("--http-max-connections", type=int, default=http.max_connections, metavar="N",
                        help=f"HTTP connections open at once (default {http.max_connections}); "
                             "more are answered 503")
    parser.add_argument("--http-max-connections-per-address", type=int,
                        default=http.max_connections_per_address, metavar="N",
                        help="HTTP connections from one address (IPv4, or IPv6 /64) "
                             f"(default {http.max_connections_per_address}; raise it behind a proxy)")
    parser.add_argument("--public-hls-url", type=_public_hls_url, default=None, metavar="URL",
                        help="base URL players fetch /hls/ from, e.g. a CDN edge started by "
                             "`live cdn` (default: this server)")
    parser.add_argument("--whep-max-viewers", type=_count, default=WebRtcLimits().max_viewers, metavar="N",
                        help="WHEP (WebRTC) viewers this node serves before answering 503 "
                             f"(default {WebRtcLimits().max_viewers})")
    parser.add_argument("--webrtc-ice-timeout", type=_seconds, default=WebRtcLimits().ice_timeout_s,
                        metavar="S", help="drop WHIP/WHEP sessions whose ICE has not completed "
                                          f"after S seconds (default {WebRtcLimits().ice_timeout_s:g})")
    parser.add_argument("--whip-keyframe-interval", type=_seconds,
                        default=WhipSettings().keyframe_interval_s, metavar="S",
                        help="ask WHIP publishers for a keyframe every S seconds (default "
                             f"{WhipSettings().keyframe_interval_s:g}, the segment length; 0 = only "
                             "when transcoding starts and after loss)")
    parser.add_argument("--dvr-window", type=_duration, default=4 * 3600.0, metavar="DURATION",
                        help="rewind window of every live stream, kept on disk under --data "
                             "(default 4h; 90s, 30m, 4h)")
    parser.add_argument("--dvr-max-bytes", type=_size, default=None, metavar="SIZE",
                        help="disk one channel's DVR window may take (default: the window of the "
                             "full default ladder, printed at start; 500M, 40G)")
    parser.add_argument("--vod-retention", type=_duration, default=7 * 86400.0, metavar="DURATION",
                        help="how long an ended stream stays watchable as a VOD (default 7d)")
    parser.add_argument("--ad-creatives", type=int, default=0, metavar="N",
                        help="make N short ad clips with `live transcode` at start and offer them in "
                             "ad breaks (default 0: ad breaks have no creatives)")
    parser.add_argument("--payments-url", default=None, metavar="URL",
                        help="payment provider API (e.g. a `live payments-sandbox`); its key and webhook "
                             "secret come from LIVETWIN_PAYMENTS_API_KEY and LIVETWIN_WEBHOOK_SECRET "
                             "(default: an embedded sandbox provider)")


def _channel_seeds(args: argparse.Namespace) -> tuple[ChannelSeed, ...]:
    """Every seed from the environment, --channel-file and --channel (later ones win)."""
    seeds = [*seeds_from_environment(os.environ)]
    for path in args.channel_file:
        seeds.extend(seeds_from_file(path))
    seeds.extend(args.channel)
    check_seed_keys(tuple(seeds), dev=args.dev)
    return tuple(seeds)


def _serve_settings(args: argparse.Namespace) -> ServeSettings:
    srt_port: int | None = args.srt_port
    srt_required = True
    if srt_port is None:  # not given: on at the default port, skipped if that is taken
        srt_port, srt_required = DEFAULT_SRT_PORT, False
    elif srt_port == _SRT_OFF:
        srt_port, srt_required = None, False
    return ServeSettings(
        host=args.host, rtmp_port=args.rtmp_port, http_port=args.http_port,
        srt_port=srt_port, srt_port_required=srt_required, srt_latency_ms=args.srt_latency_ms,
        srt_passphrase=args.srt_passphrase,
        chat_port=args.chat_port, chat_broker=args.chat_broker,
        data_dir=args.data, database=args.database, channels=_channel_seeds(args),
        dev=args.dev, trust_forwarded_for=args.trust_forwarded_for,
        http_limits=HttpLimits(header_timeout_s=args.http_header_timeout,
                               max_connections=args.http_max_connections,
                               max_connections_per_address=args.http_max_connections_per_address),
        chat_rate_store=args.chat_rate_store, metrics_listen=args.metrics_listen,
        metrics_token=_metrics_token(args),
        public_hls_url=args.public_hls_url,
        webrtc=WebRtcSettings(
            limits=WebRtcLimits(max_viewers=args.whep_max_viewers, ice_timeout_s=args.webrtc_ice_timeout),
            whip=WhipSettings(keyframe_interval_s=args.whip_keyframe_interval),
        ),
        dvr_window_s=args.dvr_window, dvr_max_bytes=args.dvr_max_bytes,
        vod_retention_s=args.vod_retention,
        payments=_payments_settings(args.payments_url), ad_creatives=args.ad_creatives,
    )


def _payments_settings(url: str | None) -> PaymentsSettings:
    return PaymentsSettings(provider_url=url,
                            api_key=os.environ.get("LIVETWIN_PAYMENTS_API_KEY", "sk_test_livetwin"),
                            webhook_secret=os.environ.get("LIVETWIN_WEBHOOK_SECRET"))


def _store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=Path("data"),
                        help="directory of the embedded store (default ./data)")
    parser.add_argument("--database", default=None,
                        help="postgresql://... to use PostgreSQL instead of SQLite")


def _commerce_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ledger = commands.add_parser("ledger", help="inspect the books",
                                 description="Verify the double-entry books.")
    ledger_commands = ledger.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")
    check = ledger_commands.add_parser(
        "check", help="verify that every transaction balances and every cached balance is true",
        description="Exit 0 when every journal transaction sums to zero per currency, every cached "
                    "balance equals the sum of its entries and no wallet is negative; 1 otherwise.")
    _store_arguments(check)
    payouts = commands.add_parser("payouts", help="pay channels what they earned",
                                  description="Book channel earnings to payouts.")
    payout_commands = payouts.add_subparsers(dest="payouts_command", required=True, metavar="ACTION")
    run = payout_commands.add_parser(
        "run", help="book each channel's earnings up to the end of a month to payouts (idempotent)",
        description="Book what each channel earned up to the end of --period (UTC) to payouts. "
                    "Running it again for the same period books nothing new.")
    run.add_argument("--period", required=True, metavar="YYYY-MM", help="the month to pay out")
    _store_arguments(run)
    sandbox = commands.add_parser(
        "payments-sandbox", help="run the sandbox payment provider as its own process",
        description="A Stripe-shaped fake provider: test cards that succeed, decline, fail for "
                    "insufficient funds or settle later; signed webhooks delivered late, twice and "
                    "out of order, retried with backoff until acknowledged.")
    sandbox.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sandbox.add_argument("--port", type=_port, default=8090, help="port (default 8090; 0 = any free port)")
    sandbox.add_argument("--webhook-url", default="http://127.0.0.1:8080/api/v1/payments/webhook",
                         help="where to deliver webhooks (default: a local `live serve`)")
    sandbox.add_argument("--max-delay", type=float, default=1.0, metavar="S",
                         help="deliver each webhook up to S seconds late (default 1)")
    sandbox.add_argument("--duplicate", type=float, default=0.3, metavar="P",
                         help="probability that a webhook is delivered twice (default 0.3)")
    sandbox.add_argument("--settle-after", type=float, default=2.0, metavar="S",
                         help="seconds before a pending test card settles (default 2)")
    sandbox.add_argument("--seed", type=int, default=None, help="seed of the delivery chaos")
    sandbox.add_argument("--duration", type=float, default=None, metavar="S",
                         help="stop after S seconds (default: run until interrupted)")


def _commerce(args: argparse.Namespace) -> int:
    if args.command == "payments-sandbox":
        from live.commerce.sandbox_server import Chaos, run_sandbox

        secret = os.environ.get("LIVETWIN_WEBHOOK_SECRET")
        if not secret:
            print("live payments-sandbox: set LIVETWIN_WEBHOOK_SECRET (the platform needs the same one)",
                  file=sys.stderr)
            return 2
        chaos = Chaos(max_delay_s=args.max_delay, duplicate=args.duplicate, seed=args.seed)
        try:
            asyncio.run(run_sandbox(args.host, args.port, args.webhook_url, secret,
                                    os.environ.get("LIVETWIN_PAYMENTS_API_KEY", "sk_test_livetwin"),
                                    chaos, args.settle_after, args.duration))
        except KeyboardInterrupt:
            pass
        return 0
    from live.commerce.cli import ledger_check, payouts_run

    if args.command == "ledger":
        return asyncio.run(ledger_check(args.database, args.data))
    return asyncio.run(payouts_run(args.database, args.data, args.period))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="live", description=__doc__)
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="logging level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the all-in-one platform on the embedded default (no external service)",
        description="Run RTMP ingest, live transcoding, the LL-HLS origin and the HTTP API in one "
                    "process. Storage is SQLite under --data unless --database names a PostgreSQL "
                    "server.")
    _platform_arguments(serve)
    serve.add_argument("--duration", type=float, default=None, metavar="S",
                       help="stop after S seconds (default: run until interrupted)")

    demo = commands.add_parser(
        "demo", help="run the platform with a synthetic publisher and print glass-to-glass latency",
        description="Start the platform on the embedded default, publish a synthetic stream whose "
                    "frames carry their capture clock as a painted block code, play it back like "
                    "an LL-HLS player and print the measured glass-to-glass latency every few "
                    "seconds.")
    _platform_arguments(demo)
    demo.add_argument("--duration", type=float, default=None, metavar="S",
                      help="stop after S seconds (default: run until interrupted)")
    demo.add_argument("--interval", type=float, default=5.0, metavar="S",
                      help="seconds between latency reports (default 5)")
    demo.add_argument("--size", default="1280x720", help="publisher resolution (default 1280x720)")
    demo.add_argument("--fps", type=int, default=30, help="publisher frame rate (default 30)")
    demo.add_argument("--rendition", default="highest",
                      help="rendition the probe plays: highest, lowest or a name like 360p30")

    transcode = commands.add_parser(
        "transcode", help="transcode a media file into an LL-HLS ladder (VOD), as fast as possible",
        description="Run the live transcode and packaging path on a file (H.264/H.265 video, AAC "
                    "or other audio) without real-time pacing and write a static LL-HLS tree: "
                    "OUT/master.m3u8, one media playlist per rung, init, part and segment files.")
    transcode.add_argument("input", type=Path, help="input media file (MP4, MOV, FLV, MKV, TS)")
    transcode.add_argument("--out", type=Path, required=True, help="output directory")
    transcode.add_argument("--part-target", type=float, default=0.201, metavar="S",
                           help="LL-HLS part target in seconds (default 0.201)")
    transcode.add_argument("--preset", default="veryfast", help="x264 preset (default veryfast)")
    _cdn_parser(commands)
    _commerce_commands(commands)
    return parser


def _cdn_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    cdn.add_argument("--base-port", type=_port, default=8400,
                     help="first node's port; shields first, then edges (default 8400)")
    cdn.add_argument("--data", type=Path, default=None, metavar="DIR",
                     help="directory for each node's config, cache and logs (required)")
    cdn.add_argument("--metrics-port", type=_port, default=None, metavar="PORT",
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command in ("serve", "demo"):
        try:
            serve_settings = _serve_settings(args)
        except ValueError as exc:
            print(f"live {args.command}: {exc}", file=sys.stderr)
            return 2
    if args.command == "serve":
        from live.serve import serve

        try:
            asyncio.run(serve(serve_settings, args.duration))
        except KeyboardInterrupt:
            pass
        except OSError as exc:
            print(f"live serve: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "transcode":
        return _transcode(args)
    if args.command == "demo":
        return _demo(args, serve_settings)
    if args.command == "cdn":
        return _cdn(args)
    if args.command in ("ledger", "payouts", "payments-sandbox"):
        return _commerce(args)
    return 2


def _cdn(args: argparse.Namespace) -> int:
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


def _demo(args: argparse.Namespace, serve_settings: ServeSettings) -> int:
    from live.demo import DemoSettings, run_demo

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
        settings = DemoSettings(duration_s=args.duration, interval_s=args.interval, width=width,
                                height=height, fps=args.fps, rendition=args.rendition)
    except ValueError:
        print(f"live demo: --size {args.size!r}: expected WIDTHxHEIGHT", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(run_demo(serve_settings, settings))
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"live demo: {exc}", file=sys.stderr)
        return 1
    return 0 if report is not None and report.frames > 0 else 1


def _transcode(args: argparse.Namespace) -> int:
    import av

    from live.package.ladder_packager import PackagingSettings
    from live.transcode.encoders import EncoderSettings
    from live.vod import transcode_file

    if not args.input.is_file():
        print(f"live transcode: {args.input}: no such file", file=sys.stderr)
        return 2
    try:
        result = transcode_file(
            args.input, args.out,
            settings=PackagingSettings(part_target_s=args.part_target),
            encoder_settings=EncoderSettings(preset=args.preset),
            on_progress=lambda s: print(f"\r  {s:7.1f} s transcoded", end="", file=sys.stderr),
        )
    except (ValueError, RuntimeError, av.FFmpegError) as exc:
        print(f"\nlive transcode: {exc}", file=sys.stderr)
        return 1
    print(file=sys.stderr)
    print(f"{result.out_dir}/master.m3u8: {len(result.renditions)} renditions "
          f"({', '.join(result.renditions)}), {result.source_frames} frames, "
          f"{result.media_s:.1f} s of media in {result.wall_s:.1f} s "
          f"({result.realtime_factor:.2f}x real time, {result.encoder}), "
          f"{result.files} files, {result.bytes_written / 1e6:.1f} MB")
    for name, reason in result.retired.items():
        print(f"  {name} retired: {reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
