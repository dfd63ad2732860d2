"""The one error shape the API answers with: ``{"error": code, "message": text}`` and a status.

``field`` names the request member at fault on a 400, so a client can point at the input; a
429 carries ``Retry-After``. Nothing here ever holds a stack trace or a stored secret.
"""

from __future__ import annotations

import math
from typing import Any


class ApiError(Exception):
    """A refusal whose fault is the client's (4xx) or, for 5xx, ours, with what to answer."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None,
                 retry_after_s: float | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})
        if retry_after_s is not None:
            # RFC 9110 10.2.3: delay-seconds is a non-negative integer; round up so a client that
            # waits exactly that long is let in.
            self.headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class ValidationError(ApiError):
    """400: a member of the request is missing, of the wrong type, or out of its allowed range."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(400, "invalid_field", f"{field}: {message}", field=field)


def unauthorized(message: str = "a valid bearer token is required") -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="livetwin"'})


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def conflict(field: str, message: str) -> ApiError:
    return ApiError(409, "conflict", message, field=field)


def rate_limited(retry_after_s: float, what: str) -> ApiError:
    return ApiError(429, "rate_limited", f"too many {what} from this address; retry later",
                    retry_after_s=retry_after_s)
