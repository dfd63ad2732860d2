"""The commerce part of the OpenAPI document (``/api/v1/openapi.json``), as data.

``setup_commerce`` adds it to the API's served document, and a test holds it to the routes
actually mounted. Every money-moving operation declares its ``Idempotency-Key`` header and the
statuses a client must handle: 402 for a declined card or too few bits, 422 for a key reused
with other parameters, 502 when the provider did not answer (retry with the same key).
"""

from __future__ import annotations

from typing import Any

from live.commerce.settings import CommerceSettings

_ERROR = {"$ref": "#/components/schemas/Error"}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "channel name",
}
_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "an unknown or malformed id is 404",
}
_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "pattern": "^[!-~]([ -~]{0,253}[!-~])?$"},
    "description": "unique per intended operation; a retry with the same key gets the first answer",
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _ok(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object", "required": required, "properties": properties}}
        },
    }


_AUTH = {"401": _error("missing, expired or revoked bearer token")}
_BAD = {
    "400": _error("validation failed; `field` names the member at fault"),
    "413": _error("request body over the size limit"),
    "415": _error("request body is not application/json"),
}
_MONEY = {
    **_AUTH,
    **_BAD,
    "422": _error("this Idempotency-Key was used with other parameters"),
    "502": _error("the payment provider did not answer; retry with the same key"),
}
_CARD = {"type": "string", "pattern": "^[0-9]{12,19}$", "description": "card number (sandbox test cards)"}
_SETTINGS = CommerceSettings()
_CURRENCY = {
    "type": "string",
    "enum": [_SETTINGS.currency],
    "description": "ISO 4217; the platform charges in one currency (others: 400)",
}
_PACK = {
    "type": "integer",
    "enum": [pack.bits for pack in _SETTINGS.bit_packs],
    "description": "a pack size (others: 400)",
}
_TEXT = {"type": "string", "maxLength": 200, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"}
_CHEER = {"type": "integer", "minimum": 1, "maximum": _SETTINGS.max_cheer_bits}


def commerce_schemas() -> dict[str, Any]:
    loose = {"type": "object", "additionalProperties": True}
    return {
        name: dict(loose)
        for name in (
            "Wallet",
            "PaymentAccepted",
            "Cheer",
            "Refund",
            "Subscription",
            "Earnings",
            "AdBreak",
            "AssetList",
            "ImpressionResult",
            "WebhookResult",
        )
    }


def commerce_paths() -> dict[str, Any]:
    return {
        "/me/wallet": {
            "get": {
                "operationId": "getWallet",
                "summary": "your bits and recent purchases",
                "security": _BEARER,
                "responses": {"200": _ok("the wallet", "Wallet"), **_AUTH},
            }
        },
        "/me/bits": {
            "post": {
                "operationId": "buyBits",
                "summary": "buy a bit pack; the bits arrive when the payment succeeds",
                "security": _BEARER,
                "parameters": [_KEY],
                "requestBody": _body({"bits": _PACK, "currency": _CURRENCY, "card": _CARD}, ["bits", "card"]),
                "responses": {
                    "202": _ok("payment accepted", "PaymentAccepted"),
                    "402": _error("the card was declined"),
                    **_MONEY,
                },
            }
        },
        "/me/purchases/{id}/refund": {
            "parameters": [_ID],
            "post": {
                "operationId": "refundPurchase",
                "summary": "refund a bit purchase whose bits are unspent",
                "security": _BEARER,
                "parameters": [_KEY],
                "responses": {
                    "200": _ok("refunded", "Refund"),
                    "404": _error("no such purchase of yours"),
                    "409": _error("not refundable (not credited yet, or bits spent)"),
                    **_MONEY,
                },
            },
        },
        "/channels/{name}/cheers": {
            "parameters": [_NAME],
            "post": {
                "operationId": "cheer",
                "summary": "cheer bits in the channel's chat",
                "security": _BEARER,
                "parameters": [_KEY],
                "requestBody": _body({"bits": _CHEER, "message": _TEXT}, ["bits"]),
                "responses": {
                    "201": _ok("booked and shown in chat", "Cheer"),
                    "402": _error("the wallet holds fewer bits"),
                    "404": _error("no such channel"),
                    "429": {
                        **_error("too many cheers from this account"),
                        "headers": {
                            "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
                        },
                    },
                    **_MONEY,
                },
            },
        },
        "/channels/{name}/subscriptions": {
            "parameters": [_NAME],
            "post": {
                "operationId": "subscribe",
                "summary": "subscribe (or gift a subscription) at tier 1-3, monthly",
                "security": _BEARER,
                "parameters": [_KEY],
                "requestBody": _body(
                    {
                        "tier": {"type": "integer", "enum": [tier.number for tier in _SETTINGS.tiers]},
                        "currency": _CURRENCY,
                        "card": _CARD,
                        "gift_to": {"type": "string", "pattern": "^[A-Za-z0-9_]{3,25}$"},
                    },
                    ["tier", "card"],
                ),
                "responses": {
                    "202": _ok("payment accepted", "PaymentAccepted"),
                    "402": _error("the card was declined"),
                    "404": _error("no such channel or user"),
                    "409": _error("already subscribed"),
                    **_MONEY,
                },
            },
        },
        "/channels/{name}/subscription": {
            "parameters": [_NAME],
            "get": {
                "operationId": "getSubscription",
                "summary": "your subscription to the channel",
                "security": _BEARER,
                "responses": {
                    "200": _ok("the subscription", "Subscription"),
                    "404": _error("never subscribed"),
                    **_AUTH,
                },
            },
            "delete": {
                "operationId": "cancelSubscription",
                "summary": "cancel at the end of the period",
                "security": _BEARER,
                "responses": {
                    "200": _ok("canceling", "Subscription"),
                    "404": _error("no active subscription"),
                    "502": _error("the provider did not answer"),
                    **_AUTH,
                },
            },
        },
        "/channels/{name}/earnings": {
            "parameters": [_NAME],
            "get": {
                "operationId": "getEarnings",
                "summary": "what the channel earned and was paid (owner)",
                "security": _BEARER,
                "responses": {
                    "200": _ok("earnings", "Earnings"),
                    "403": _error("not the owner"),
                    "404": _error("no such channel"),
                    **_AUTH,
                },
            },
        },
        "/channels/{name}/ad-breaks": {
            "parameters": [_NAME],
            "post": {
                "operationId": "startAdBreak",
                "summary": "start an ad break at the next segment boundary (owner)",
                "security": _BEARER,
                "requestBody": _body(
                    {"duration_s": {"type": "integer", "minimum": 30, "maximum": 180}}, ["duration_s"]
                ),
                "responses": {
                    "201": _ok("the break", "AdBreak"),
                    "403": _error("not the owner"),
                    "404": _error("no such channel"),
                    "409": _error("the channel is not live"),
                    "429": _error("too soon after the last break"),
                    **_AUTH,
                    **_BAD,
                },
            },
        },
        "/ad-breaks/{id}/asset-list": {
            "parameters": [_ID],
            "get": {
                "operationId": "getAdAssetList",
                "summary": "the interstitial's asset list for this viewer (empty for subscribers)",
                "responses": {
                    "200": _ok("HLS interstitial asset list", "AssetList"),
                    "404": _error("no such break"),
                },
            },
        },
        "/ad-breaks/{id}/impressions": {
            "parameters": [_ID],
            "post": {
                "operationId": "reportAdImpression",
                "summary": "the player showed creative N of the break",
                "requestBody": _body({"creative": {"type": "integer", "minimum": 0}}, ["creative"]),
                "responses": {
                    "202": _ok("booked or not", "ImpressionResult"),
                    "404": _error("no such break, or no such creative in it"),
                    "409": _error("the break is long over"),
                    **_BAD,
                },
            },
        },
        "/payments/webhook": {
            "post": {
                "operationId": "paymentsWebhook",
                "summary": "provider events, signed (Livetwin-Signature: t=..., v1=HMAC-SHA256)",
                "parameters": [
                    {
                        "name": "Livetwin-Signature",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "200": _ok("recorded (or a duplicate)", "WebhookResult"),
                    "400": _error("bad signature, stale timestamp or malformed event"),
                    "413": _error("body too large"),
                },
            }
        },
    }
