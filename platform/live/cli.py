"""`live`: run the livetwin platform."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from live.config import ChannelSeed, ServeSettings


def _channel(text: str) -> ChannelSeed:
    try:
        return ChannelSeed.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} out of range 0-65535")
    return port


def _platform_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--rtmp-port", type=_port, default=1935,
                        help="RTMP port (default 1935; 0 = any free port)")
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
                        help="make sure channel NAME exists with stream key KEY (repeatable)")


def _serve_settings(args: argparse.Namespace) -> ServeSettings:
    return ServeSettings(
        host=args.host, rtmp_port=args.rtmp_port, http_port=args.http_port,
        chat_port=args.chat_port, chat_broker=args.chat_broker,
        data_dir=args.data, database=args.database, channels=tuple(args.channel),
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        from live.serve import serve

        try:
            asyncio.run(serve(_serve_settings(args), args.duration))
        except KeyboardInterrupt:
            pass
        except OSError as exc:
            print(f"live serve: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "transcode":
        return _transcode(args)
    if args.command == "demo":
        return _demo(args)
    return 2


def _demo(args: argparse.Namespace) -> int:
    from live.demo import DemoSettings, run_demo

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
        settings = DemoSettings(duration_s=args.duration, interval_s=args.interval, width=width,
                                height=height, fps=args.fps, rendition=args.rendition)
    except ValueError:
        print(f"live demo: --size {args.size!r}: expected WIDTHxHEIGHT", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(run_demo(_serve_settings(args), settings))
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
