"""Run a CDN tier on this machine: real nginx processes, one per node, each with its own
configuration, cache and logs under one data directory.

``live cdn`` uses it in the foreground; tests and benchmarks use it to put shields and edges in
front of a real origin. Each nginx runs in its own process group (master and workers), so a
node can be stopped, or killed like a crashed machine (``kill``), as a whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from live.cdn.config import (
    ERROR_LOG,
    Listen,
    NodeSettings,
    Role,
    TlsFiles,
    Upstream,
    render,
)

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


class CdnError(RuntimeError):
    """The tier cannot start as asked (the message says why and what to do)."""


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """A tier: ``shields`` shields in front of ``origins``, ``edges`` edges in front of them."""

    origins: tuple[Upstream, ...]
    data_dir: Path
    shields: int = 1
    edges: int = 2
    host: str = "127.0.0.1"
    #: Shields listen on base_port, base_port+1, ...; edges on the ports after them.
    base_port: int = 8400
    cache_size: str = "1g"
    tls: TlsFiles | None = None
    workers: int = 1
    target_duration_s: int = 2
    nginx: str | None = None  # path to the nginx binary; default: PATH, then /usr/sbin/nginx

    def __post_init__(self) -> None:
        if not self.origins:
            raise ValueError("the tier needs at least one --origin")
        if self.shields < 0 or self.edges < 1:
            raise ValueError("--edges must be >= 1 and --shields >= 0")
        if not 0 < self.base_port <= 65535 - self.shields - self.edges:
            raise ValueError(f"--base-port {self.base_port}: the tier's ports must fit below 65536")


@dataclass(frozen=True, slots=True)
class NodePlan:
    name: str
    settings: NodeSettings
    directory: Path

    @property
    def role(self) -> Role:
        return self.settings.role

    @property
    def url(self) -> str:
        listen = self.settings.listen
        return f"{self.settings.scheme}://{listen.host}:{listen.port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "nginx.conf"


def plan(cluster: ClusterSettings) -> list[NodePlan]:
    """Shields first (their ports first), then edges, which point at every shield.

    With no shields the edges fetch straight from the origins.
    """
    nodes: list[NodePlan] = []
    port = cluster.base_port
    shield_upstreams: list[Upstream] = []
    for role, count in ((Role.SHIELD, cluster.shields), (Role.EDGE, cluster.edges)):
        for index in range(count):
            name = f"{role.value}{index}"
            directory = cluster.data_dir / name
            upstreams = tuple(shield_upstreams) if role is Role.EDGE and shield_upstreams \
                else cluster.origins
            settings = NodeSettings(
                role=role, upstreams=upstreams, listen=Listen(cluster.host, port),
                cache_dir=directory / "cache", cache_size=cluster.cache_size, run_dir=directory,
                tls=cluster.tls if role is Role.EDGE else None, workers=cluster.workers,
                target_duration_s=cluster.target_duration_s, user=_worker_user(),
            )
            nodes.append(NodePlan(name, settings, directory))
            if role is Role.SHIELD:
                shield_upstreams.append(Upstream(cluster.host, port))
            port += 1
    return nodes


def _worker_user() -> str | None:
    """Started as root, nginx would hand its workers to ``nobody``, who cannot write the data
    directory we made; keep them as the user who runs ``live cdn``."""
    if os.geteuid() != 0:
        return None
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def find_nginx(explicit: str | None = None) -> str:
    candidates = [explicit] if explicit else [shutil.which("nginx"), "/usr/sbin/nginx"]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise CdnError(f"nginx not found ({explicit or 'not on PATH and no /usr/sbin/nginx'}): "
                   "install Debian's package (apt-get install nginx)")


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host.strip("[]"), port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CdnError(f"port {host}:{port} is taken; choose another --base-port") from exc
            raise CdnError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


async def _accepting(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host.strip("[]"), port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


@dataclass
class RunningNode:
    plan: NodePlan
    process: asyncio.subprocess.Process

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def url(self) -> str:
        return self.plan.url

    def error_log_tail(self, limit: int = 2000) -> str:
        try:
            return (self.plan.directory / ERROR_LOG).read_text(errors="replace")[-limit:]
        except OSError:
            return ""


@dataclass
class CdnCluster:
    """Start with ``async with CdnCluster(settings) as cluster``; stops every node on exit."""

    settings: ClusterSettings
    nodes: list[RunningNode] = field(default_factory=list)

    async def __aenter__(self) -> CdnCluster:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    def node(self, name: str) -> RunningNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def urls(self, role: Role) -> list[str]:
        return [n.url for n in self.nodes if n.plan.role is role]

    async def start(self) -> None:
        nginx = find_nginx(self.settings.nginx)
        plans = plan(self.settings)
        for node_plan in plans:
            listen = node_plan.settings.listen
            check_port_free(listen.host, listen.port)
        try:
            for node_plan in plans:
                self.nodes.append(await self._start_node(nginx, node_plan))
        except BaseException:
            await self.stop()
            raise

    async def _start_node(self, nginx: str, node_plan: NodePlan) -> RunningNode:
        for sub in ("cache", "tmp"):
            (node_plan.directory / sub).mkdir(parents=True, exist_ok=True)
        node_plan.config_path.write_text(render(node_plan.settings))
        process = await asyncio.create_subprocess_exec(
            nginx, "-p", str(node_plan.directory), "-c", str(node_plan.config_path),
            "-e", str(node_plan.directory / ERROR_LOG), "-g", "daemon off;",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
        )
        node = RunningNode(node_plan, process)
        listen = node_plan.settings.listen
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while not await _accepting(listen.host, listen.port):
            if process.returncode is not None or loop.time() > deadline:
                await self._terminate(node)
                raise CdnError(f"{node_plan.name}: nginx did not start "
                               f"(exit {process.returncode}): {node.error_log_tail()}")
            await asyncio.sleep(0.05)
        return node

    async def restart(self, name: str) -> RunningNode:
        """Start a node that died (``kill``, a crash) again with the same configuration; its cache
        directory survives, like a rebooted machine's disk. A running node is left as it is."""
        node = self.node(name)
        if node.process.returncode is None:
            return node
        await node.process.wait()
        fresh = await self._start_node(find_nginx(self.settings.nginx), node.plan)
        self.nodes[self.nodes.index(node)] = fresh
        return fresh

    def kill(self, name: str) -> None:
        """SIGKILL a node's master and workers at once, like a machine that died."""
        node = self.node(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.process.pid, signal.SIGKILL)

    async def _terminate(self, node: RunningNode) -> None:
        process = node.process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)  # nginx: fast shutdown
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                pass
        # workers outliving a killed master, or a master that would not stop
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if process.returncode is None:
            await process.wait()

    async def stop(self) -> None:
        nodes, self.nodes = self.nodes, []
        await asyncio.gather(*(self._terminate(node) for node in nodes))


