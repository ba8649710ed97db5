"""The composition root: one typed :class:`Runtime` built from :class:`Settings`, with ``start()``/``stop()``.

What lives here
    * :class:`Core` — the core services one process shares: store, cipher, Gate client (and the
      :class:`~gatebot.health.calls.CallRecorder` it reports to), event bus, order service, bulk service,
      clock. Built by
      :func:`build_core` (or the :func:`core` context manager, which closes it).
    * :class:`Runtime` — the core plus the edges this process runs: the Slack surface (app, listener
      dependencies, notifier) when Slack settings are present and asked for, the job scheduler when jobs
      run here, and the alert poster. Built by :func:`build_runtime` (or :func:`runtime`).
    * :meth:`Runtime.run` — the one stop sequence of ``gatebot serve``/``socket``/``clock``: on
      SIGTERM/SIGINT (or ``stop``) the serving ends, in-flight Slack work drains, the scheduler stops
      (running jobs finish, the lease is released), the notifier finishes posting, the Gate client closes
      and the store is disposed.

Nothing else wires components: the CLI, the demo, the benches and the tests' harnesses take their pieces
from here. The edges get narrow protocols (``gatebot.slack.deps.Deps`` holds services, not this module's
objects). May import every layer (Slack and the scheduler lazily, so ``gatebot orders`` does not load them).
Nothing happens at import time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import httpx

from gatebot.bulk import BulkService
from gatebot.clock import Clock, SystemClock
from gatebot.config import KEY_COMMAND, ConfigError, Settings, needs_encryption_key, production_problems
from gatebot.events import EventBus
from gatebot.gate import GateClient, RetryPolicy
from gatebot.health.calls import CallRecorder
from gatebot.health.circuit import circuit_open_async
from gatebot.metrics import default_metrics
from gatebot.orders import ApprovalPolicy, OrderService
from gatebot.poster import LogPoster, Poster
from gatebot.signals import stop_on_signals
from gatebot.store.crypto import Cipher, cipher_from_key
from gatebot.store.db import Database, is_memory_sqlite, make_engine, normalize_url, prepare_schema

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from gatebot.jobs import JobContext, JobSpec
    from gatebot.scheduler import LeadershipHook, Scheduler
    from gatebot.slack.deps import Deps, StatusSource
    from gatebot.slack.deps import Scheduler as SchedulerView
    from gatebot.slack.notifier import Notifier

__all__ = [
    "SANDBOX_STATE_FILE",
    "Core",
    "Runtime",
    "Serving",
    "SlackSurface",
    "build_cipher",
    "build_core",
    "build_database",
    "build_notifier",
    "build_runtime",
    "build_scheduler",
    "build_slack",
    "core",
    "runtime",
    "sandbox_state_path",
    "until_stopped",
]

log = logging.getLogger(__name__)

#: The built-in sandbox's state file when the store is not a SQLite file.
SANDBOX_STATE_FILE = "gatebot.sandbox.json"

#: How long a stopping process waits for Slack work still in flight (listeners, notifications).
DRAIN_TIMEOUT = 10.0

#: What a long-running command serves until ``stopped`` is set (``hurry``: a second signal arrived).
Serving = Callable[[asyncio.Event, asyncio.Event], Awaitable[None]]


async def until_stopped(stopped: asyncio.Event, _hurry: asyncio.Event) -> None:
    """The :data:`Serving` of ``gatebot clock``: nothing to serve, only the jobs, until stopped."""
    await stopped.wait()


@dataclass
class Core:
    """The core services one process shares (the edges get the ones they call, not this object)."""

    settings: Settings
    clock: Clock
    db: Database
    cipher: Cipher
    gate: GateClient
    #: The Gate client's ``on_attempt`` hook: failed real calls count towards "Gate is down" (health job).
    gate_calls: CallRecorder
    events: EventBus
    orders: OrderService
    #: Bulk batches over ``orders`` (the CLI's ``gatebot bulk``; placed by the leader's bulk job).
    bulk: BulkService

    async def aclose(self) -> None:
        """Close the Gate client and dispose of the store (idempotent)."""
        await self.gate.aclose()
        self.db.dispose()


def build_cipher(settings: Settings) -> Cipher:
    """The store's cipher; refuses production without a key unless the plaintext opt-out is set.

    The opt-out warns at every start: it is a decision someone must keep seeing in the logs.
    """
    problems = production_problems(settings)
    if problems:
        raise ConfigError(problems)
    secret = settings.gatebot_encryption_key
    key = secret.get_secret_value() if secret is not None and settings.has_encryption_key else None
    if key is None and needs_encryption_key(settings):
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


def gate_transport(settings: Settings, clock: Clock) -> httpx.AsyncBaseTransport | None:
    """The built-in sandbox (in-process, state kept beside the store) when ``GATE_API_URL`` is unset."""
    if not settings.uses_builtin_sandbox:
        return None
    from gatebot.sandbox.app import create_app
    from gatebot.sandbox.simulator import SandboxConfig

    app = create_app(SandboxConfig(api_key=settings.effective_gate_key, agent_id=settings.effective_agent_id),
                     clock=clock, state_path=sandbox_state_path(settings))
    return httpx.ASGITransport(app=app)


def build_gate_client(settings: Settings, clock: Clock, *, transport: httpx.AsyncBaseTransport | None = None,
                      calls: CallRecorder | None = None, retry: RetryPolicy | None = None) -> GateClient:
    """The Gate client for ``settings``: ``transport`` (default: the network, or the built-in sandbox when
    ``GATE_API_URL`` is unset), timeouts from the settings, metrics on every call."""
    if transport is None:
        transport = gate_transport(settings, clock)
    timeout = httpx.Timeout(settings.gate_timeout, connect=settings.gate_connect_timeout)
    base_url = settings.gate_api_url or "http://sandbox.gatebot.invalid/"
    if retry is not None:
        return GateClient(base_url=base_url, api_key=settings.effective_gate_key,
                          agent_id=settings.effective_agent_id, timeout=timeout, transport=transport, retry=retry,
                          on_attempt=calls, on_call=default_metrics().gate_call)
    return GateClient(base_url=base_url, api_key=settings.effective_gate_key, agent_id=settings.effective_agent_id,
                      timeout=timeout, transport=transport, on_attempt=calls, on_call=default_metrics().gate_call)


def build_core(settings: Settings, *, clock: Clock | None = None, check_schema: bool = True,
               gate_transport: httpx.AsyncBaseTransport | None = None) -> Core:
    """The core of one process (close it with :meth:`Core.aclose`). ``gate_transport`` replaces the
    network (tests, the demo: an in-process sandbox)."""
    clock = clock or SystemClock()
    db = build_database(settings, check=check_schema)
    try:
        cipher = build_cipher(settings)
        calls = CallRecorder()
        client = build_gate_client(settings, clock, transport=gate_transport, calls=calls)
    except BaseException:
        db.dispose()
        raise
    events = EventBus()
    orders = OrderService(
        db=db, gate_client=client, cipher=cipher, clock=clock, events=events,
        account_fields=settings.gatebot_account_fields, default_margin=settings.gatebot_topup_margin,
        resume_on_deposit=settings.gatebot_resume_on_deposit,
        gate_available=lambda: gate_up(db),  # refuse new orders while the circuit is open
        approval_policy=ApprovalPolicy.from_settings(settings),
    )
    bulk = BulkService(orders=orders, rate=settings.gatebot_bulk_rate,
                       results_ttl=timedelta(seconds=settings.gatebot_bulk_results_ttl))
    return Core(settings=settings, clock=clock, db=db, cipher=cipher, gate=client, gate_calls=calls,
                events=events, orders=orders, bulk=bulk)


@asynccontextmanager
async def core(settings: Settings, *, clock: Clock | None = None, check_schema: bool = True,
               gate_transport: httpx.AsyncBaseTransport | None = None) -> AsyncIterator[Core]:
    """:func:`build_core`, closed on exit."""
    built = build_core(settings, clock=clock, check_schema=check_schema, gate_transport=gate_transport)
    try:
        yield built
    finally:
        await built.aclose()


SlackMode = Literal["http", "socket"]


@dataclass
class SlackSurface:
    """The Bolt app and the dependencies its listeners captured (``deps.notifier`` is the notifier)."""

    app: AsyncApp
    deps: Deps
    socket_mode: bool


def build_slack(built: Core, *, socket_mode: bool = False, status: StatusSource | None = None,
                scheduler: SchedulerView | None = None) -> SlackSurface:
    """The Slack app over ``built``: one Web API client (``SLACK_API_URL``), the roles, the notifier (not
    yet subscribed: :func:`build_runtime` does that once) and the listeners' :class:`~gatebot.slack.deps.Deps`.
    Raises :class:`~gatebot.slack.app.SlackConfigError` for incomplete Slack settings."""
    from gatebot.health import status as stored_status
    from gatebot.slack.app import check_settings, create_app, make_client
    from gatebot.slack.deps import Deps
    from gatebot.slack.notifier import Notifier
    from gatebot.slack.roles import Roles

    settings = built.settings
    check_settings(settings, socket_mode=socket_mode)
    client = make_client(settings)
    deps = Deps(settings=settings, db=built.db, clock=built.clock, orders=built.orders, gate=built.gate,
                roles=Roles.from_settings(settings, client=client, clock=built.clock),
                status=status or stored_status, bulk=built.bulk,
                notifier=Notifier(built, client), scheduler=scheduler)
    return SlackSurface(app=create_app(deps, client=client, socket_mode=socket_mode), deps=deps,
                        socket_mode=socket_mode)


def build_notifier(built: Core) -> Notifier:
    """The notifier alone, for a process without the Slack app (``gatebot clock``): order events from the
    tracking job still edit the status messages and deliver codes. Needs ``SLACK_BOT_TOKEN``."""
    from gatebot.slack.app import SlackConfigError, make_client
    from gatebot.slack.notifier import Notifier

    if built.settings.slack_bot_token is None:
        raise SlackConfigError(["SLACK_BOT_TOKEN is not set: order messages cannot be updated from this process."])
    return Notifier(built, make_client(built.settings))


@dataclass
class Runtime:
    """One process: the :class:`Core` and the edges it runs. ``slack``: the Bolt app and its listeners'
    dependencies (``serve``/``socket``); ``notifier``: order messages in Slack (also in ``clock`` when a
    bot token is set); ``scheduler``: the jobs (when they run in this process); ``poster``: where the
    jobs' alerts, deposits and digests go (Slack, or the log without a bot token; built with the jobs);
    ``metrics_port``: ``GET /metrics`` of a process without the web app (``gatebot clock``), served from
    :meth:`start` to :meth:`stop` (``0``: any free port; :attr:`metrics_bound` is the one it got)."""

    core: Core
    poster: Poster | None = None
    slack: SlackSurface | None = None
    notifier: Notifier | None = None
    scheduler: SchedulerView | None = None
    metrics_port: int | None = None
    metrics_bound: int | None = None
    _stop_metrics: Callable[[], None] | None = None
    _stopped: bool = False

    @property
    def settings(self) -> Settings:
        return self.core.settings

    async def start(self) -> None:
        """Start the scheduler (if jobs run here) and the metrics endpoint (if any); the Slack app needs no
        start."""
        if self.scheduler is not None:
            await self.scheduler.start()
        if self.metrics_port is not None and self._stop_metrics is None:
            from gatebot.metrics import StoreCollector, serve_metrics

            scheduler = self.scheduler
            built = self.core
            collector = StoreCollector(
                built.db, now=built.clock.now, thresholds=built.settings.gatebot_low_balance,
                leader=(lambda: bool(scheduler.status().get("leader"))) if scheduler is not None else None)
            self.metrics_bound, self._stop_metrics = serve_metrics(self.metrics_port, collector)

    async def stop(self) -> None:
        """Drain in-flight Slack work, stop the scheduler (running jobs finish, the lease is released), let
        the notifier post what the last order events asked for, close the Gate client, dispose the store.
        Each wait is bounded by :data:`DRAIN_TIMEOUT`; a second call does nothing."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.slack is not None:
                from gatebot.slack.app import drain_listeners

                await drain_listeners(DRAIN_TIMEOUT)
            if self.scheduler is not None:
                await self.scheduler.shutdown()
            if self._stop_metrics is not None:
                self._stop_metrics()
            if self.notifier is not None:
                try:
                    await self.notifier.drain(DRAIN_TIMEOUT)
                except TimeoutError:
                    log.warning("stopped with order notifications still unsent; the next order event re-renders "
                                "them")
        finally:
            await self.core.aclose()

    async def run(self, serving: Serving, *, stop: asyncio.Event | None = None) -> None:
        """``start()``, then ``serving`` until SIGTERM/SIGINT or ``stop``, then ``stop()``. A second signal
        sets ``serving``'s ``hurry`` event (e.g. "stop waiting for open requests")."""
        hurry = asyncio.Event()
        with stop_on_signals(stop or asyncio.Event(), again=hurry.set) as stopped:
            try:
                await self.start()
                await serving(stopped, hurry)
            finally:
                await self.stop()


