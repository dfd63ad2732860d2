"""`live serve` as a restartable child for chaos tests, and the plain HTTP calls they make."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from loadgen.faults.services import READY_TIMEOUT_S, ChildService, free_port, wait_port

from .harness import PYTHON, child_env


class LiveServe(ChildService):
    """`live serve` on free loopback ports (or on ``host``), with the given extra flags."""

    def __init__(self, workdir: Path, *extra: str, host: str = "127.0.0.1", name: str = "origin") -> None:
        self.http, self.rtmp, self.chat = free_port(), free_port(), free_port()
        self.host = host
        data = workdir / f"{name}-data"
        data.mkdir(parents=True, exist_ok=True)
        argv = [PYTHON, "-m", "live.cli", "serve", "--host", host, "--http-port", str(self.http),
                "--rtmp-port", str(self.rtmp), "--chat-port", str(self.chat), "--data", str(data), "--dev",
                *extra]
        super().__init__(name, argv, workdir / f"{name}.log", env=child_env())
        self.ports = (self.http, self.rtmp)

    def start(self) -> None:
        """Start and wait for the HTTP and RTMP ports on ``host`` (which may be a link's address)."""
        if self.alive():
            return
        ports, self.ports = self.ports, ()
        try:
            super().start()
        finally:
            self.ports = ports
        deadline = time.monotonic() + READY_TIMEOUT_S
        for port in ports:
            wait_port(port, deadline, host=self.host, alive=self)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.http}"


def call(base: str, method: str, path: str, body: Any = None, token: str | None = None,
         timeout: float = 10.0, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One API call; answers (status, JSON body or None). Raises OSError when no answer came."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}/api/v1{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw) if raw else None
        except ValueError:
            return error.code, raw.decode(errors="replace")
