"""Monetization inside `live serve`: open the books, pick the provider, join chat and the origin.

``open_monetization`` opens everything on the platform's exit stack. Without
``--payments-url`` the platform embeds the sandbox provider (the embedded default needs no
outside service) and its webhooks still travel the real path: signed HTTP requests to the
platform's own ``/api/v1/payments/webhook``, late, duplicated and out of order. Chat learns who
subscribes through ``SubscriberRelationships`` and shows booked cheers; the origin marks ad
breaks through ``OriginAdMarker``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from pathlib import Path

from aiohttp import web

from live.api.app import Api
from live.api.repository import Repository
from live.chat.auth import ChatUser
from live.chat.broker import Broker
from live.chat.moderation import Relationship
from live.chat.protocol import Cheer, now_ms
from live.commerce.ads import AdBreaks
from live.commerce.http import setup_commerce
from live.commerce.provider import HttpPaymentProvider, PaymentProvider
from live.commerce.sandbox import SandboxCore
from live.commerce.sandbox_server import Chaos, WebhookDelivery
from live.commerce.service import CheerNotice, Commerce
from live.commerce.settings import PaymentsSettings
from live.commerce.storage import open_commerce_store
from live.origin.store import DateRange, OriginStore

log = logging.getLogger("live.commerce")


class SubscriberRelationships:
    """Chat's ``Relationships`` answered from the books: a subscriber while the period runs."""

    def __init__(self, commerce: Commerce) -> None:
        self.commerce = commerce

    async def relationship(self, channel: str, user: ChatUser) -> Relationship:
        return Relationship(subscriber=await self.commerce.is_subscriber(channel, user.account_id))


class OriginAdMarker:
    def __init__(self, origin: OriginStore) -> None:
        self.origin = origin

    def next_boundary(self, channel: str) -> float | None:
        return self.origin.next_segment_boundary(channel)

    def add_date_ranges(self, channel: str, end_s: float, tags: list[str]) -> None:
        self.origin.add_date_range(channel, DateRange(end_s, tuple(tags)))


class Monetization:
    def __init__(
        self, commerce: Commerce, ads: AdBreaks, secret: bytes, delivery: WebhookDelivery | None
    ) -> None:
        self.commerce = commerce
        self.ads = ads
        self.secret = secret
        self.delivery = delivery
        self.relationships = SubscriberRelationships(commerce)
        self._pump: asyncio.Task[None] | None = None

    def mount(self, app: web.Application, api: Api) -> None:
        setup_commerce(app, api, self.commerce, self.ads, self.secret)

    def start(self, http_base: str, *, playlists_elsewhere: bool = False) -> None:
        """Start delivering the embedded sandbox's webhooks to the platform at ``http_base``.

        ``playlists_elsewhere`` (a CDN serves the playlists): ad breaks name their asset list by
        this site's absolute URL, where the viewer's cookie and the creatives are."""
        if playlists_elsewhere:
            self.ads.asset_list_base = http_base.rstrip("/")
        if self.delivery is not None:
            self.delivery.url = f"{http_base.rstrip('/')}/api/v1/payments/webhook"
            self._pump = asyncio.ensure_future(self.delivery.run())

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self.delivery is not None:
            await self.delivery.close()


async def open_monetization(
    stack: contextlib.AsyncExitStack,
    settings: PaymentsSettings,
    database: str | None,
    data_dir: Path,
    repo: Repository,
    broker: Broker,
    origin: OriginStore,
) -> Monetization:
    store = await open_commerce_store(database, data_dir)
    stack.push_async_callback(store.close)
    secret = (settings.webhook_secret or secrets.token_urlsafe(32)).encode()
    provider: PaymentProvider
    delivery: WebhookDelivery | None = None
    if settings.provider_url is None:
        core = SandboxCore()
        provider = core
        delivery = WebhookDelivery(core, "", secret, Chaos(max_delay_s=0.5, duplicate=0.2))
    else:
        if settings.webhook_secret is None:
            raise ValueError("a payment provider URL needs its webhook secret (LIVETWIN_WEBHOOK_SECRET)")
        http_provider = HttpPaymentProvider(settings.provider_url, settings.api_key)
        stack.push_async_callback(http_provider.close)
        provider = http_provider

    async def announce(notice: CheerNotice) -> None:
        badges = ("subscriber",) if await commerce.is_subscriber(notice.channel, notice.account_id) else ()
        await broker.publish(
            notice.channel, Cheer(0, notice.user, notice.bits, notice.message, now_ms(notice.at), badges)
        )

    commerce = Commerce(store, provider, repo, settings.commerce, announce=announce)
    monetization = Monetization(
        commerce, AdBreaks(store, settings.commerce, OriginAdMarker(origin)), secret, delivery
    )
    stack.push_async_callback(monetization.close)
    return monetization
