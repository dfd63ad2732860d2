"""deploy/systemd stays true: every unit's command line parses with today's CLI into valid
settings, and the origin and ingest units' command lines start and work together.

``ExecStart`` is expanded as systemd does (docs/scaleout.md cites systemd.service): ``${VAR}``
becomes one argument, ``$VAR`` standing alone becomes its value split at whitespace; variables
come from deploy/livetwin.env.example, the file the units name in ``EnvironmentFile=``.
"""

from __future__ import annotations

import os
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from live.cli import _serve_settings, build_parser

from loadgen.faults.services import ChildService, free_port

from ..chaos.harness import child_env

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
POSTGRES = os.environ.get("LIVETWIN_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
NATS_URL = os.environ.get("LIVETWIN_TEST_NATS", "nats://127.0.0.1:4222")


def env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        name, _, value = line.partition("=")
        values[name.strip()] = value.strip().removeprefix('"').removesuffix('"')
    return values


def exec_start(unit: Path, env: dict[str, str]) -> list[str]:
    line = next(line for line in unit.read_text().splitlines() if line.startswith("ExecStart="))
    argv: list[str] = []
    for word in line.removeprefix("ExecStart=").split():
        if re.fullmatch(r"\$[A-Z_]+", word):
            argv.extend(env[word[1:]].split())
        else:
            argv.append(re.sub(r"\$\{([A-Z_]+)\}", lambda m: env[m[1]], word))
    return argv


def test_there_is_a_unit_per_role_and_the_cdn() -> None:
    assert [unit.stem for unit in UNITS] == [f"livetwin-{name}" for name in
                                             ("api", "cdn", "chat", "ingest", "origin")]
    for unit in UNITS:
        text = unit.read_text()
        assert "EnvironmentFile=/etc/livetwin/livetwin.env" in text and "TOKEN" not in text


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.stem)
def test_each_units_command_line_parses_into_valid_settings(
        unit: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_file(DEPLOY / "livetwin.env.example")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    argv = exec_start(unit, env)
    assert argv[0] == "/usr/local/bin/live"
    args = build_parser().parse_args(argv[1:])
    if args.command == "serve":
        settings = _serve_settings(args)
        assert settings.roles == {unit.stem.removeprefix("livetwin-")}
        assert settings.ingest_token == env["LIVETWIN_INGEST_TOKEN"]
    else:
        assert args.command == "cdn" and len(args.origin) == 2


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


@pytest.mark.slow
def test_the_origin_and_ingest_units_start_and_the_ingest_pushes_to_the_origin(
        tmp_path: Path) -> None:
    """Their command lines, with this machine's PostgreSQL, NATS, free ports and a temp dir."""
    origin_port, ingest_port, rtmp_port = free_port(), free_port(), free_port()
    env = {**env_file(DEPLOY / "livetwin.env.example"),
           "LIVETWIN_LISTEN": "127.0.0.1", "LIVETWIN_DATA": str(tmp_path),
           "LIVETWIN_DATABASE": POSTGRES, "LIVETWIN_NATS": NATS_URL,
           "LIVETWIN_ORIGINS": f"--origin http://127.0.0.1:{origin_port}",
           "LIVETWIN_ORIGIN_PORT": str(origin_port), "LIVETWIN_INGEST_HTTP_PORT": str(ingest_port),
           "LIVETWIN_RTMP_PORT": str(rtmp_port), "LIVETWIN_INGEST_TOKEN": "deploy-test-token-0001"}
    children = []
    for name, port in (("origin", origin_port), ("ingest", ingest_port)):
        argv = exec_start(DEPLOY / "systemd" / f"livetwin-{name}.service", env)
        argv = [sys.executable, "-m", "live.cli", *argv[1:]]
        children.append(ChildService(name, argv, tmp_path / f"{name}.log", ports=(port,),
                                     env={**child_env(), **env}))
    try:
        for child in children:
            child.start()
        status, metrics = _get(f"http://127.0.0.1:{ingest_port}/metrics")
        assert status == 200
        assert f'livetwin_push_queued_bytes{{origin="http://127.0.0.1:{origin_port}"}}' in metrics
        deadline = time.monotonic() + 10
        while "livetwin_ingest_refused_total" not in _get(
                f"http://127.0.0.1:{origin_port}/metrics")[1]:
            assert time.monotonic() < deadline, "the origin has no ingest endpoint"
            time.sleep(0.2)
        request = urllib.request.Request(f"http://127.0.0.1:{origin_port}/ingest/a/b/c", data=b"x",
                                         method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 401
        assert all(child.alive() for child in children)
        log = (tmp_path / "ingest.log").read_text()
        assert f"pushing CMAF to: http://127.0.0.1:{origin_port}" in log, log[-2000:]
    finally:
        for child in children:
            child.close()
