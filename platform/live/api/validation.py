"""Request bodies from raw bytes to typed values: pure, so hypothesis can throw anything at it.

Every refusal is a ``ValidationError`` (400) naming the member at fault, or an ``ApiError`` 413
for a body over the limit. Rules: usernames and channel names are 3-25 characters of letters,
digits and ``_``, compared without regard to letter case (channel names are stored lower-case,
as they appear in URLs and RTMP stream names); passwords are 8-256 characters.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from live.api.errors import ApiError, ValidationError

NAME_PATTERN = r"^[A-Za-z0-9_]{3,25}$"
_NAME = re.compile(NAME_PATTERN)
PASSWORD_MIN = 8
PASSWORD_MAX = 256
TITLE_MAX = 140


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class PasswordChange:
    old_password: str
    new_password: str


@dataclass(frozen=True, slots=True)
class ChannelCreate:
    name: str
    title: str


@dataclass(frozen=True, slots=True)
class ChannelUpdate:
    title: str


def body_too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"request body is over the {limit}-byte limit")


def parse_json(raw: bytes, limit: int) -> Any:
    """Decode a UTF-8 JSON document of at most ``limit`` bytes (RFC 8259 8.1: UTF-8 only)."""
    if len(raw) > limit:
        raise body_too_large(limit)
    if not raw.strip():
        raise ValidationError("body", "a JSON object is required")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("body", "is not UTF-8") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValidationError("body", "JSON nests too deeply") from None
    except ValueError as error:  # JSONDecodeError, and NaN/Infinity refused below
        raise ValidationError("body", f"malformed JSON ({error})") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _object(body: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    for key in body:
        if key not in allowed:
            raise ValidationError(str(key)[:64], "is not a recognized member")
    return body


def _string(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    if key not in body:
        if required:
            raise ValidationError(key, "is required")
        return None
    value = body[key]
    if not isinstance(value, str):
        raise ValidationError(key, "must be a string")
    return value


def check_name(field: str, value: str) -> str:
    """A username or channel name as given, if it follows the naming rule."""
    if not _NAME.fullmatch(value):
        raise ValidationError(field, "must be 3-25 characters of letters, digits and '_'")
    return value


def check_password(value: str, field: str = "password") -> str:
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise ValidationError(field, f"must be {PASSWORD_MIN}-{PASSWORD_MAX} characters")
    if "\x00" in value:
        raise ValidationError(field, "must not contain NUL")
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ValidationError(field, "must be valid Unicode (no lone surrogates)")
    return value


def check_title(value: str) -> str:
    """The title with surrounding whitespace trimmed; limits apply to what was sent."""
    if len(value) > TITLE_MAX:
        raise ValidationError("title", f"must be at most {TITLE_MAX} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise ValidationError("title", "must not contain control characters")
    return value.strip()


_CREDENTIAL_KEYS = frozenset({"username", "password"})
_CREATE_KEYS = frozenset({"name", "title"})
_UPDATE_KEYS = frozenset({"title"})
_PASSWORD_CHANGE_KEYS = frozenset({"old_password", "new_password"})


def parse_credentials(body: Any) -> Credentials:
    fields = _object(body, _CREDENTIAL_KEYS)
    username = check_name("username", _string(fields, "username") or "")
    password = check_password(_string(fields, "password") or "")
    return Credentials(username, password)


def parse_password_change(body: Any) -> PasswordChange:
    """``{"old_password", "new_password"}``; the new one follows the password rule."""
    fields = _object(body, _PASSWORD_CHANGE_KEYS)
    old = _string(fields, "old_password") or ""
    if not old or len(old) > PASSWORD_MAX:
        raise ValidationError("old_password", f"must be 1-{PASSWORD_MAX} characters")
    return PasswordChange(old, check_password(_string(fields, "new_password") or "", "new_password"))


def parse_channel_create(body: Any) -> ChannelCreate:
    fields = _object(body, _CREATE_KEYS)
    name = check_name("name", _string(fields, "name") or "").lower()
    title = _string(fields, "title", required=False)
    return ChannelCreate(name, check_title(title) if title is not None else "")


def parse_channel_update(body: Any) -> ChannelUpdate:
    fields = _object(body, _UPDATE_KEYS)
    return ChannelUpdate(check_title(_string(fields, "title") or ""))


PAGE_DEFAULT = 50
PAGE_MAX = 100


@dataclass(frozen=True, slots=True)
class Page:
    after: str | None
    limit: int


def parse_page(query: Mapping[str, str]) -> Page:
    """``?limit=N&after=NAME`` of a listing; limit 1-100, default 50."""
    raw_limit = query.get("limit")
    limit = PAGE_DEFAULT
    if raw_limit is not None:
        digits = raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 3
        if not digits or not 1 <= int(raw_limit) <= PAGE_MAX:
            raise ValidationError("limit", f"must be an integer from 1 to {PAGE_MAX}")
        limit = int(raw_limit)
    after = query.get("after")
    if after is not None:
        after = check_name("after", after).lower()
    return Page(after, limit)


def channel_name_from_path(segment: str) -> str | None:
    """The stored (lower-case) form of a channel name in a URL, or None if none could match."""
    return segment.lower() if _NAME.fullmatch(segment) else None
