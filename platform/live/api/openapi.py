"""The OpenAPI 3.0 document of ``/api/v1``, served at ``/api/v1/openapi.json``.

Written as data beside the handlers and held true by tests: every route the app serves is in
it and nothing else, and schemathesis checks real responses against these schemas. The
stream-health schema is derived from ``StreamHealth`` itself, so a field the ingest or the
transcoder adds there appears here without anyone remembering to.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from typing import Any

from live.api.validation import (
    NAME_PATTERN,
    PAGE_DEFAULT,
    PAGE_MAX,
    PASSWORD_MAX,
    PASSWORD_MIN,
    TITLE_MAX,
)
from live.dvr.catalog import Video
from live.ingest.registry import INGEST_PROTOCOLS, StreamHealth

API_PREFIX = "/api/v1"

_JSON_TYPES: dict[type, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def dataclass_schema(cls: type) -> dict[str, Any]:
    """The JSON schema of what ``dataclasses.asdict`` makes of ``cls``.

    Covers what health records hold: str/int/float/bool, string ``Literal``s (an enum),
    ``T | None``, nested dataclasses,
    ``tuple[T, ...]``/``list[T]`` and ``dict[str, T]``; anything else is refused loudly, so a
    field nobody can describe fails the tests instead of lying in the document.
    """
    hints = typing.get_type_hints(cls)
    properties = {f.name: type_schema(hints[f.name], f"{cls.__name__}.{f.name}")
                  for f in dataclasses.fields(cls)}
    return {"type": "object", "required": list(properties), "properties": properties}


def type_schema(hint: Any, where: str) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or origin is typing.Union:
        members = [arg for arg in args if arg is not type(None)]
        if len(members) != 1:
            raise TypeError(f"{where}: only T | None unions are described")
        return {**type_schema(members[0], where), "nullable": True}
    if origin is typing.Literal and args and all(isinstance(arg, str) for arg in args):
        return {"type": "string", "enum": list(args)}
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return dataclass_schema(hint)
    if origin in (tuple, list) and args:
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise TypeError(f"{where}: only homogeneous tuple[T, ...] is described")
        return {"type": "array", "items": type_schema(args[0], where)}
    if origin is dict and args and args[0] is str:
        return {"type": "object", "additionalProperties": type_schema(args[1], where)}
    raise TypeError(f"{where}: no JSON schema for {hint!r}")


def _stream_health_schema() -> dict[str, Any]:
    """``StreamHealth``'s schema, with the ingest protocols a stream can arrive by spelled out."""
    schema = dataclass_schema(StreamHealth)
    schema["properties"]["protocol"] = {
        "type": "string", "enum": list(INGEST_PROTOCOLS),
        "description": "how the publisher sends: RTMP, SRT, or WebRTC over WHIP (RFC 9725)",
    }
    return schema


