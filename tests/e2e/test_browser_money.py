"""End to end: the viewer's money path on the watch page, in headless Chromium.

``money_path.cjs`` drives three browser contexts against `live serve` with its embedded sandbox
provider, whose webhooks travel the real path (signed HTTP requests to the platform's own
``/api/v1/payments/webhook``, late and sometimes twice). A viewer buys bits with a test card,
cheers (an XSS payload as the message; its first answer is lost, the retry reuses the key), is
refused a cheer over its balance, a cheer over its rate and a declined card; a second viewer
sees the cheer in chat as text and subscribes. Then the books must prove it:
`live ledger check`'s core passes, the streamer's earnings hold exactly the one cheer, and the
wallet holds exactly what the refused cheer left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from live.api.ratelimit import Rate
from live.commerce.cli import ledger_check
from live.commerce.settings import CommerceSettings, PaymentsSettings
from live.config import ServeSettings
from live.serve import Platform
from live.webui import default_web_root

from ..conftest import skip_or_fail

pytestmark = [pytest.mark.slow]

CHROMIUM = Path(os.environ.get("LIVETWIN_CHROMIUM", "/usr/bin/chromium"))
SCRIPT = Path(__file__).with_name("money_path.cjs")
WEB_ROOT = default_web_root()
CHANNEL = "cheers_show"
PASSWORD = "correct horse battery staple"
FLOW_TIMEOUT_S = 150


async def _browse(base: str) -> tuple[dict[str, Any], str]:
    browser = await asyncio.create_subprocess_exec(
        "node", str(SCRIPT), "--web-root", str(WEB_ROOT), "--base", base, "--channel", CHANNEL,
        "--chromium", str(CHROMIUM), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(browser.communicate(), FLOW_TIMEOUT_S)
    finally:
        if browser.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                browser.kill()
            await browser.wait()
    log = err.decode(errors="replace")
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    assert lines and lines[-1]["event"] == "done", log[-4000:]
    return lines[-1], log


async def _flow(tmp: Path) -> dict[str, Any]:
    # three cheer requests per account per hour (a cheer, its retry, the refused one): the fourth
    # in the flow meets the rate limit
    money = PaymentsSettings(commerce=CommerceSettings(cheer_rate=Rate(3, 1 / 3600)))
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp, payments=money)
    async with Platform(settings) as platform, aiohttp.ClientSession() as http:
        api = f"http://127.0.0.1:{platform.ports.http}/api/v1"

        async def call(method: str, path: str, token: str | None = None,
                       body: Any = None) -> tuple[int, Any]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with http.request(method, api + path, json=body, headers=headers) as response:
                return response.status, await response.json(content_type=None)

        async def login(name: str) -> str:
            status, session = await call("POST", "/sessions", body={"username": name, "password": PASSWORD})
            assert status == 201, session
            return str(session["token"])

        credentials = {"username": "streamer", "password": PASSWORD}
        assert (await call("POST", "/accounts", body=credentials))[0] == 201
        streamer = await login("streamer")
        assert (await call("POST", "/channels", streamer, {"name": CHANNEL}))[0] == 201
        browsed, log = await _browse(f"http://127.0.0.1:{platform.ports.http}")
        assert browsed["ok"], (browsed.get("error"), log[-4000:])
        _, earnings = await call("GET", f"/channels/{CHANNEL}/earnings", streamer)
        _, wallet = await call("GET", "/me/wallet", await login("viewer_one"))
    checked = await ledger_check(None, tmp)
    return {"browser": browsed, "earnings": earnings, "wallet": wallet, "ledger_check": checked}


@pytest.fixture(scope="module")
def money(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    for tool, present in (("Node.js 20", shutil.which("node")),
                          (f"Chromium at {CHROMIUM}", CHROMIUM.is_file()),
                          ("playwright-core: `npm ci --prefix platform/web`",
                           (WEB_ROOT / "node_modules" / "playwright-core").is_dir())):
        if not present:
            skip_or_fail(f"needs {tool}")
    return asyncio.run(_flow(tmp_path_factory.mktemp("money")))


def test_a_viewer_buys_bits_and_a_second_viewer_sees_the_cheer_as_text(money: dict[str, Any]) -> None:
    seen = money["browser"]
    assert not seen["problems"], seen["problems"]
    assert seen["anonymous"]["formsHidden"] is True
    assert seen["oneLandedOn"] == f"/watch/{CHANNEL}"
    assert seen["startBits"] == "0"
    assert any(p.startswith("500 bits · $7.00") for p in seen["packs"]), seen["packs"]
    assert seen["afterBuy"] == {"balance": "500", "status": "payment succeeded: 500 bits added"}
    assert seen["seenByTwo"]["user"] == "viewer_one" and seen["seenByTwo"]["bits"] == "100"
    assert seen["seenByTwo"]["text"].startswith("cheered 100 bits: <img src=x onerror="), seen["seenByTwo"]
    assert seen["seenByTwo"]["imgs"] == 0 and seen["seenByTwo"]["ran"] == 0
    assert seen["afterCheer"] == "400"


def test_a_cheer_whose_answer_was_lost_is_retried_with_its_key_and_booked_once(
        money: dict[str, Any]) -> None:
    seen = money["browser"]
    assert "network error" in seen["lostAnswer"], seen["lostAnswer"]
    first, retry = seen["cheerKeys"]
    assert first == retry and first.startswith("cheer-"), seen["cheerKeys"]
    assert seen["cheersInTwosChat"] == 1 and money["earnings"]["unpaid"]["USD"] == 100 + 249


def test_refusals_over_the_balance_the_rate_or_a_declined_card_are_shown_and_move_nothing(
        money: dict[str, Any]) -> None:
    seen = money["browser"]
    assert "needs 1000 in the wallet" in seen["refusal"], seen["refusal"]
    assert seen["afterRefusal"] == 400 and seen["cheersInTwosChat"] == 1
    assert "too many cheers from this account" in seen["rateLimited"] and "(wait " in seen["rateLimited"]
    assert seen["afterRateLimit"] == "400"
    assert "declined" in seen["declined"] and seen["afterDecline"] == "400"
    assert money["wallet"]["bits"] == 400
    statuses = sorted(p["status"] for p in money["wallet"]["purchases"])
    assert statuses == ["requires_payment_method", "succeeded"], money["wallet"]["purchases"]


def test_the_books_balance_and_the_streamer_earned_the_cheer_and_the_subscription(
        money: dict[str, Any]) -> None:
    assert money["browser"]["subscribeButton"] == "Subscribed (tier 1)"
    assert money["ledger_check"] == 0
    earnings = money["earnings"]
    # 100 bits at 1 cent face value, all to the channel; tier 1 is $4.99 at a 50% share (249 cents)
    assert earnings["unpaid"] == {"USD": 100 + 249}, earnings
    assert earnings["active_subscribers"] == 1