async def run_tier(settings: ClusterSettings, metrics_port: int | None = None,
                   duration_s: float | None = None) -> None:
    """``live cdn``: start the tier, print one line per node, run until SIGINT/SIGTERM."""
    from aiohttp import web

    from live.cdn.metrics import TierMetrics, metrics_app

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner: web.AppRunner | None = None
    try:
        async with CdnCluster(settings) as cluster:
            for node in cluster.nodes:
                print(f"{node.plan.role.value} {node.url}", flush=True)
            if metrics_port is not None:
                metrics = TierMetrics((n.name, n.plan.role, n.url, n.plan.directory)
                                      for n in cluster.nodes)
                runner = web.AppRunner(metrics_app(metrics), access_log=None)
                await runner.setup()
                await web.TCPSite(runner, settings.host, metrics_port).start()
                print(f"metrics http://{settings.host}:{metrics_port}/metrics", flush=True)
            exited = [asyncio.ensure_future(n.process.wait()) for n in cluster.nodes]
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait([stopping, *exited], timeout=duration_s,
                               return_when=asyncio.FIRST_COMPLETED)
            for future in (stopping, *exited):
                future.cancel()
            dead = [n.name for n in cluster.nodes if n.process.returncode is not None]
            if dead:
                raise CdnError(f"nginx exited on {', '.join(dead)}: "
                               + cluster.node(dead[0]).error_log_tail(500))
    finally:
        if runner is not None:
            await runner.cleanup()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
