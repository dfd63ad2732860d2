"""Fixtures shared by every suite (the repository's real RTMP server on an ephemeral port), and
the CI rule that a missing component fails the run instead of hiding behind a skip.

``in_ci()`` is the one reading of the ``CI`` variable every suite uses. In CI a skipped test
is turned into a failure unless its node id is in ``SKIP_ALLOWED_IN_CI`` with the reason it
may skip there; a test that needs a server or a tool therefore proves it was there.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Generator

import pytest
from live.ingest.registry import LiveStreamRegistry
from live.ingest.rtmp.client_protocol import ClientConnection, ClientState
from live.ingest.rtmp.server import RtmpServer, RtmpServerSettings

#: Stream keys the test server accepts, and the channel each one publishes.
STREAM_KEYS = {"key_alpha_123": "alpha", "key_bravo_456": "bravo", "probe_key_1": "probe"}

#: Node ids (or their prefixes) that may skip under CI, each with why. Keep it short.
SKIP_ALLOWED_IN_CI: dict[str, str] = {}


def in_ci() -> bool:
    """True when the run is CI's (``CI`` set to 1, true or yes, any letter case)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def skip_or_fail(reason: str) -> None:
    """Skip locally; in CI a missing component is a failure, not a skip."""
    if in_ci():
        pytest.fail(f"CI needs it: {reason}")
    pytest.skip(reason)


def skip_refused_in_ci(report: pytest.TestReport, allowed: dict[str, str] | None = None) -> bool:
    """Whether ``report`` is a skip that CI must count as a failure (xfails are not skips)."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return False
    allowed = SKIP_ALLOWED_IN_CI if allowed is None else allowed
    return not any(report.nodeid.startswith(prefix) for prefix in allowed)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if in_ci() and skip_refused_in_ci(report):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        report.outcome = "failed"
        report.longrepr = (f"skipped under CI ({reason}); a skip in CI hides a missing component: "
                           "provide it, or add the test to SKIP_ALLOWED_IN_CI with a reason")


def needs_tools(*tools: str) -> pytest.MarkDecorator:
    """Skip locally when a command-line tool is missing; fail in CI (through the hook above)."""
    import shutil

    missing = [tool for tool in tools if shutil.which(tool) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (Debian's ffmpeg)")


async def resolve(stream_key: str) -> str | None:
    return STREAM_KEYS.get(stream_key)


@pytest.fixture
def key_resolver() -> Callable[[str], Awaitable[str | None]]:
    return resolve


@pytest.fixture
def registry() -> LiveStreamRegistry:
    return LiveStreamRegistry()


@pytest.fixture
async def rtmp_server(registry: LiveStreamRegistry) -> AsyncIterator[RtmpServer]:
    server = RtmpServer(
        resolve, registry,
        RtmpServerSettings(port=0, handshake_timeout_s=2.0, idle_timeout_s=10.0),
    )
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def rtmp_publish(
    port: int, key: str,
) -> tuple[ClientConnection, asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a connection and run the publish flow until accepted or rejected (or closed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = ClientConnection("live", f"rtmp://127.0.0.1:{port}/live", key)
    async with asyncio.timeout(5):
        while client.state not in (ClientState.PUBLISHING, ClientState.REJECTED):
            writer.write(client.data_to_send())
            await writer.drain()
            data = await reader.read(65536)
            if not data:
                break
            client.receive_data(data)
    return client, reader, writer
