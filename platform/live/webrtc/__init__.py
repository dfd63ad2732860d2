"""WebRTC both ways: WHIP ingest (RFC 9725) and WHEP playback (draft-ietf-wish-whep).

Browsers and OBS 30+ publish over WHIP without an RTMP encoder; viewers who need well under a
second (co-streaming, auctions, interactive shows) play over WHEP. The pure parts (SDP checks,
the session table and its limits, rendition choice, RTP-to-access-unit assembly) are apart from
the aiortc shell (``whip``, ``whep``, ``relay``, ``routes``), which only moves packets and timers.
"""
