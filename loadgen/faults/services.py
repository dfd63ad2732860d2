"""The restartable processes a fault hits: any child command, a private NATS, a private PostgreSQL.

Chaos tests kill and restart their OWN servers (a nats-server on a free port with its own
JetStream directory, a PostgreSQL cluster made by initdb in a temporary directory), never the
machine's shared ones that other tests use. Every service starts in its own session (a stop
reaches its whole tree), waits until it answers on its port with a deadline, and `close`
always leaves nothing running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Protocol

READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0


class ServiceError(RuntimeError):
    """A service did not start or answer in time (its log says why)."""


class Service(Protocol):
    """What a process fault needs: the pid to signal, and how to start it again.

    A service whose ``process_group`` attribute is true is signalled as a whole process group
    (a server and its workers); without it, the pid alone.
    """

    name: str

    @property
    def pid(self) -> int | None: ...

    def start(self) -> None: ...

    def alive(self) -> bool: ...

    def close(self) -> None: ...


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, deadline: float, host: str = "127.0.0.1", alive: Service | None = None) -> None:
    """Wait until ``host:port`` accepts a connection, or raise at ``deadline``."""
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if alive is not None and not alive.alive():
            raise ServiceError(f"{alive.name} exited before it listened on {host}:{port}")
        if time.monotonic() > deadline:
            raise ServiceError(f"nothing listens on {host}:{port} after the deadline")
        time.sleep(0.05)


class ChildService:
    """A command run as a child in its own session, restartable with the same argv.

    ``ports`` are waited for after each start. The log collects every incarnation's output.
    """

    process_group = True

    def __init__(self, name: str, argv: Sequence[str], log: Path, ports: Sequence[int] = (),
                 env: dict[str, str] | None = None, hold_stdin: bool = False) -> None:
        self.name = name
        self.hold_stdin = hold_stdin  # a child that stops when its stdin closes (the publisher)
        self.argv = list(argv)
        self.log_path = log
        self.ports = tuple(ports)
        self.env = env
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.alive():
            return
        if self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in close()
        self._proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.PIPE if self.hold_stdin else subprocess.DEVNULL,
                                      env=self.env, start_new_session=True)
        self.starts += 1
        deadline = time.monotonic() + READY_TIMEOUT_S
        for port in self.ports:
            wait_port(port, deadline, alive=self)

    def reap(self) -> None:
        """Collect a killed incarnation (so it leaves no zombie, nor an open stdin pipe)."""
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=STOP_GRACE_S)
            if self._proc.returncode is not None and self._proc.stdin is not None:
                self._proc.stdin.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGCONT)  # a hung process cannot act on SIGTERM
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_GRACE_S)
        if proc.stdin is not None:
            proc.stdin.close()

    def close(self) -> None:
        self.stop()
        if self._log is not None:
            self._log.close()
            self._log = None


class PrivateNats(ChildService):
    """A nats-server with JetStream on a free loopback port and a store of its own."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        store = workdir / f"nats-{self.port}"
        store.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        super().__init__("nats", [binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(store)],
                         workdir / f"nats-{self.port}.log", ports=[self.port])

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"


def _postgres_bin(tool: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"))
    if not found:
        raise ServiceError(f"no PostgreSQL {tool} under /usr/lib/postgresql (Debian's postgresql)")
    return str(found[-1])


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb in a temporary directory), on a free port.

    initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` user.
    A kill hits the postmaster; `start` runs `pg_ctl start` again (crash recovery included).
    """

    process_group = False  # a kill hits the postmaster alone, as a crash of it would

    def __init__(self, port: int | None = None) -> None:
        self.name = "postgres"
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="lt-chaos-pg-"))
        self.data = self.dir / "data"
        self.log_path = self.dir / "postgres.log"
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run([_postgres_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                   "--no-sync", "-E", "UTF8"])

    def _run(self, argv: list[str]) -> None:
        done = subprocess.run([*self._as_user, *argv], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise ServiceError(f"{' '.join(argv[:2])} failed: {done.stdout[-1000:]} {done.stderr[-1000:]}")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def pid(self) -> int | None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:  # a killed postmaster can linger as a zombie (its parent is whoever adopted it)
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return None
        return None if state in ("Z", "X") else pid

    def alive(self) -> bool:
        return self.pid is not None

    def start(self) -> None:
        if self.alive():
            return
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:  # backends of a killed postmaster may hold its shared memory for a moment
            try:
                self._run([_postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log_path), "-w",
                           "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
                           "start"])
                break
            except ServiceError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        wait_port(self.port, deadline)

    def stop(self) -> None:
        if self.alive():
            self._run([_postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])

    def close(self) -> None:
        with contextlib.suppress(ServiceError, subprocess.TimeoutExpired):
            self.stop()
        pid = self.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)
