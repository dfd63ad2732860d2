"""`live`: run the livetwin platform."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from live.cli_cdn import add_cdn_parser, run_cdn
from live.cli_cluster import add_cluster_parsers, run_leases
from live.cli_commerce import add_commerce_parsers, payments_settings, run_commerce
from live.cli_types import (
    DEFAULT_SRT_PORT,
    SRT_OFF,
    channel_seed,
    count,
    duration,
    latency,
    listen,
    passphrase,
    port,
    public_hls_url,
    redis_url,
    roles,
    seconds,
    size,
    srt_port,
)
from live.config import (
    CHANNELS_ENV,
    ROLES,
    SEEDED_KEY_MIN,
    ChannelSeed,
    ServeSettings,
    check_seed_keys,
    seeds_from_environment,
    seeds_from_file,
)
from live.http_limits import HttpLimits
from live.webrtc.sessions import WebRtcLimits
from live.webrtc.settings import WebRtcSettings, WhipSettings

#: The environment variable `live serve` reads the /metrics bearer token from.
METRICS_TOKEN_ENV = "LIVETWIN_METRICS_TOKEN"


#: The environment variable `live serve` reads the CMAF ingest secret from.
INGEST_TOKEN_ENV = "LIVETWIN_INGEST_TOKEN"


def _ingest_token(args: argparse.Namespace) -> str | None:
    """--ingest-token TOKEN, --ingest-token @FILE (first line) or $LIVETWIN_INGEST_TOKEN."""
    text = args.ingest_token if args.ingest_token is not None else os.environ.get(INGEST_TOKEN_ENV)
    return _secret(text, "--ingest-token")


def _metrics_token(args: argparse.Namespace) -> str | None:
    """--metrics-token TOKEN, --metrics-token @FILE (first line) or $LIVETWIN_METRICS_TOKEN."""
    text = args.metrics_token if args.metrics_token is not None else os.environ.get(METRICS_TOKEN_ENV)
    return _secret(text, "--metrics-token")


def _secret(text: str | None, option: str) -> str | None:
    if text is None:
        return None
    if text.startswith("@"):
        try:
            lines = Path(text[1:]).read_text().splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"{option} {text}: cannot read the token file: {error}") from None
        text = lines[0].strip() if lines else ""
    if len(text) < SEEDED_KEY_MIN:
        raise ValueError(f"{option}: the token must be at least {SEEDED_KEY_MIN} characters")
    return text


def _platform_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--rtmp-port", type=port, default=1935,
                        help="RTMP port (default 1935; 0 = any free port)")
    parser.add_argument("--srt-port", type=srt_port, default=None,
                        help="SRT listener UDP port (default 9000, skipped with a warning when "
                             "taken; 0 = any free port; off = none)")
    parser.add_argument("--srt-latency-ms", type=latency, default=120, metavar="MS",
                        help="SRT receiver latency: how long lost packets may be retransmitted "
                             "(default 120)")
    parser.add_argument("--srt-passphrase", type=passphrase, default=None, metavar="TEXT",
                        help="require SRT encryption (AES) with this passphrase (10-79 chars)")
    parser.add_argument("--http-port", type=port, default=8080,
                        help="HTTP port (default 8080; 0 = any free port)")
    parser.add_argument("--chat-port", type=port, default=8081,
                        help="WebSocket chat port (default 8081; 0 = any free port)")
    parser.add_argument("--chat-broker", default=None, metavar="URL",
                        help="nats://HOST:PORT to fan chat out through NATS JetStream across nodes "
                             "(default: in-process)")
    parser.add_argument("--data", type=Path, default=Path("data"),
                        help="directory for the embedded store (default ./data)")
    parser.add_argument("--database", default=None,
                        help="postgresql://... to use PostgreSQL instead of SQLite")
    parser.add_argument("--channel", type=channel_seed, action="append", default=[], metavar="NAME=KEY",
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
    parser.add_argument("--chat-rate-store", type=redis_url, default=None, metavar="URL",
                        help="redis://HOST:PORT to count each user's chat message limit across every "
                             "chat node (default: each node counts alone)")
    parser.add_argument("--metrics-listen", type=listen, default=None, metavar="HOST:PORT",
                        help="serve /metrics on this address instead of the HTTP port "
                             "(default: on the HTTP port)")
    parser.add_argument("--metrics-token", default=None, metavar="TOKEN",
                        help="answer /metrics only with 'Authorization: Bearer TOKEN'; @FILE reads it "
                             f"from FILE, and {METRICS_TOKEN_ENV} in the environment works too "
                             "(default: no token)")
    parser.add_argument("--admin", action="append", default=[], metavar="NAME",
                        help="let account NAME open the /ops page (repeatable); the account must "
                             "exist already (sign up first)")
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
    parser.add_argument("--public-hls-url", type=public_hls_url, default=None, metavar="URL",
                        help="base URL players fetch /hls/ from, e.g. a CDN edge started by "
                             "`live cdn` (default: this server)")
    parser.add_argument("--whep-max-viewers", type=count, default=WebRtcLimits().max_viewers, metavar="N",
                        help="WHEP (WebRTC) viewers this node serves before answering 503 "
                             f"(default {WebRtcLimits().max_viewers})")
    parser.add_argument("--webrtc-ice-timeout", type=seconds, default=WebRtcLimits().ice_timeout_s,
                        metavar="S", help="drop WHIP/WHEP sessions whose ICE has not completed "
                                          f"after S seconds (default {WebRtcLimits().ice_timeout_s:g})")
    parser.add_argument("--whip-keyframe-interval", type=seconds,
                        default=WhipSettings().keyframe_interval_s, metavar="S",
                        help="ask WHIP publishers for a keyframe every S seconds (default "
                             f"{WhipSettings().keyframe_interval_s:g}, the segment length; 0 = only "
                             "when transcoding starts and after loss)")
    parser.add_argument("--dvr-window", type=duration, default=4 * 3600.0, metavar="DURATION",
                        help="rewind window of every live stream, kept on disk under --data "
                             "(default 4h; 90s, 30m, 4h)")
    parser.add_argument("--dvr-max-bytes", type=size, default=None, metavar="SIZE",
                        help="disk one channel's DVR window may take (default: the window of the "
                             "full default ladder, printed at start; 500M, 40G)")
    parser.add_argument("--vod-retention", type=duration, default=7 * 86400.0, metavar="DURATION",
                        help="how long an ended stream stays watchable as a VOD (default 7d)")
    parser.add_argument("--ad-creatives", type=int, default=0, metavar="N",
                        help="make N short ad clips with `live transcode` at start and offer them in "
                             "ad breaks (default 0: ad breaks have no creatives)")
    parser.add_argument("--roles", type=roles, default=frozenset(ROLES), metavar="ROLE,...",
                        help=f"what this process runs, a subset of {','.join(ROLES)} (default: all; "
                             "docs/scaleout.md)")
    parser.add_argument("--origin", action="append", default=[], metavar="URL",
                        help="an origin (http://HOST:PORT) the ingest role pushes every stream to as "
                             "CMAF (DASH-IF ingest); repeat for redundant origins; needs --ingest-token")
    parser.add_argument("--ingest-token", default=None, metavar="TOKEN",
                        help="the shared secret of CMAF pushes: an origin accepts pushes only with "
                             f"it, an ingest node sends it; @FILE reads it from FILE, and "
                             f"{INGEST_TOKEN_ENV} in the environment works too")
    parser.add_argument("--control-plane", default=None, metavar="URL",
                        help="nats://HOST:PORT (JetStream): ingest nodes lease each live channel "
                             "there, so a stream key is accepted by one node at a time; a dead "
                             "node's leases expire; API nodes list every node's streams from it "
                             "(default: none)")
    parser.add_argument("--node-id", default="", metavar="NAME",
                        help="this node's name in the control plane (default: host name and pid)")
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
    elif srt_port == SRT_OFF:
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
        payments=payments_settings(args.payments_url), ad_creatives=args.ad_creatives,
        roles=args.roles, origins=tuple(args.origin), ingest_token=_ingest_token(args),
        control_plane=args.control_plane, node_id=args.node_id, admins=tuple(args.admin),
    )


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
    add_cdn_parser(commands)
    add_cluster_parsers(commands)
    add_commerce_parsers(commands)
    return parser


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
        return run_cdn(args)
    if args.command == "leases":
        return run_leases(args)
    if args.command in ("ledger", "payouts", "payments-sandbox"):
        return run_commerce(args)
    return 2


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