def _error_response(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if retry_after:
        response["headers"] = {"Retry-After": {
            "description": "seconds to wait before trying again",
            "schema": {"type": "integer", "minimum": 1},
        }}
    return response


def _json(ref: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _body(ref: str) -> dict[str, Any]:
    return {"required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


_BAD_BODY = {
    "400": _error_response("validation failed; `field` names the member at fault"),
    "413": _error_response("request body over the size limit"),
    "415": _error_response("request body is not application/json"),
}
_AUTH = {"401": _error_response("missing, expired or revoked bearer token")}
_OWNER = {**_AUTH, "403": _error_response("the token's account does not own this channel")}
_MISSING = {"404": _error_response("no such channel")}
_LIMITED = {"429": _error_response("rate limit for this client address", retry_after=True)}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
#: OpenAPI 3.0 4.7.20: what a client can do next with a channel it has just created.
_CHANNEL_LINKS = {
    link: {"operationId": operation, "parameters": {"name": "$response.body#/name"}}
    for link, operation in (("GetChannel", "getChannel"), ("UpdateChannel", "updateChannel"),
                            ("RotateStreamKey", "rotateStreamKey"))
}
_CHANNEL_NAME_PARAM = {
    "name": "name", "in": "path", "required": True,
    "schema": {"type": "string"}, "description": "channel name (letter case ignored)",
    "example": "demo",
}


def openapi_document() -> dict[str, Any]:
    name = {"type": "string", "pattern": NAME_PATTERN}
    title = {"type": "string", "maxLength": TITLE_MAX, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"}
    account = {
        "type": "object", "required": ["id", "username", "created_at"],
        "properties": {"id": {"type": "integer"}, "username": {"type": "string"},
                       "created_at": {"type": "number"}},
    }
    channel_props: dict[str, Any] = {
        "name": {"type": "string"},
        "title": {"type": "string"},
        "live": {"type": "boolean"},
        "viewer_count": {"type": "integer", "nullable": True,
                         "description": "null where no origin reports viewers for this platform"},
        "created_at": {"type": "number"},
        "watch_url": {"type": "string"},
        "hls_url": {"type": "string", "description": "multivariant playlist URL for players: on "
                    "the CDN when the platform runs with --public-hls-url"},
        "stream": {"allOf": [{"$ref": "#/components/schemas/StreamHealth"}], "nullable": True},
        "stream_key": {"type": "string",
                       "description": "only in the answer that created the channel: shown once, "
                                      "stored as a hash"},
        "publish_url": {"type": "string", "description": "only with stream_key"},
        "publisher_address": {"type": "string",
                              "description": "owner only, while live: the publisher's address"},
    }
    video = dataclass_schema(Video)
    video["properties"]["playback_url"] = {"type": "string",
                                           "description": "multivariant playlist (HLS) of the video"}
    video["required"].append("playback_url")
    schemas: dict[str, Any] = {
        "Video": video,
        "VideoList": {
            "type": "object", "required": ["videos"],
            "properties": {"videos": {"type": "array", "items": {"$ref": "#/components/schemas/Video"},
                                      "description": "newest first; times are epoch seconds"}},
        },
        "Error": {
            "type": "object", "required": ["error", "message"],
            "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                           "field": {"type": "string"}},
        },
        "Credentials": {
            "type": "object", "required": ["username", "password"], "additionalProperties": False,
            "properties": {
                "username": name,
                "password": {"type": "string", "minLength": PASSWORD_MIN, "maxLength": PASSWORD_MAX,
                             "pattern": "^[^\\u0000]*$"},
            },
        },
        "Account": account,
        "PasswordChange": {
            "type": "object", "required": ["old_password", "new_password"],
            "additionalProperties": False,
            "properties": {
                "old_password": {"type": "string", "minLength": 1, "maxLength": PASSWORD_MAX},
                "new_password": {"type": "string", "minLength": PASSWORD_MIN,
                                 "maxLength": PASSWORD_MAX, "pattern": "^[^\\u0000]*$"},
            },
        },
        "StreamStopped": {
            "type": "object", "required": ["stopped"],
            "properties": {"stopped": {"type": "boolean",
                                       "description": "false when the channel was not live"}},
        },
        "SessionCreated": {
            "type": "object", "required": ["token", "expires_at", "account"],
            "properties": {"token": {"type": "string"}, "expires_at": {"type": "number"},
                           "account": {"$ref": "#/components/schemas/Account"}},
        },
        "CurrentSession": {
            "type": "object", "required": ["account", "expires_at", "channels"],
            "properties": {"account": {"$ref": "#/components/schemas/Account"},
                           "expires_at": {"type": "number"},
                           "channels": {"type": "array", "items": {"type": "string"}}},
        },
        "ChannelCreate": {
            "type": "object", "required": ["name"], "additionalProperties": False,
            "properties": {"name": name, "title": title},
        },
        "ChannelUpdate": {
            "type": "object", "required": ["title"], "additionalProperties": False,
            "properties": {"title": title},
        },
        "Channel": {
            "type": "object",
            "required": ["name", "title", "live", "viewer_count", "created_at", "watch_url", "stream"],
            "properties": channel_props,
        },
        "ChannelList": {
            "type": "object", "required": ["channels", "next"],
            "properties": {
                "channels": {"type": "array", "items": {"$ref": "#/components/schemas/Channel"}},
                "next": {"type": "string", "nullable": True,
                         "description": "pass as `after` for the next page; null on the last"},
            },
        },
        "StreamKey": {
            "type": "object", "required": ["stream_key", "publish_url"],
            "properties": {"stream_key": {"type": "string"}, "publish_url": {"type": "string"}},
        },
        "StreamHealth": _stream_health_schema(),
        "StreamList": {
            "type": "object", "required": ["streams"],
            "properties": {
                "streams": {"type": "array", "items": {"$ref": "#/components/schemas/StreamHealth"},
                            "description": "the streams live on this node, with their health"},
                "cluster": {"type": "array", "items": {"$ref": "#/components/schemas/Placement"},
                            "description": "every channel live on any ingest node (present when "
                                           "the node has a control plane, `--control-plane`)"},
            },
        },
        "Placement": {
            "type": "object", "required": ["channel", "node", "rtmp", "roles", "origins"],
            "properties": {
                "channel": {"type": "string"},
                "node": {"type": "string", "nullable": True, "description": "the ingest node"},
                "rtmp": {"type": "string", "nullable": True, "description": "its RTMP base"},
                "roles": {"type": "array", "items": {"type": "string"}},
                "origins": {"type": "array", "items": {"type": "string"},
                            "description": "the origins it pushes the stream to"},
            },
        },
    }
    paths: dict[str, Any] = {
        "/accounts": {"post": {
            "operationId": "createAccount", "summary": "create an account",
            "requestBody": _body("Credentials"),
            "responses": {"201": _json("Account", "the new account"), **_BAD_BODY,
                          "409": _error_response("username taken (letter case ignored)"), **_LIMITED},
        }},
        "/sessions": {"post": {
            "operationId": "createSession", "summary": "log in: trade credentials for a bearer token",
            "requestBody": _body("Credentials"),
            "responses": {"201": _json("SessionCreated", "a new session"), **_BAD_BODY,
                          "401": _error_response("unknown username or wrong password"), **_LIMITED},
        }},
        "/sessions/current": {
            "get": {
                "operationId": "currentSession", "summary": "who the bearer token belongs to",
                "security": _BEARER,
                "responses": {"200": _json("CurrentSession", "the session"), **_AUTH},
            },
            "delete": {
                "operationId": "deleteSession", "summary": "log out: revoke the bearer token",
                "security": _BEARER,
                "responses": {"204": {"description": "revoked"}, **_AUTH},
            },
        },
        "/sessions/revoke-all": {"post": {
            "operationId": "revokeAllSessions",
            "summary": "log out everywhere: revoke every session of the account, this one too",
            "security": _BEARER,
            "responses": {"204": {"description": "all revoked"}, **_AUTH},
        }},
        "/me/password": {"post": {
            "operationId": "changePassword",
            "summary": "change the password (old one required); revokes the account's other sessions",
            "security": _BEARER, "requestBody": _body("PasswordChange"),
            "responses": {"204": {"description": "changed"}, **_BAD_BODY, **_AUTH,
                          "403": _error_response("the old password is wrong"), **_LIMITED},
        }},
        "/channels": {
            "get": {
                "operationId": "listChannels", "summary": "channels in name order, a page at a time",
                "parameters": [
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": PAGE_MAX,
                                "default": PAGE_DEFAULT}},
                    {"name": "after", "in": "query", "required": False, "schema": name,
                     "description": "the `next` of the previous page"},
                ],
                "responses": {"200": _json("ChannelList", "the channels"),
                              "400": _error_response("bad `limit` or `after`")},
            },
            "post": {
                "operationId": "createChannel", "summary": "create a channel owned by the caller",
                "security": _BEARER, "requestBody": _body("ChannelCreate"),
                "responses": {"201": {**_json("Channel", "the channel, owner view"), "links": _CHANNEL_LINKS},
                              **_BAD_BODY, **_AUTH,
                              "403": _error_response("the account holds its maximum of channels"),
                              "409": _error_response("channel name taken")},
            },
        },
        "/channels/{name}": {
            "parameters": [_CHANNEL_NAME_PARAM],
            "get": {
                "operationId": "getChannel",
                "summary": "a channel: public view, or owner view (with the publisher's address "
                           "while live) for its owner",
                "responses": {"200": _json("Channel", "the channel"), **_MISSING},
            },
            "patch": {
                "operationId": "updateChannel", "summary": "change the channel's title",
                "security": _BEARER, "requestBody": _body("ChannelUpdate"),
                "responses": {"200": _json("Channel", "the channel, owner view"), **_BAD_BODY, **_OWNER,
                              **_MISSING},
            },
        },
        "/channels/{name}/stream-key": {
            "parameters": [_CHANNEL_NAME_PARAM],
            "post": {
                "operationId": "rotateStreamKey",
                "summary": "replace the stream key; the old one is refused from this moment and a "
                           "live publisher is disconnected",
                "security": _BEARER,
                "responses": {"200": _json("StreamKey", "the new key"), **_OWNER, **_MISSING},
            },
        },
        "/channels/{name}/stream/stop": {
            "parameters": [_CHANNEL_NAME_PARAM],
            "post": {
                "operationId": "stopStream",
                "summary": "end the channel's live publication now: the publisher is disconnected",
                "security": _BEARER,
                "responses": {"200": _json("StreamStopped", "whether a live stream was stopped"),
                              **_OWNER, **_MISSING},
            },
        },
        "/channels/{name}/videos": {
            "parameters": [_CHANNEL_NAME_PARAM],
            "get": {
                "operationId": "listVideos",
                "summary": "past broadcasts (and the live one) kept by the DVR, newest first",
                "responses": {"200": _json("VideoList", "the videos"), **_MISSING},
            },
        },
        "/streams": {"get": {
            "operationId": "listStreams", "summary": "live streams with ingest health",
            "responses": {"200": _json("StreamList", "the live streams")},
        }},
        "/openapi.json": {"get": {
            "operationId": "openapi", "summary": "this document",
            "responses": {"200": {"description": "OpenAPI 3.0 document",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}},
        }},
    }
    # a deep copy: the parts shared through module constants must not tie one app's document
    # (which commerce extends, and which clients such as schemathesis may annotate) to another's
    return copy.deepcopy({
        "openapi": "3.0.3",
        "info": {"title": "livetwin platform API", "version": "1"},
        "servers": [{"url": API_PREFIX}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    })
