"""Argument types of the `live` command line: each turns one flag's text into a checked value.

Kept apart from the command tree (``live.cli``) so the subcommands that live in their own
modules (``live.cli_cdn``, ``live.cli_commerce``) parse ports and sizes the same way.
"""

from __future__ import annotations

import argparse

from live.config import ChannelSeed, check_public_hls_url, parse_duration, parse_roles, parse_size

DEFAULT_SRT_PORT = 9000
#: ``--srt-port off``: no SRT listener.
SRT_OFF = -1


def channel_seed(text: str) -> ChannelSeed:
    try:
        return ChannelSeed.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def public_hls_url(text: str) -> str:
    try:
        return check_public_hls_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def roles(text: str) -> frozenset[str]:
    try:
        return parse_roles(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def port(text: str) -> int:
    number = int(text)
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port {number} out of range 0-65535")
    return number


def listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPV6]:PORT``."""
    host, sep, number = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not number.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    return host, port(number)


def redis_url(text: str) -> str:
    if not text.startswith(("redis://", "rediss://", "unix://")):
        raise argparse.ArgumentTypeError(f"{text!r}: expected redis://HOST:PORT")
    return text


def srt_port(text: str) -> int:
    return SRT_OFF if text.lower() in ("off", "none") else port(text)


def latency(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 60_000:
        raise argparse.ArgumentTypeError(f"SRT latency {value} ms out of range 0-60000")
    return value


def passphrase(text: str) -> str:
    if not 10 <= len(text) <= 79:
        raise argparse.ArgumentTypeError("an SRT passphrase must be 10 to 79 characters")
    return text


def count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return value


def seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a number of seconds >= 0")
    return value
