"""The Gate API sandbox: a faithful, deterministic simulator of ``shared/gate-api.md``.

* :mod:`~gatebot.sandbox.catalog` — seed data (products, categories, balances, deposits);
* :mod:`~gatebot.sandbox.simulator` — the state machine (:class:`Simulator`) and :class:`SandboxConfig`;
  no HTTP. Its parts: :mod:`~gatebot.sandbox.orders` (order book), :mod:`~gatebot.sandbox.ledger`
  (balances, deposits), :mod:`~gatebot.sandbox.faults` (:class:`Faults`, plans, statistics),
  :mod:`~gatebot.sandbox.contract` (errors, limits, pagination), :mod:`~gatebot.sandbox.jsonio` (JSON);
* :mod:`~gatebot.sandbox.state` — the saved state (pydantic);
* :mod:`~gatebot.sandbox.app` — :func:`create_app`, the Starlette ASGI app (``app.state.sim``);
* :mod:`~gatebot.sandbox.server` — :func:`serve` and :func:`running_sandbox` (uvicorn);
* ``python -m gatebot.sandbox`` — the command line.

In process: ``httpx.AsyncClient(transport=httpx.ASGITransport(create_app(...)))``.

Must not import Slack, the scheduler or gatebot.gate (the sandbox is an independent implementation
of the contract, so it cannot share the client's mistakes).
"""

from gatebot.sandbox.app import create_app
from gatebot.sandbox.catalog import Catalog, default_catalog
from gatebot.sandbox.server import RunningSandbox, running_sandbox, serve
from gatebot.sandbox.simulator import CreateResult, FaultPlan, Faults, SandboxConfig, SandboxError, Simulator

__all__ = [
    "Catalog",
    "CreateResult",
    "FaultPlan",
    "Faults",
    "RunningSandbox",
    "SandboxConfig",
    "SandboxError",
    "Simulator",
    "create_app",
    "default_catalog",
    "running_sandbox",
    "serve",
]
