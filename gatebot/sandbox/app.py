"""The Gate sandbox as an ASGI app (Starlette): HTTP in, :class:`~gatebot.sandbox.simulator.Simulator` out.

Routes:

* the Gate API of ``shared/gate-api.md`` — ``GET /health`` (no auth) and ``/agent/{agent_id}/...``
  (raw-key ``Authorization``), with the faults of :class:`~gatebot.sandbox.simulator.Faults`
  enacted here: latency, hangs, 429s, HTML garbage, 503s, and for creates a *reset* (processed,
  then the response breaks off after the headers) or a *processed-then-500*;
* admin endpoints under ``/_sandbox/`` (no auth, never faulted) for tests, the demo and ops:
  faults, time, deposits, balances, all orders, statistics, reset.

Every error body is ``{"error": {"code", "message"}}``, unknown paths and methods included.

In process (``httpx.ASGITransport``) two faults look different from a real socket: a *reset*
arrives as a 2xx with a truncated body (the client sees an unreadable answer, not a transport
error), and a *hang* is not cut short by the client's httpx timeout (ASGITransport has none) —
wrap the call in ``asyncio.wait_for``, or use :func:`gatebot.sandbox.server.running_sandbox`.

Must not import Slack, the scheduler, httpx or gatebot.gate.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatebot.clock import Clock
from gatebot.sandbox.simulator import (
    CREATE_ORDER,
    DEFAULT_PAGE_SIZE,
    HEALTH,
    FaultPlan,
    SandboxConfig,
    SandboxError,
    Simulator,
    iso,
    parse_json,
    to_json,
)
from gatebot.sandbox.state import StateFile

__all__ = ["GateJSONResponse", "SimulatedReset", "create_app"]

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]

_GARBAGE = b"<html><body><h1>502 Bad Gateway</h1><p>oops</p></body></html>"
_WHOLE_NUMBER = re.compile(r"-?[0-9]+")


class GateJSONResponse(Response):
    """JSON the way the Gate API writes it: ``Decimal`` product amounts as JSON numbers, never floats."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return to_json(content).encode("utf-8")


class SimulatedReset(Exception):
    """Raised on purpose to make a real server drop the connection mid-body (the *reset* fault)."""


