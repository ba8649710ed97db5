"""Pieces of the Gate contract every part of the sandbox shares: the error answer, limits, page envelope.

:class:`SandboxError` carries the HTTP status and the contract's error code (``validation_error``...);
:func:`page` builds the paginated envelope; the constants are the contract's limits, statuses and the
endpoint names used for fault planning and request statistics.

Must not import Slack, the scheduler, HTTP libraries (starlette, uvicorn, httpx) or gatebot.gate.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CREATE_ORDER",
    "DEFAULT_PAGE_SIZE",
    "DEPOSIT_STATUSES",
    "ENDPOINTS",
    "HEALTH",
    "MAX_EXTERNAL_REF",
    "MAX_PAGE_SIZE",
    "ORDER_STATUSES",
    "SandboxError",
    "check_external_ref",
    "invalid",
    "page",
]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
MAX_EXTERNAL_REF = 64

#: Names of the Gate endpoints, used for fault planning and request statistics.
HEALTH = "health"
CREATE_ORDER = "create_order"
ENDPOINTS = (HEALTH, "product_types", "categories", "products", "product", "orders", CREATE_ORDER, "order",
             "balance", "deposits")

ORDER_STATUSES = ("pending", "completed", "failed")
DEPOSIT_STATUSES = ("pending", "posted", "rejected")


class SandboxError(Exception):
    """An error answer: HTTP ``status``, contract error ``code`` (``validation_error``...) and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def invalid(message: str, code: str = "validation_error") -> SandboxError:
    return SandboxError(400, code, message)


def page(items: list[dict[str, Any]], page: int, page_size: int) -> dict[str, Any]:
    """The paginated envelope; ``pageSize`` above the maximum is clamped (and echoed clamped)."""
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise invalid("page must be a whole number >= 1")
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise invalid("pageSize must be a whole number >= 1")
    size = min(page_size, MAX_PAGE_SIZE)
    start = (page - 1) * size
    return {"items": items[start:start + size], "page": page, "pageSize": size, "total": len(items)}


def check_external_ref(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > MAX_EXTERNAL_REF):
        raise invalid(f"external_ref must be a string of at most {MAX_EXTERNAL_REF} characters")
    return value