def build_runtime(
    built: Core,
    *,
    slack: SlackMode | None = None,
    notifier: bool | None = None,
    jobs: bool | None = None,
    job_specs: Sequence[JobSpec] | None = None,
    scheduler: SchedulerView | None = None,
    poster: Poster | None = None,
    status: StatusSource | None = None,
    scheduler_view: SchedulerView | None = None,
    lease_ttl: float | None = None,
    on_leadership: LeadershipHook | None = None,
    metrics_port: int | None = None,
) -> Runtime:
    """The edges of one process around ``built``.

    ``slack``: build the Slack app for HTTP or Socket Mode (refuses incomplete Slack settings with
    :class:`~gatebot.slack.app.SlackConfigError`). ``notifier``: order messages without the app (default:
    with the app, or when a bot token is set). ``jobs``: run the scheduler here (default
    ``GATEBOT_RUN_JOBS`` with an app, else no); ``job_specs``/``lease_ttl``/``on_leadership`` tune it, or
    ``scheduler`` is the one to run (built by :func:`build_scheduler`, or a test's stand-in).
    ``poster``: default an :class:`~gatebot.slack.alert_poster.AlertPoster` when a bot token is set, else
    a :class:`~gatebot.poster.LogPoster`. ``status``: what the app reports on alerts, circuit and jobs
    (default :mod:`gatebot.health.status`). ``scheduler_view``: what the app reports as this process's scheduler
    (default the scheduler built here). ``metrics_port``: serve ``GET /metrics`` there (a process
    without the web app, whose own ``/metrics`` route covers ``serve``).
    """
    settings = built.settings
    surface = None
    if slack is not None:
        from gatebot.slack.app import check_settings

        check_settings(settings, socket_mode=slack == "socket")  # before anything is built or started
    if scheduler is None and (jobs if jobs is not None else (slack is not None and settings.gatebot_run_jobs)):
        poster = poster or _default_poster(built)
        scheduler = build_scheduler(built, poster, jobs=job_specs, lease_ttl=lease_ttl, on_leadership=on_leadership)
    the_notifier = None
    if slack is not None:
        surface = build_slack(built, socket_mode=slack == "socket", status=status,
                              scheduler=scheduler_view or scheduler)
        the_notifier = surface.deps.notifier
    elif notifier if notifier is not None else settings.slack_bot_token is not None:
        the_notifier = build_notifier(built)
    if the_notifier is not None:
        the_notifier.subscribe(built.events)
    return Runtime(core=built, poster=poster, slack=surface, notifier=the_notifier, scheduler=scheduler,
                   metrics_port=metrics_port)


