"""Over HTTP (in process): health, authentication, the catalog endpoints, pagination, unknown routes."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import pytest

from gatebot.config import SANDBOX_API_KEY
from gatebot.sandbox.simulator import Simulator

from .helpers import AGENT, decode, error_code

BUSINESS_READS = ["product-types", "product-categories", "products", "products/456", "orders",
                  f"orders/{uuid.UUID(int=1)}", "balance", "deposits"]


# -- health ----------------------------------------------------------------------------------------------


async def test_health_needs_no_auth_and_reports_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"Authorization": ""})
    assert response.status_code == 200
    assert decode(response) == {"status": "ok"}


async def test_health_down_answers_503_degraded(client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.faults.health_down = True
    response = await client.get("/health")
    assert response.status_code == 503
    assert decode(response)["status"] == "degraded"


# -- auth ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", BUSINESS_READS)
@pytest.mark.parametrize("authorization", [None, "wrong-key", f"Bearer {SANDBOX_API_KEY}",
                                           f"bearer {SANDBOX_API_KEY}", SANDBOX_API_KEY.upper()])
async def test_every_business_endpoint_wants_the_raw_key(client: httpx.AsyncClient, path: str,
                                                         authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    request = client.build_request("GET", f"{AGENT}/{path}", headers=headers)
    if authorization is None:
        del request.headers["Authorization"]
    response = await client.send(request)
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"


async def test_bearer_is_explained(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{AGENT}/balance", headers={"Authorization": f"Bearer {SANDBOX_API_KEY}"})
    assert "without 'Bearer'" in decode(response)["error"]["message"]
    assert SANDBOX_API_KEY not in response.text  # the key is never echoed


@pytest.mark.parametrize("agent", [str(uuid.uuid4()), "not-a-uuid"], ids=["another-agent", "not-a-uuid"])
async def test_the_key_of_one_agent_does_not_open_another(client: httpx.AsyncClient, agent: str) -> None:
    response = await client.get(f"/agent/{agent}/balance")
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"


async def test_create_also_needs_auth(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{AGENT}/orders", json={"product_id": 101},
                                 headers={"Authorization": "nope", "Idempotency-Key": "k"})
    assert response.status_code == 401


async def test_agent_id_in_any_case_is_the_same_uuid(client: httpx.AsyncClient, sim: Simulator) -> None:
    response = await client.get(f"/agent/{str(sim.config.agent_id).upper()}/balance")
    assert response.status_code == 200


# -- catalog ---------------------------------------------------------------------------------------------


async def test_product_types_are_a_bare_array(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{AGENT}/product-types")
    assert response.status_code == 200
    assert decode(response) == [
        {"id": 1, "code": "redeem_card", "name": "Gift cards and vouchers"},
        {"id": 2, "code": "direct_transfer", "name": "Direct transfer"},
        {"id": 3, "code": "direct_top_up", "name": "Direct top-up"},
    ]


async def test_categories_are_a_bare_array_with_parents(client: httpx.AsyncClient) -> None:
    body = decode(await client.get(f"{AGENT}/product-categories"))
    assert isinstance(body, list) and body
    assert all(set(c) == {"id", "name", "slug", "parent_id"} for c in body)
    assert {c["parent_id"] for c in body} >= {None, 1}


async def test_products_page_has_the_envelope_and_every_field(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{AGENT}/products")
    body = decode(response)
    assert (body["page"], body["pageSize"], body["total"]) == (1, 50, len(body["items"]))
    fields = {"id", "name", "slug", "category_id", "product_type_id", "region_code", "currency_code", "logo",
              "price", "min_amount", "max_amount", "step", "description", "is_active"}
    assert all(fields <= set(p) for p in body["items"])
    # Amounts are JSON numbers, integers where whole; the margin is a string.
    assert '"price":10,"min_amount":5,"max_amount":100,"step":1,' in response.text
    assert '"step":0.5' in response.text and '"price":9.99' in response.text
    steam = next(p for p in body["items"] if p["id"] == 456)
    assert steam["margin"] == "0.25" and steam["customer_account_fields"][0]["name"] == "steam_login"


@pytest.mark.parametrize(("query", "expected"), [
    ({"product_type_id": 3}, {456, 457, 458, 459, 460, 461}),
    ({"product_type_id": 2}, set()),
    ({"category_id": 5}, {458, 459, 461}),
    ({"is_active": "false"}, {107, 461}),
    ({"is_active": "0", "product_type_id": 1}, {107}),
    ({"is_active": "true", "category_id": 5}, {458, 459}),
])
async def test_product_filters(
        client: httpx.AsyncClient, query: dict[str, str | int], expected: set[int]) -> None:
    body = decode(await client.get(f"{AGENT}/products", params=query))
    assert {p["id"] for p in body["items"]} == expected
    assert body["total"] == len(expected)


async def test_products_pagination_boundaries(client: httpx.AsyncClient) -> None:
    everything = decode(await client.get(f"{AGENT}/products"))["items"]
    total = len(everything)
    assert total == 14
    pages = [decode(await client.get(f"{AGENT}/products", params={"page": n, "pageSize": 5}))
             for n in (1, 2, 3, 4)]
    assert [len(p["items"]) for p in pages] == [5, 5, 4, 0]
    assert all(p["total"] == total and p["pageSize"] == 5 for p in pages)
    assert [i["id"] for p in pages for i in p["items"]] == [i["id"] for i in everything]
    exact = decode(await client.get(f"{AGENT}/products", params={"page": 1, "pageSize": total}))
    assert len(exact["items"]) == total
    clamped = decode(await client.get(f"{AGENT}/products", params={"pageSize": 500}))
    assert clamped["pageSize"] == 100


@pytest.mark.parametrize("query", [{"page": 0}, {"page": -1}, {"pageSize": 0}, {"pageSize": "ten"},
                                   {"page": "1.5"}, {"product_type_id": "x"}, {"is_active": "maybe"}])
async def test_bad_query_parameters_are_400(client: httpx.AsyncClient, query: dict[str, str | int]) -> None:
    response = await client.get(f"{AGENT}/products", params=query)
    assert response.status_code == 400
    assert error_code(response) == "validation_error"


async def test_get_product(client: httpx.AsyncClient) -> None:
    body = decode(await client.get(f"{AGENT}/products/105"))
    assert body["price"] == Decimal("9.99") and body["currency_code"] == "EUR"
    inactive = decode(await client.get(f"{AGENT}/products/107"))
    assert inactive["is_active"] is False


@pytest.mark.parametrize("product", ["999999", "abc", "-1"])
async def test_unknown_product_is_404(client: httpx.AsyncClient, product: str) -> None:
    response = await client.get(f"{AGENT}/products/{product}")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


# -- routing -----------------------------------------------------------------------------------------------


async def test_unknown_paths_and_methods_answer_in_the_error_shape(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nothing/here")
    assert missing.status_code == 404 and error_code(missing) == "not_found"
    wrong = await client.delete(f"{AGENT}/orders")
    assert wrong.status_code == 405 and error_code(wrong) == "method_not_allowed"
    assert {m.strip() for m in wrong.headers["allow"].split(",")} >= {"GET", "POST"}
