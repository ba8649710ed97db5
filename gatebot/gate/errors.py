"""The Gate API exception tree. Callers branch on the class, never on message text.

::

    GateError                        anything that went wrong talking to Gate
    ├── GateTransportError           no usable HTTP answer (connect refused, reset, timeout)
    │   └── GateTimeout              the request timed out
    ├── GateBadResponse              an answer we cannot read (non-JSON, truncated, wrong shape)
    ├── GateOutcomeUnknown           create_order whose result is unknown: retry with the SAME key
    └── GateHTTPError                an HTTP error status with (maybe) an error body
        ├── GateRejected             400: the request is wrong; retrying the same body will not help
        │   ├── GateValidationError      validation_error / missing_idempotency_key
        │   ├── GateInvalidAmount        invalid_amount
        │   ├── GateCurrencyMismatch     currency_mismatch
        │   ├── GateProductInactive      product_inactive
        │   └── GateInsufficientBalance  insufficient_balance (wait for a deposit, then retry same key)
        ├── GateUnauthorized         401
        ├── GateNotFound             404
        ├── GateIdempotencyConflict  409: same key, different body (a bug on our side)
        ├── GateRateLimited          429, ``retry_after`` seconds
        └── GateUnavailable          5xx / 503 unavailable

``status`` and ``code`` always carry what the server said (``code`` may be ``None`` when the body
was not JSON). Messages never contain the API key, request bodies or response bodies: an answer we
could not read is described by status, length and parse error, not quoted.
"""

from __future__ import annotations

__all__ = [
    "GateBadResponse",
    "GateCurrencyMismatch",
    "GateError",
    "GateHTTPError",
    "GateIdempotencyConflict",
    "GateInsufficientBalance",
    "GateInvalidAmount",
    "GateNotFound",
    "GateOutcomeUnknown",
    "GateProductInactive",
    "GateRateLimited",
    "GateRejected",
    "GateTimeout",
    "GateTransportError",
    "GateUnauthorized",
    "GateUnavailable",
    "GateValidationError",
    "error_from_response",
]


class GateError(Exception):
    """Base class. ``status``/``code`` are set when the server answered."""

    status: int | None = None
    code: str | None = None

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class GateTransportError(GateError):
    """The request got no usable HTTP answer (connection refused or reset, protocol error)."""


class GateTimeout(GateTransportError):
    """The request timed out; for a create the order may or may not exist."""


class GateBadResponse(GateError):
    """The server answered something we cannot read: not JSON, truncated, or the wrong shape."""


class GateOutcomeUnknown(GateError):
    """A create whose outcome is unknown (timeout, reset, 5xx after all retries).

    The order may exist. Retry later with the **same** ``idempotency_key`` and the same body;
    never with a new key.
    """

    def __init__(self, message: str, *, idempotency_key: str, cause: GateError | None = None) -> None:
        super().__init__(message, status=cause.status if cause else None, code=cause.code if cause else None)
        self.idempotency_key = idempotency_key
        self.cause = cause


class GateHTTPError(GateError):
    """An HTTP error status from the server."""


class GateRejected(GateHTTPError):
    """400: the server refused the request as it stands."""

    status = 400


class GateValidationError(GateRejected):
    code = "validation_error"


class GateInvalidAmount(GateRejected):
    code = "invalid_amount"


class GateCurrencyMismatch(GateRejected):
    code = "currency_mismatch"


class GateProductInactive(GateRejected):
    code = "product_inactive"


class GateInsufficientBalance(GateRejected):
    code = "insufficient_balance"


class GateUnauthorized(GateHTTPError):
    status = 401
    code = "unauthorized"


class GateNotFound(GateHTTPError):
    status = 404
    code = "not_found"


class GateIdempotencyConflict(GateHTTPError):
    status = 409
    code = "idempotency_conflict"


class GateRateLimited(GateHTTPError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class GateUnavailable(GateHTTPError):
    status = 503
    code = "unavailable"


_BY_CODE: dict[str, type[GateHTTPError]] = {
    "validation_error": GateValidationError,
    "missing_idempotency_key": GateValidationError,
    "invalid_amount": GateInvalidAmount,
    "currency_mismatch": GateCurrencyMismatch,
    "product_inactive": GateProductInactive,
    "insufficient_balance": GateInsufficientBalance,
    "unauthorized": GateUnauthorized,
    "not_found": GateNotFound,
    "idempotency_conflict": GateIdempotencyConflict,
    "rate_limited": GateRateLimited,
    "unavailable": GateUnavailable,
}

_BY_STATUS: dict[int, type[GateHTTPError]] = {
    400: GateRejected,
    401: GateUnauthorized,
    404: GateNotFound,
    409: GateIdempotencyConflict,
    429: GateRateLimited,
}


def error_from_response(status: int, code: str | None, message: str | None,
                        *, retry_after: float | None = None) -> GateHTTPError:
    """Map an HTTP error status and error code to an exception: status first, then code."""
    cls: type[GateHTTPError]
    if status >= 500:
        cls = GateUnavailable
    elif status in _BY_STATUS:
        cls = _BY_STATUS[status]
        by_code = _BY_CODE.get(code or "")
        if by_code is not None and issubclass(by_code, cls):
            cls = by_code
    else:
        cls = _BY_CODE.get(code or "", GateHTTPError)
        if not (400 <= status < 500):
            cls = GateHTTPError
        elif cls.status is not None and cls.status != status:
            cls = GateRejected if status == 400 else GateHTTPError
    text = message or f"Gate API answered HTTP {status}"
    error: GateHTTPError
    if cls is GateRateLimited:
        error = GateRateLimited(text, status=status, code=code, retry_after=retry_after)
    else:
        error = cls(text, status=status, code=code)
    # What the server said, not the class default: a body that was not JSON has no code.
    error.code = code
    return error
