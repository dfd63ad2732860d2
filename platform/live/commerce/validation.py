"""Commerce request bodies in, typed values out; every refusal a 400 naming the member at fault.

Amounts are JSON integers only: ``1.0``, ``"100"``, ``true``, zero, negatives and anything
above ``MAX_AMOUNT`` are refused rather than coerced, because a coerced amount is how money
goes missing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from live.api.errors import ApiError, ValidationError, not_found
from live.commerce.settings import CURRENCY_EXPONENTS, MAX_AMOUNT, CommerceSettings

_CARD = re.compile(r"^[0-9]{12,19}$")
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_PROVIDER_ID = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def body_object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise ValidationError("body", "expected a JSON object")
    return body


def positive_int(body: Mapping[str, Any], member: str, high: int = MAX_AMOUNT) -> int:
    value = body.get(member)
    if type(value) is not int:
        raise ValidationError(member, "must be an integer (no fractions, strings or booleans)")
    if value <= 0:
        raise ValidationError(member, "must be positive")
    if value > high:
        raise ValidationError(member, f"must be at most {high}")
    return value


def currency(body: Mapping[str, Any], settings: CommerceSettings) -> str:
    value = body.get("currency", settings.currency)
    if not isinstance(value, str) or value.upper() not in CURRENCY_EXPONENTS or value.upper() == "BIT":
        raise ApiError(
            400,
            "unknown_currency",
            f"currency: {str(value)[:16]!r} is not an ISO 4217 currency this platform knows",
            field="currency",
        )
    if value.upper() != settings.currency:
        raise ApiError(
            400,
            "unsupported_currency",
            f"currency: this platform charges in {settings.currency} only",
            field="currency",
        )
    return settings.currency


def card(body: Mapping[str, Any]) -> str:
    value = body.get("card")
    if not isinstance(value, str) or not _CARD.match(value.replace(" ", "")):
        raise ValidationError("card", "must be a card number of 12-19 digits")
    return value.replace(" ", "")


def text(body: Mapping[str, Any], member: str, high: int) -> str:
    value = body.get(member, "")
    if not isinstance(value, str) or len(value) > high:
        raise ValidationError(member, f"must be a string of at most {high} characters")
    value = " ".join(value.split())
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise ValidationError(member, "must not hold control characters")
    return value


def optional_username(body: Mapping[str, Any], member: str) -> str | None:
    value = body.get(member)
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise ValidationError(member, "must be a username")
    return value


def period(text_value: str) -> tuple[int, int]:
    match = _PERIOD.match(text_value)
    if match is None:
        raise ValueError(f"period {text_value!r}: expected YYYY-MM")
    return int(match.group(1)), int(match.group(2))


def provider_id(value: str) -> str:
    """A payment id from a path; a malformed one names no purchase (404), like an unknown one."""
    if not _PROVIDER_ID.match(value):
        raise not_found(f"no purchase {value[:64]!r}")
    return value
