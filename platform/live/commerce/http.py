"""The commerce routes under ``/api/v1``, mounted beside the API by ``setup_commerce``.

Handlers stay thin: authentication and bodies through the API's own helpers (``Api.session``,
``Api.body``...), validation through ``live.commerce.validation``, the work through
``Commerce`` and ``AdBreaks``, refusals as ``ApiError`` rendered by the API's one error shape.
Every money-moving route runs under an Idempotency-Key (``IdempotencyKeys.once``). The
webhook is the one route without a bearer token: its HMAC signature is its authentication.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from live.api.app import Api, json_errors
from live.api.errors import ApiError, not_found
from live.api.openapi import API_PREFIX
from live.api.ratelimit import TokenBuckets
from live.commerce import validation as v
from live.commerce.ads import AdBreaks
from live.commerce.idempotency import Answer, IdempotencyKeys, check_key, fingerprint
from live.commerce.openapi import commerce_paths, commerce_schemas
from live.commerce.provider import ProviderEvent
from live.commerce.service import Commerce
from live.commerce.signing import HEADER, SignatureError, verify

log = logging.getLogger("live.commerce")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: A webhook body larger than this is not one of ours.
WEBHOOK_MAX_BYTES = 64 * 1024


class CommerceRoutes:
    def __init__(self, api: Api, commerce: Commerce, ads: AdBreaks, webhook_secret: bytes) -> None:
        self.api = api
        self.commerce = commerce
        self.ads = ads
        self.secret = webhook_secret
        settings = commerce.settings
        self.keys = IdempotencyKeys(
            commerce.store, settings.idempotency_ttl_s, settings.idempotency_lock_s, commerce.clock
        )
        self.cheer_limits = TokenBuckets(settings.cheer_rate, settings.cheer_rate_max_accounts)

    async def _money(
        self,
        request: web.Request,
        account_id: int,
        body: Any,
        work: Callable[[str], Awaitable[tuple[int, dict[str, Any]]]],
    ) -> web.Response:
        key = check_key(
            request.headers.get("Idempotency-Key"), self.commerce.settings.idempotency_key_max_chars
        )

        async def run() -> Answer:
            status, answer = await work(key)
            return Answer(status, answer)

        answer = await self.keys.once(account_id, key, fingerprint(request.method, request.path, body), run)
        return web.json_response(
            answer.body, status=answer.status, headers={"Idempotency-Key": key, "Cache-Control": "no-store"}
        )

    # ---------------------------------------------------------------- wallet and bits

    async def wallet(self, request: web.Request) -> web.Response:
        session, _ = await self.api.session(request)
        return web.json_response(
            await self.commerce.wallet(session.account.id), headers={"Cache-Control": "no-store"}
        )

    async def buy_bits(self, request: web.Request) -> web.Response:
        session, _ = await self.api.session(request)
        body = v.body_object(await self.api.body(request))
        bits = v.positive_int(body, "bits")
        currency = v.currency(body, self.commerce.settings)
        card = v.card(body)
        account = session.account.id
        return await self._money(
            request,
            account,
            body,
            lambda key: self.commerce.buy_bits(account, bits, currency, card, key),
        )

    async def refund(self, request: web.Request) -> web.Response:
        session, _ = await self.api.session(request)
        intent = v.provider_id(request.match_info["id"])
        account = session.account.id
        return await self._money(
            request,
            account,
            {"payment_intent": intent},
            lambda key: self.commerce.refund(account, intent, key),
        )

    async def cheer(self, request: web.Request) -> web.Response:
        session, _ = await self.api.session(request)
        channel = await self.api.channel_from_path(request)
        body = v.body_object(await self.api.body(request))
        bits = v.positive_int(body, "bits", self.commerce.settings.max_cheer_bits)
        message = v.text(body, "message", 200)
        account = session.account
        # before the key is claimed: a throttled cheer books nothing and its key stays usable
        wait = self.cheer_limits.take(str(account.id), time.monotonic())
        if wait > 0:
            raise ApiError(429, "rate_limited",
                           f"too many cheers from this account; retry in {math.ceil(wait)} s",
                           retry_after_s=wait)
        return await self._money(
            request,
            account.id,
            body,
            lambda key: self.commerce.cheer(
                account.id,
                account.username,
                channel.name,
                bits,
                message,
                key,
            ),
        )

    # ---------------------------------------------------------------- subscriptions

    async def subscribe(self, request: web.Request) -> web.Response:
        session, _ = await self.api.session(request)
        channel = await self.api.channel_from_path(request)
        body = v.body_object(await self.api.body(request))
        tier = body.get("tier")
        if type(tier) is not int:
            raise ApiError(400, "unknown_tier", "tier: must be the integer 1, 2 or 3", field="tier")
        currency = v.currency(body, self.commerce.settings)
        card = v.card(body)
        gift_to = v.optional_username(body, "gift_to")
        account = session.account.id
        return await self._money(
            request,
            account,
            body,
            lambda key: self.commerce.subscribe(
                account,
                channel.name,
                tier,
                currency,
                card,
                gift_to,
                key,
            ),
        )

    async def subscription(self, request: web.Request) -> web.Response:
        session, _ = await self.api.session(request)
        channel = await self.api.channel_from_path(request)
        view = await self.commerce.subscription(channel.name, session.account.id)
        if view is None:
            raise not_found(f"you have never subscribed to {channel.name!r}")
        return web.json_response(view, headers={"Cache-Control": "no-store"})

    async def cancel(self, request: web.Request) -> web.Response:
        session, _ = await self.api.session(request)
        channel = await self.api.channel_from_path(request)
        return web.json_response(await self.commerce.cancel(session.account.id, channel.name))

    # ---------------------------------------------------------------- earnings and ads

    async def earnings(self, request: web.Request) -> web.Response:
        channel, _ = await self.api.owned_channel(request)
        return web.json_response(
            await self.commerce.earnings(channel.name), headers={"Cache-Control": "no-store"}
        )

    async def start_ad_break(self, request: web.Request) -> web.Response:
        channel, _ = await self.api.owned_channel(request)
        body = v.body_object(await self.api.body(request))
        duration = v.positive_int(body, "duration_s", 10_000)
        ad_break = await self.ads.start(channel.name, duration)
        return web.json_response(
            {
                "id": ad_break.id,
                "channel": channel.name,
                "starts_at": ad_break.starts_at,
                "duration_s": ad_break.duration_s,
            },
            status=201,
        )

    async def _break(self, request: web.Request) -> Any:
        text = request.match_info["id"]
        if not text.isdigit() or len(text) > 18:
            raise not_found(f"no ad break {text[:32]!r}")
        return await self.ads.get(int(text))

    async def asset_list(self, request: web.Request) -> web.Response:
        ad_break = await self._break(request)
        viewer = await self.api.viewer(request)
        subscriber = viewer is not None and await self.commerce.is_subscriber(ad_break.channel, viewer.id)
        return web.json_response(
            {"ASSETS": self.ads.assets(ad_break, subscriber)},
            headers={"Cache-Control": "private, no-store", "Vary": "Authorization, Cookie"},
        )

    async def impression(self, request: web.Request) -> web.Response:
        ad_break = await self._break(request)
        body = v.body_object(await self.api.body(request))
        creative = body.get("creative")
        if type(creative) is not int:
            raise ApiError(400, "invalid_field", "creative: must be an integer index", field="creative")
        viewer = await self.api.viewer(request)
        who = f"account:{viewer.id}" if viewer is not None else f"address:{self.api.client(request)}"
        subscriber = viewer is not None and await self.commerce.is_subscriber(ad_break.channel, viewer.id)
        booked = await self.ads.impression(ad_break, who, creative, subscriber)
        return web.json_response({"booked": booked}, status=202)

    # ---------------------------------------------------------------- provider webhooks

    async def webhook(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > WEBHOOK_MAX_BYTES:
            raise ApiError(413, "body_too_large", "webhook body too large")
        body = await request.content.read(WEBHOOK_MAX_BYTES + 1)
        if len(body) > WEBHOOK_MAX_BYTES:
            raise ApiError(413, "body_too_large", "webhook body too large")
        try:
            verify(
                self.secret,
                request.headers.get(HEADER),
                body,
                self.commerce.clock(),
                self.commerce.settings.webhook_tolerance_s,
            )
            event = ProviderEvent.parse(body)
        except SignatureError as error:
            raise ApiError(400, "bad_signature", str(error)) from None
        except ValueError as error:
            raise ApiError(400, "bad_event", str(error)) from None
        outcome = await self.commerce.apply_event(event)
        log.info("webhook %s %s: %s", event.id, event.type, outcome)
        return web.json_response({"received": True, "outcome": outcome})


def _json_errors(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        return await json_errors(request, handler)

    return wrapped


def _not_allowed(allowed: list[str]) -> Handler:
    async def refuse(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"error": "method_not_allowed", "message": f"{request.method} is not allowed here"},
            status=405,
            headers={"Allow": ", ".join(allowed)},
        )

    return refuse


def setup_commerce(
    app: web.Application, api: Api, commerce: Commerce, ads: AdBreaks, webhook_secret: bytes
) -> CommerceRoutes:
    """Add the commerce routes to ``app`` under ``/api/v1`` (answers their state, for tests)."""
    routes = CommerceRoutes(api, commerce, ads, webhook_secret)
    p = API_PREFIX
    table: list[tuple[str, str, Handler]] = [
        ("GET", "/me/wallet", routes.wallet),
        ("POST", "/me/bits", routes.buy_bits),
        ("POST", "/me/purchases/{id}/refund", routes.refund),
        ("POST", "/channels/{name}/cheers", routes.cheer),
        ("POST", "/channels/{name}/subscriptions", routes.subscribe),
        ("GET", "/channels/{name}/subscription", routes.subscription),
        ("DELETE", "/channels/{name}/subscription", routes.cancel),
        ("GET", "/channels/{name}/earnings", routes.earnings),
        ("POST", "/channels/{name}/ad-breaks", routes.start_ad_break),
        ("GET", "/ad-breaks/{id}/asset-list", routes.asset_list),
        ("POST", "/ad-breaks/{id}/impressions", routes.impression),
        ("POST", "/payments/webhook", routes.webhook),
    ]
    by_path: dict[str, list[tuple[str, Handler]]] = {}
    for method, path, handler in table:
        by_path.setdefault(path, []).append((method, handler))
    for path, handlers in by_path.items():
        resource = app.router.add_resource(p + path)
        for method, handler in handlers:
            resource.add_route(method, _json_errors(handler))
        # These routes sit beside the /api/v1 sub-application, which would answer any other
        # method with 404: say 405 and what is allowed, as the API does (RFC 9110 15.5.6).
        resource.add_route("*", _not_allowed(sorted(method for method, _ in handlers)))
    api.document_routes(commerce_paths(), commerce_schemas())
    return routes
