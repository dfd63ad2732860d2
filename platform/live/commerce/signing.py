"""Webhook signatures: HMAC-SHA256 over ``"{timestamp}.{body}"``, refused outside a tolerance.

The header is ``Livetwin-Signature: t=<unix seconds>,v1=<hex digest>`` (the shape Stripe uses:
several ``v1`` values may appear while a secret is rotated). Signing the timestamp with the
body is what makes a captured request useless once the tolerance has passed: the receiver
rejects a stale ``t`` and cannot be fooled into a fresh one without the secret.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Livetwin-Signature"


class SignatureError(Exception):
    """The webhook is not from the provider, or not from now: answer 400 and book nothing."""


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: bytes, now: float) -> str:
    timestamp = int(now)
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(secret: bytes, header: str | None, body: bytes, now: float, tolerance_s: float) -> int:
    """The signed timestamp when ``header`` signs ``body`` within the tolerance, else SignatureError."""
    if not header or len(header) > 1024:
        raise SignatureError(f"missing or oversized {HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError(f"{HEADER} needs t=<unix seconds> and v1=<hex digest>")
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("signature does not match the body")
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError(f"timestamp {timestamp} is outside the {tolerance_s:g} s tolerance")
    return timestamp
