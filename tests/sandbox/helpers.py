"""Small helpers shared by the sandbox tests (paths, bodies, decoding with ``Decimal``)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx

from gatebot.config import SANDBOX_AGENT_ID

AGENT = f"/agent/{SANDBOX_AGENT_ID}"
ORDERS = f"{AGENT}/orders"

#: A valid Steam top-up (product 456: USD, 5..100 step 1, margin 0.25, publishes steam_login + email).
STEAM_ACCOUNT = {"steam_login": "player123", "email": "user@example.com"}


def topup(product_id: int = 456, amount: str = "10.00", account: dict[str, str] | None = None,
          **extra: Any) -> dict[str, Any]:
    customer = STEAM_ACCOUNT if account is None else account
    request = {"amount": amount, "customer_account": customer}
    return {"product_id": product_id, "topup_request": request, **extra}


def voucher(product_id: int = 101, **extra: Any) -> dict[str, Any]:
    return {"product_id": product_id, **extra}


def decode(response: httpx.Response) -> Any:
    return json.loads(response.text, parse_float=Decimal)


def error_code(response: httpx.Response) -> str:
    body = decode(response)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"]
    code: str = body["error"]["code"]
    return code


async def create(client: httpx.AsyncClient, body: dict[str, Any], key: str) -> httpx.Response:
    return await client.post(ORDERS, json=body, headers={"Idempotency-Key": key})


def available(balance_body: dict[str, Any], currency: str) -> str:
    for item in balance_body["items"]:
        if item["currency_code"] == currency:
            amount: str = item["available"]
            return amount
    raise AssertionError(f"no {currency} balance in {balance_body}")
