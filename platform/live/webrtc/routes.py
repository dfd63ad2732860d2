"""The HTTP face of WHIP and WHEP on the platform's aiohttp app; handlers stay thin.

``POST /whip/{channel}`` (RFC 9725 4.2) and ``POST /whep/{channel}[/{rendition}]``
(draft-ietf-wish-whep) take ``application/sdp`` and answer 201 with the SDP answer and a
``Location``; ``DELETE`` on that location ends the session (RFC 9725 4.3); ``PATCH`` answers 405:
the answer already lists every candidate and no trickle or ICE restart is offered (RFC 9725
4.3.1 lets a server decline both). ``/studio/{channel}`` is the browser publisher page.
"""

from __future__ import annotations

import math
from typing import Final

from aiohttp import web

from live.webrtc.sdp import MAX_SDP_BYTES
from live.webrtc.service import WebRtcService
from live.webrtc.sessions import Refused, SessionKind

SDP: Final = "application/sdp"
WEBRTC_KEY: Final = web.AppKey("live.webrtc", WebRtcService)
_SESSION_HEADERS: Final = {"Cache-Control": "no-store"}


def _refusal(exc: Refused) -> web.Response:
    headers = dict(_SESSION_HEADERS)
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="whip"'
    return web.Response(status=exc.status, text=f"{exc}\n", headers=headers)


async def _offer(request: web.Request) -> str:
    if request.content_type != SDP:
        raise Refused(f"the offer must be sent as {SDP}, not {request.content_type or 'nothing'}", 415)
    if request.content_length is not None and request.content_length > MAX_SDP_BYTES:
        raise Refused(f"SDP offer larger than {MAX_SDP_BYTES} bytes", 413)
    body = await request.read()
    if len(body) > MAX_SDP_BYTES:
        raise Refused(f"SDP offer larger than {MAX_SDP_BYTES} bytes", 413)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("the SDP offer is not UTF-8", 400) from None


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _created(answer: str, location: str) -> web.Response:
    return web.Response(status=201, text=answer, content_type=SDP,
                        headers={"Location": location, **_SESSION_HEADERS})


class WebRtcRoutes:
    def __init__(self, service: WebRtcService) -> None:
        self.service = service

    async def whip_post(self, request: web.Request) -> web.Response:
        channel = request.match_info["channel"]
        try:
            offer = await _offer(request)
            session_id, answer = await self.service.publish(
                channel, _bearer(request), offer, request.remote)
        except Refused as exc:
            return _refusal(exc)
        return _created(answer, f"/whip/{channel}/sessions/{session_id}")

    async def whep_post(self, request: web.Request) -> web.Response:
        channel = request.match_info["channel"]
        rendition = request.match_info.get("rendition")
        try:
            offer = await _offer(request)
            session_id, answer = await self.service.play(channel, rendition, offer, request.remote)
        except Refused as exc:
            return _refusal(exc)
        return _created(answer, f"/whep/{channel}/sessions/{session_id}")

    async def delete(self, request: web.Request) -> web.Response:
        kind = SessionKind(request.match_info["kind"])
        found = await self.service.end(kind, request.match_info["channel"], request.match_info["session"])
        if not found:
            return web.Response(status=404, text="no such session\n", headers=_SESSION_HEADERS)
        return web.Response(status=200, headers=_SESSION_HEADERS)

    async def patch(self, request: web.Request) -> web.Response:
        return web.Response(
            status=405, headers={"Allow": "DELETE", **_SESSION_HEADERS},
            text="trickle ICE and ICE restarts are not supported: the answer carries every "
                 "candidate; DELETE this session and POST a new offer\n")

    async def options(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"Allow": "OPTIONS, POST", "Accept-Post": SDP})


def setup_webrtc(app: web.Application, service: WebRtcService) -> None:
    """Mount the WHIP and WHEP endpoints for ``service`` on ``app``."""
    routes = WebRtcRoutes(service)
    app[WEBRTC_KEY] = service
    app.router.add_post("/whip/{channel}", routes.whip_post)
    app.router.add_route("OPTIONS", "/whip/{channel}", routes.options)
    app.router.add_post("/whep/{channel}", routes.whep_post)
    app.router.add_post("/whep/{channel}/{rendition}", routes.whep_post)
    app.router.add_route("OPTIONS", "/whep/{channel}", routes.options)
    session = "/{kind:whip|whep}/{channel}/sessions/{session}"
    app.router.add_delete(session, routes.delete)
    app.router.add_patch(session, routes.patch)
