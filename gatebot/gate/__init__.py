"""The Gate API client: ``client`` (httpx), ``models`` (pydantic), ``errors`` (exception tree).

Must not import Slack, the scheduler, the store or the sandbox.
"""

from gatebot.gate.client import GateClient, RetryPolicy
from gatebot.gate.errors import *  # noqa: F403
from gatebot.gate.errors import __all__ as _errors_all
from gatebot.gate.models import (
    Balance,
    Category,
    CreateOrderRequest,
    CreateOrderResult,
    CustomerAccountField,
    Deposit,
    Health,
    Order,
    Page,
    Product,
    ProductType,
    TopupRequest,
)

__all__ = [
    "Balance",
    "Category",
    "CreateOrderRequest",
    "CreateOrderResult",
    "CustomerAccountField",
    "Deposit",
    "GateClient",
    "Health",
    "Order",
    "Page",
    "Product",
    "ProductType",
    "RetryPolicy",
    "TopupRequest",
    *_errors_all,
]