class _BrokenResponse(Response):
    """Headers announce the whole body; half of it is sent, then the connection is dropped.

    Under uvicorn, ending the message short of its ``Content-Length`` makes h11 refuse it; we
    re-raise that as :class:`SimulatedReset`, uvicorn closes the socket, and the client sees a
    truncated answer / reset connection. In process (ASGITransport) the short body simply arrives.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = bytes(self.body)
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        try:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception as exc:
            raise SimulatedReset("sandbox fault: connection dropped after the headers (intended)") from exc


def _json(content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return GateJSONResponse(content, status_code=status_code, headers=headers)


def _error(exc: SandboxError, headers: Mapping[str, str] | None = None) -> Response:
    return _json(exc.body(), exc.status, headers)


# -- request parsing -------------------------------------------------------------------------------------


def _int_param(request: Request, name: str, default: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw.strip() == "":
        return default
    if not _WHOLE_NUMBER.fullmatch(raw.strip()):
        raise SandboxError(400, "validation_error", f"{name} must be a whole number")
    return int(raw)


def _page_params(request: Request) -> tuple[int, int]:
    page = _int_param(request, "page", 1)
    size = _int_param(request, "pageSize", DEFAULT_PAGE_SIZE)
    assert page is not None and size is not None
    return page, size


def _bool_param(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise SandboxError(400, "validation_error", f"{name} must be true or false")


async def _json_object(request: Request) -> Mapping[str, Any]:
    """An admin request body: a JSON object, or ``{}`` when empty."""
    raw = await request.body()
    if not raw.strip():
        return {}
    data = parse_json(raw)
    if not isinstance(data, Mapping):
        raise SandboxError(400, "validation_error", "the request body must be a JSON object")
    return data


# -- faults ------------------------------------------------------------------------------------------------


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _hang(request: Request, seconds: float) -> None:
    """Sleep ``seconds``, or less if the client hangs up first (so a server can shut down cleanly)."""
    sleeper = asyncio.ensure_future(asyncio.sleep(seconds))
    watcher = asyncio.ensure_future(_wait_for_disconnect(request.receive))
    try:
        await asyncio.wait({sleeper, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        watcher.cancel()


async def _before(request: Request, endpoint: str, plan: FaultPlan) -> Response | None:
    """Enact the faults that happen instead of processing; ``None`` means "go on and process"."""
    if plan.action is None or plan.processes:
        return None  # processed first; the latency is added to the answer (see ``_gate``)
    if plan.delay > 0:
        await asyncio.sleep(plan.delay)
    log.info("sandbox fault: %s on %s", plan.action, endpoint)
    if plan.action == "hang":
        await _hang(request, plan.hang_seconds)
        return _error(SandboxError(503, "unavailable", "the upstream did not answer in time (sandbox hang)"))
    if plan.action == "rate_limited":
        message = f"too many requests; retry after {plan.retry_after} s"
        return _error(SandboxError(429, "rate_limited", message), {"Retry-After": str(plan.retry_after)})
    if plan.action == "garbage":
        return Response(_GARBAGE, status_code=200, media_type="text/html")
    return _error(SandboxError(503, "unavailable", "the service is temporarily unavailable (sandbox fault)"))


def _after(response: Response, endpoint: str, plan: FaultPlan) -> Response:
    """Enact the faults that happen after processing (creates only)."""
    if plan.action == "reset":
        log.info("sandbox fault: reset on %s (processed; answer %d broken off)", endpoint,
                 response.status_code)
        return _BrokenResponse(bytes(response.body), status_code=response.status_code,
                               media_type=response.media_type)
    if plan.action == "error_after_processing":
        log.info("sandbox fault: 500 on %s after processing (answer was %d)", endpoint, response.status_code)
        return _error(SandboxError(500, "internal_error", "internal server error (sandbox fault)"))
    return response


# -- the routes --------------------------------------------------------------------------------------------


def _by_method(**endpoints: Endpoint) -> Endpoint:
    """One path, one endpoint per method (so a 405 lists every allowed method)."""

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await endpoints[method](request)

    return dispatch


class _Routes:
    """Endpoint functions bound to one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def table(self) -> list[Route]:
        agent = "/agent/{agent_id}"
        gate = self._gate
        admin = self._admin
        return [
            Route("/health", self.health, methods=["GET"]),
            Route(f"{agent}/product-types", gate("product_types", self.product_types), methods=["GET"]),
            Route(f"{agent}/product-categories", gate("categories", self.categories), methods=["GET"]),
            Route(f"{agent}/products", gate("products", self.products), methods=["GET"]),
            Route(f"{agent}/products/{{product_id:int}}", gate("product", self.product), methods=["GET"]),
            Route(f"{agent}/orders", _by_method(GET=gate("orders", self.orders),
                                                POST=gate(CREATE_ORDER, self.create_order)),
                  methods=["GET", "POST"]),
            Route(f"{agent}/orders/{{order_id}}", gate("order", self.order), methods=["GET"]),
            Route(f"{agent}/balance", gate("balance", self.balance), methods=["GET"]),
            Route(f"{agent}/deposits", gate("deposits", self.deposits), methods=["GET"]),
            Route("/_sandbox/faults", _by_method(GET=admin(self.get_faults), PATCH=admin(self.patch_faults)),
                  methods=["GET", "PATCH"]),
            Route("/_sandbox/time", admin(self.advance_time), methods=["POST"]),
            Route("/_sandbox/deposits", admin(self.add_deposit), methods=["POST"]),
            Route("/_sandbox/deposits/{deposit_id:int}/post", admin(self.post_deposit), methods=["POST"]),
            Route("/_sandbox/deposits/{deposit_id:int}/reject", admin(self.reject_deposit), methods=["POST"]),
            Route("/_sandbox/balance", admin(self.set_balance), methods=["PUT"]),
            Route("/_sandbox/orders", admin(self.all_orders), methods=["GET"]),
            Route("/_sandbox/orders/{order_id}/complete", admin(self.complete_order), methods=["POST"]),
            Route("/_sandbox/orders/{order_id}/fail", admin(self.fail_order), methods=["POST"]),
            Route("/_sandbox/stats", admin(self.stats), methods=["GET"]),
            Route("/_sandbox/reset", admin(self.reset), methods=["POST"]),
        ]

    def _gate(self, endpoint: str, handler: Endpoint) -> Endpoint:
        """A business endpoint: counted, faulted, authenticated."""

        async def serve(request: Request) -> Response:
            self.sim.count_request(endpoint)
            plan = self.sim.plan_request(endpoint)
            # Read the whole request first: a slow Gate still processes what it received, so a
            # client that gives up during the latency leaves an order behind (outcome unknown).
            await request.body()
            response = await _before(request, endpoint, plan)
            if response is None:
                try:
                    self.sim.authenticate(request.headers.get("authorization"),
                                          request.path_params["agent_id"])
                    response = await handler(request)
                except SandboxError as exc:
                    response = _error(exc)
                response = _after(response, endpoint, plan)
                if plan.delay > 0:
                    await asyncio.sleep(plan.delay)
            self.sim.count_response(response.status_code)
            return response

        return serve

    @staticmethod
    def _admin(handler: Endpoint) -> Endpoint:
        async def serve(request: Request) -> Response:
            try:
                return await handler(request)
            except SandboxError as exc:
                return _error(exc)

        return serve

    # -- Gate API -------------------------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        self.sim.count_request(HEALTH)
        plan = self.sim.plan_request(HEALTH)
        if plan.delay > 0:
            await asyncio.sleep(plan.delay)
        body = self.sim.health()
        status = 200 if body["status"] == "ok" else 503
        self.sim.count_response(status)
        return _json(body, status)

    async def product_types(self, request: Request) -> Response:
        return _json(self.sim.product_types())

    async def categories(self, request: Request) -> Response:
        return _json(self.sim.categories())

    async def products(self, request: Request) -> Response:
        page, size = _page_params(request)
        return _json(self.sim.list_products(
            page=page, page_size=size, product_type_id=_int_param(request, "product_type_id"),
            category_id=_int_param(request, "category_id"), is_active=_bool_param(request, "is_active")))

    async def product(self, request: Request) -> Response:
        return _json(self.sim.get_product(request.path_params["product_id"]))

    async def orders(self, request: Request) -> Response:
        page, size = _page_params(request)
        status = request.query_params.get("status") or None
        return _json(self.sim.list_orders(page=page, page_size=size, status=status,
                                          product_id=_int_param(request, "product_id")))

    async def create_order(self, request: Request) -> Response:
        result = self.sim.create_order(await request.body(),
                                       idempotency_key=request.headers.get("idempotency-key"))
        return _json(result.order, result.status)

    async def order(self, request: Request) -> Response:
        return _json(self.sim.get_order(request.path_params["order_id"]))

    async def balance(self, request: Request) -> Response:
        return _json(self.sim.balance())

    async def deposits(self, request: Request) -> Response:
        page, size = _page_params(request)
        return _json(self.sim.list_deposits(page=page, page_size=size,
                                            status=request.query_params.get("status") or None))

    # -- admin ----------------------------------------------------------------------------------------------

    async def get_faults(self, request: Request) -> Response:
        return _json(self.sim.faults.as_dict())

    async def patch_faults(self, request: Request) -> Response:
        return _json(self.sim.update_faults(await _json_object(request)))

    async def advance_time(self, request: Request) -> Response:
        body = await _json_object(request)
        return _json({"now": iso(self.sim.advance_time(body.get("advance")))})

    async def add_deposit(self, request: Request) -> Response:
        body = await _json_object(request)
        deposit = self.sim.add_deposit(body.get("currency_code"), body.get("amount"),
                                       status=body.get("status", "posted"),
                                       method=body.get("method", "manual"),
                                       external_ref=body.get("external_ref"))
        return _json(deposit, 201)

    async def post_deposit(self, request: Request) -> Response:
        return _json(self.sim.post_deposit(request.path_params["deposit_id"]))

    async def reject_deposit(self, request: Request) -> Response:
        return _json(self.sim.reject_deposit(request.path_params["deposit_id"]))

    async def set_balance(self, request: Request) -> Response:
        body = await _json_object(request)
        return _json(self.sim.set_balance(body.get("currency_code"), body.get("available")))

    async def all_orders(self, request: Request) -> Response:
        items = self.sim.all_orders()
        return _json({"items": items, "total": len(items)})

    async def complete_order(self, request: Request) -> Response:
        return _json(self.sim.finish_order(request.path_params["order_id"]))

    async def fail_order(self, request: Request) -> Response:
        body = await _json_object(request)
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise SandboxError(400, "validation_error", "reason must be a string")
        return _json(self.sim.finish_order(request.path_params["order_id"], fail=True, reason=reason))

    async def stats(self, request: Request) -> Response:
        return _json(self.sim.stats())

    async def reset(self, request: Request) -> Response:
        self.sim.reset()
        return _json({"status": "reset"})


