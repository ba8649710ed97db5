"""The Gate API client: ``client`` (httpx), ``retry`` (when to try again, outcome unknown),
``responses`` (reading answers), ``models`` (pydantic), ``errors`` (exception tree).

Must not import Slack, the scheduler, the store or the sandbox.
"""

from gatebot.gate.client import GateClient
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
from gatebot.gate.retry import RetryPolicy

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