def _default_poster(built: Core) -> Poster:
    if built.settings.slack_bot_token is None:
        return LogPoster()
    from gatebot.slack.alert_poster import AlertPoster

    return AlertPoster.for_settings(built.settings, db=built.db, clock=built.clock)


def job_context(built: Core, poster: Poster, *, jobs: Sequence[JobSpec] | None = None) -> JobContext:
    """The jobs' context over ``built``'s services."""
    from gatebot.jobs import build_context

    return build_context(built.settings, db=built.db, clock=built.clock, orders=built.orders, gate=built.gate,
                         calls=built.gate_calls, poster=poster, jobs=jobs, bulk=built.bulk)


def build_scheduler(built: Core, poster: Poster, *, jobs: Sequence[JobSpec] | None = None,
                    lease_ttl: float | None = None, on_leadership: LeadershipHook | None = None) -> Scheduler:
    """The job scheduler (with its leader lease) over ``built``'s services."""
    from gatebot.scheduler import DEFAULT_LEASE_TTL, Scheduler

    return Scheduler(job_context(built, poster, jobs=jobs), lease_ttl=lease_ttl or DEFAULT_LEASE_TTL,
                     on_leadership=on_leadership)


@asynccontextmanager
async def runtime(settings: Settings, *, clock: Clock | None = None, check_schema: bool = True,
                  gate_transport: httpx.AsyncBaseTransport | None = None, slack: SlackMode | None = None,
                  notifier: bool | None = None, jobs: bool | None = None,
                  metrics_port: int | None = None) -> AsyncIterator[Runtime]:
    """:func:`build_core` + :func:`build_runtime`; :meth:`Runtime.stop` on exit."""
    built = build_core(settings, clock=clock, check_schema=check_schema, gate_transport=gate_transport)
    try:
        rt = build_runtime(built, slack=slack, notifier=notifier, jobs=jobs, metrics_port=metrics_port)
    except BaseException:
        await built.aclose()
        raise
    try:
        yield rt
    finally:
        await rt.stop()


async def gate_up(db: Database) -> bool:
    """Whether new orders may go to Gate: the circuit of the stored health alert is closed (read off the loop)."""
    return not await circuit_open_async(db)
