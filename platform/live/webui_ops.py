"""``/ops``: every live stream with its node, rungs, health and viewers, and the origin's request
rates and errors, for the platform's admins.

The page reads only what operators could read by hand: the public API (``/api/v1/streams``, each
channel's ``viewer_count``) and this node's Prometheus ``/metrics``. ``/metrics`` may be on
another port or need a bearer token (``--metrics-listen``, ``--metrics-token``), which a browser
must not hold, so ``/ops/metrics`` fetches it for an admin's session and passes the text on,
bounded in size and time. Who is an admin is the operator's choice at start
(``live serve --admin NAME``, repeatable): the named accounts must already exist then, so
nobody can sign up under an admin's name later (names are unique in any letter case).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from string import Template
from typing import Final

import aiohttp
from aiohttp import web

from live.api.models import Account
from live.api.repository import Repository
from live.webui import WebUi
from live.webui_account import Accounts, Csrf

#: /metrics of a busy node is tens of KiB; anything past this is not ours to pass on.
METRICS_MAX_BYTES: Final = 2 * 1024 * 1024
METRICS_TIMEOUT_S: Final = 5.0

#: (URL of this node's /metrics, its bearer token or None), asked per request: ports bind late.
MetricsSource = Callable[[], tuple[str, str | None]]


def admin_keys(names: Iterable[str]) -> frozenset[str]:
    """Account names as the store compares them: in any letter case."""
    return frozenset(name.casefold() for name in names)


async def check_admins(repo: Repository, names: Iterable[str]) -> None:
    """Refuse to start with an admin name nobody holds (else the first to sign up as it would
    be an admin)."""
    for name in names:
        if await repo.account_by_username(name) is None:
            raise RuntimeError(f"--admin {name!r}: no such account; sign up first, then restart "
                               "with --admin")


class Ops:
    """The ops page and its metrics pass-through, for accounts named as admins."""

    def __init__(self, ui: WebUi, admins: frozenset[str], node: str, metrics: MetricsSource) -> None:
        if ui.accounts is None:
            raise RuntimeError("the ops page needs the account pages (setup_web with an api)")
        self.accounts: Accounts = ui.accounts
        templates = ui.web_root / "templates"
        self.admins = admins
        self.node = node
        self.metrics_source = metrics
        try:
            self.template = Template((templates / "ops.html").read_text(encoding="utf-8"))
        except OSError as exc:
            raise RuntimeError(f"ops page template missing under {templates}: {exc}") from exc

    def is_admin(self, account: Account | None) -> bool:
        return account is not None and account.username.casefold() in self.admins

    async def _admin(self, request: web.Request) -> Account:
        account = await self.accounts.account(request)
        if account is None:
            raise web.HTTPSeeOther("/login?next=/ops")
        if not self.is_admin(account):
            raise web.HTTPForbidden(text="the ops page is for the platform's admins\n",
                                    headers={"Cache-Control": "no-store"})
        return account

    async def page(self, request: web.Request) -> web.StreamResponse:
        account = await self._admin(request)
        csrf = Csrf(request, self.accounts.secure)
        body = self.template.substitute(nav=self.accounts.nav(account, csrf),
                                        node=html.escape(self.node, quote=True))
        headers = {**self.accounts.headers(request), "Cache-Control": "no-store"}
        return csrf.attach(web.Response(text=body, content_type="text/html", headers=headers))

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        await self._admin(request)
        url, token = self.metrics_source()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        timeout = aiohttp.ClientTimeout(total=METRICS_TIMEOUT_S)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http, \
                    http.get(url, headers=headers) as response:
                text = await response.content.read(METRICS_MAX_BYTES + 1)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise web.HTTPBadGateway(text=f"cannot read {url}: {exc}\n") from None
        if status != 200 or len(text) > METRICS_MAX_BYTES:
            raise web.HTTPBadGateway(text=f"{url} answered {status} ({len(text)} bytes)\n")
        return web.Response(body=text, content_type="text/plain",
                            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


def setup_ops(app: web.Application, ops: Ops) -> None:
    app.router.add_get("/ops", ops.page)
    app.router.add_get("/ops/metrics", ops.metrics)
