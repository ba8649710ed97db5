"""Composition root: builds the store, cipher, Gate client and order service from :class:`Settings`.

The only module (with ``cli.py``) that knows every layer. The Slack app and the scheduler are attached
by :mod:`gatebot.cli` through :class:`Core`, so the core objects are built once per process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from gatebot import monitor
from gatebot.clock import Clock, SystemClock
from gatebot.config import KEY_COMMAND, ConfigError, Settings, production_problems
from gatebot.events import EventBus
from gatebot.gate import GateClient
from gatebot.metrics import default_metrics
from gatebot.orders import OrderService
from gatebot.store.crypto import Cipher, cipher_from_key
from gatebot.store.db import Database, is_memory_sqlite, make_engine, normalize_url, prepare_schema

__all__ = ["SANDBOX_STATE_FILE", "Core", "build_cipher", "build_database", "core", "sandbox_state_path"]

log = logging.getLogger(__name__)

#: The built-in sandbox's state file when the store is not a SQLite file.
SANDBOX_STATE_FILE = "gatebot.sandbox.json"


@dataclass
class Core:
    """Everything the surfaces (Slack, CLI, jobs) share in one process."""

    settings: Settings
    db: Database
    cipher: Cipher
    gate: GateClient
    orders: OrderService
    events: EventBus
    clock: Clock
    sandbox_app: object | None = None
    extras: dict[str, object] = field(default_factory=dict)


def build_cipher(settings: Settings) -> Cipher:
    """The store's cipher; refuses production without a key unless the plaintext opt-out is set.

    The opt-out warns at every start: it is a decision someone must keep seeing in the logs.
    """
    problems = production_problems(settings)
    if problems:
        raise ConfigError(problems)
    secret = settings.gatebot_encryption_key
    key = secret.get_secret_value() if secret is not None and settings.has_encryption_key else None
    if key is None and settings.is_production:
        log.warning("GATEBOT_ALLOW_PLAINTEXT_SECRETS=true and no GATEBOT_ENCRYPTION_KEY: voucher codes and "
                    "customer-account fields are stored UNENCRYPTED. Make a key with: %s", KEY_COMMAND)
    return cipher_from_key(key)


def build_database(settings: Settings, *, check: bool = True) -> Database:
    """The store; ``check``: migrate it if it is SQLite, else refuse an out-of-date schema."""
    engine = make_engine(settings.database_url)
    if check:
        try:
            prepare_schema(engine)
        except BaseException:
            engine.dispose()
            raise
    return Database(engine)


def sandbox_state_path(settings: Settings) -> Path | None:
    """Where the built-in sandbox keeps its account between processes.

    Beside a SQLite store (``gatebot.db`` -> ``gatebot.sandbox.json``), so the store and the Gate
    account it refers to live and go together. With PostgreSQL: ``gatebot.sandbox.json`` in the
    working directory (the built-in sandbox is for trying gatebot out on one machine; set
    ``GATE_API_URL`` to share a Gate between machines). An in-memory SQLite store: none (the sandbox
    lives as long as the process, like the store).
    """
    url = normalize_url(settings.database_url)
    if url.get_backend_name() != "sqlite":
        return Path(SANDBOX_STATE_FILE)
    if is_memory_sqlite(url):
        return None
    db_path = Path(url.database or "").expanduser()
    return db_path.with_name(db_path.stem + ".sandbox.json")


def gate_transport(settings: Settings, clock: Clock) -> tuple[httpx.AsyncBaseTransport | None, object | None]:
    """The built-in sandbox (in-process, state kept beside the store) when ``GATE_API_URL`` is unset."""
    if not settings.uses_builtin_sandbox:
        return None, None
    from gatebot.sandbox.app import create_app
    from gatebot.sandbox.simulator import SandboxConfig

    app = create_app(SandboxConfig(api_key=settings.effective_gate_key, agent_id=settings.effective_agent_id),
                     clock=clock, state_path=sandbox_state_path(settings))
    return httpx.ASGITransport(app=app), app


@asynccontextmanager
async def core(settings: Settings, *, clock: Clock | None = None, check_schema: bool = True,
               gate_transport_override: httpx.AsyncBaseTransport | None = None) -> AsyncIterator[Core]:
    """Build the core for one process; closes the Gate client and the engine on exit."""
    clock = clock or SystemClock()
    db = build_database(settings, check=check_schema)
    cipher = build_cipher(settings)
    transport, sandbox_app = (gate_transport_override, None) if gate_transport_override else \
        gate_transport(settings, clock)
    base_url = settings.gate_api_url or "http://sandbox.gatebot.invalid/"
    timeout = httpx.Timeout(settings.gate_timeout, connect=settings.gate_connect_timeout)
    events = EventBus()
    calls = monitor.CallRecorder()  # failed real calls count towards "Gate is down" (health job)
    client = GateClient(base_url=base_url, api_key=settings.effective_gate_key,
                        agent_id=settings.effective_agent_id, timeout=timeout, transport=transport,
                        on_attempt=calls, on_call=default_metrics().gate_call)
    orders = OrderService(
        db=db, gate_client=client, cipher=cipher, clock=clock, events=events,
        account_fields=settings.gatebot_account_fields, default_margin=settings.gatebot_topup_margin,
        resume_on_deposit=settings.gatebot_resume_on_deposit,
        gate_available=lambda: not monitor.circuit_open(db),  # refuse new orders while the circuit is open
    )
    try:
        yield Core(settings=settings, db=db, cipher=cipher, gate=client, orders=orders, events=events,
                   clock=clock, sandbox_app=sandbox_app, extras={"gate_calls": calls})
    finally:
        await client.aclose()
        db.dispose()