# -- errors outside the routes ----------------------------------------------------------------------------


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths (404) and methods (405) in the contract's error shape."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    message = {404: "no such resource", 405: "method not allowed here"}.get(status, "HTTP error")
    headers = exc.headers if isinstance(exc, HTTPException) else None
    return _json({"error": {"code": code, "message": message}}, status, headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    """A bug in the sandbox still answers in the contract's shape (and the server logs it)."""
    return _json({"error": {"code": "internal_error", "message": "internal server error"}}, 500)


class _Persisted:
    """ASGI wrapper keeping a simulator in step with its :class:`StateFile`.

    Every request first picks up what another process saved; a mutating request (not GET/HEAD) runs
    holding the inter-process lock and saves when it is done, whatever it answered.
    """

    def __init__(self, app: ASGIApp, *, sim: Simulator, state: StateFile) -> None:
        self.app = app
        self.sim = sim
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD"):
            self.state.refresh(self.sim)
            await self.app(scope, receive, send)
            return
        async with self.state.locked():
            self.state.refresh(self.sim)
            try:
                await self.app(scope, receive, send)
            finally:
                self.state.save(self.sim)


def create_app(config: SandboxConfig | None = None, *, clock: Clock | None = None,
               state_path: str | os.PathLike[str] | None = None) -> Starlette:
    """A sandbox: ``app.state.sim`` is its :class:`Simulator` (default clock: ``OffsetClock``).

    With ``state_path`` the account lives in that file (see :mod:`gatebot.sandbox.state`): loaded
    now if it exists, saved after each mutating request; otherwise it lives as long as the app.
    """
    sim = Simulator(config, clock=clock)
    app = Starlette(routes=_Routes(sim).table(),
                    exception_handlers={HTTPException: _http_error, Exception: _internal_error})
    app.state.sim = sim
    if state_path is not None:
        state = StateFile(state_path)
        state.load(sim)
        app.state.state_file = state
        app.add_middleware(_Persisted, sim=sim, state=state)
    return app
