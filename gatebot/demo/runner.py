"""Everything ``gatebot demo`` runs, in one asyncio process, on embedded defaults.

What lives here
    :func:`running_demo` starts, in the running event loop and with no configuration at all (environment,
    ``.env`` and ``gatebot.toml`` are ignored):

    * the **Gate sandbox** in-process (``httpx.ASGITransport``) on the demo clock;
    * a **SQLite store** in a temporary directory (or ``--db PATH``), migrated to head;
    * **settings** with a generated signing secret and bot token, ``GATEBOT_ENV=development``, roles for
      the demo people (:data:`DEMO_PEOPLE`), ``GATEBOT_LOW_BALANCE=USD:500/100``, alerts in ``#gate-ops``
      and finance news in ``#finance``, orders over USD 500 waiting for approval (requests in
      ``#finance``), short job intervals;
    * the **Slack emulator** (:class:`~gatebot.emulator.EmulatorServer`: the Web API on a loopback port);
    * the **real Slack app** in HTTP mode (:func:`gatebot.runtime.build_runtime` +
      :func:`gatebot.slack.web.create_web_app`) served by uvicorn on another loopback port, its
      ``SLACK_API_URL`` pointing at the emulator, and a :class:`~gatebot.emulator.SlackDriver` that sends
      it signed requests as Slack would;
    * the **scheduler** (:mod:`gatebot.scheduler`) with the Slack alert poster.

Time: the sandbox, the core, the jobs and the emulator share one clock that ``:time +1h`` advances.
Interactive demos run on an :class:`~gatebot.clock.OffsetClock` (real time plus an offset) with the real
APScheduler running the jobs live; scripted ones (``--script``) on a :class:`~gatebot.clock.ManualClock`
that moves only when told, with no timers at all, so a transcript is the same on every run. Either way
:class:`JobRunner` lets time pass: it steps the clock forward and runs every job body that became due at
each step (as the scheduler would have), so alerts fire, orders complete and deposits are announced.

:class:`Settler` is how the demo knows the app has finished reacting: it waits until every task started
since a mark (request handlers, work Bolt does after ``ack()``, the notifier's posts) is done and the
store has no unit of work in flight (``Database.busy``).

May import everything; the demo's pieces come from :mod:`gatebot.runtime`'s builders (it wires only the
stand-ins: the sandbox, the emulator and the terminal around them).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
import tempfile
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from sqlalchemy import Engine, event

from gatebot.clock import Clock, ManualClock, OffsetClock
from gatebot.config import Settings
from gatebot.emulator import EmulatorServer, LoopbackServer, SlackDriver, Workspace
from gatebot.health.job_runs import SCHEDULER_LEASE, register_job
from gatebot.jobs import JobContext, JobOutcome, JobSpec, run_job
from gatebot.runtime import Core, build_core, build_runtime, build_scheduler, job_context
from gatebot.sandbox.app import create_app as create_sandbox
from gatebot.sandbox.simulator import SandboxConfig, Simulator
from gatebot.scheduler import Scheduler
from gatebot.store import repo
from gatebot.store.db import make_engine, upgrade

__all__ = [
    "DEMO_PEOPLE",
    "DEMO_START",
    "AdvanceReport",
    "DemoClock",
    "DemoRuntime",
    "DemoSettings",
    "JobRunner",
    "Person",
    "Settler",
    "demo_settings",
    "demo_workspace",
    "parse_duration",
    "prepare_database",
    "running_demo",
]

log = logging.getLogger(__name__)

#: Where a scripted demo's clock starts (a transcript shows the same dates on every run).
DEMO_START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
#: The scripted demo's scheduler lease, renewed at every step of the clock.
LEASE_TTL = timedelta(days=2)
#: At most this many steps for one ``:time`` jump (jobs due in between coalesce into one run per step):
#: ``+10m`` runs every job at its interval, ``+1h`` at most once a minute, ``+1d`` every 24 minutes.
MAX_STEPS = 60
OPS_CHANNEL = "COPS"
FINANCE_CHANNEL = "CFINANCE"
SUPPORT_GROUP = "SSUPPORT"


@dataclass(frozen=True, slots=True)
class Person:
    """A demo user and the gatebot roles configured for them."""

    id: str
    name: str
    real_name: str
    roles: tuple[str, ...]
    tz: str = "UTC"
    note: str = ""


#: The people of the demo workspace (alice is who you are at first).
DEMO_PEOPLE: tuple[Person, ...] = (
    Person("UALICE", "alice", "Alice Adams", ("admin",), "Europe/Berlin", "admin: every role"),
    Person("UBOB", "bob", "Bob Brown", ("ops",), "America/New_York", "ops: buys"),
    Person("UCAROL", "carol", "Carol Chen", ("finance",), "Asia/Singapore", "finance: balances, deposits"),
    Person("UERIN", "erin", "Erin Evans", ("support",), "UTC", "support: lookups (via the @gate-support group)"),
    Person("UDAVE", "dave", "Dave Diaz", (), "UTC", "no gatebot role"),
)


class DemoClock(Clock, Protocol):
    """A clock the demo can move forward (``OffsetClock`` or ``ManualClock``)."""

    def advance(self, delta: timedelta) -> object: ...


class DemoSettings(Settings):
    """:class:`~gatebot.config.Settings` from keyword arguments only: the demo ignores the environment,
    ``.env`` and ``gatebot.toml`` so it behaves the same on every machine."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def demo_workspace(clock: Clock, *, bot_token: str) -> Workspace:
    """The demo team: :data:`DEMO_PEOPLE`, ``#gate-ops`` (everyone, the bot), ``#finance`` (alice, carol,
    the bot), ``#general`` (without the bot) and the ``@gate-support`` group (erin)."""
    ws = Workspace(clock=clock, bot_token=bot_token, team_name="Demo Corp", team_domain="demo-corp")
    for person in DEMO_PEOPLE:
        ws.add_user(person.id, person.name, real_name=person.real_name, tz=person.tz, is_admin="admin" in person.roles)
    everyone = [p.id for p in DEMO_PEOPLE]
    ws.add_channel("gate-ops", id=OPS_CHANNEL, members=everyone)
    ws.add_channel("finance", id=FINANCE_CHANNEL, members=["UALICE", "UCAROL"])
    ws.add_channel("general", id="CGENERAL", members=everyone, bot_member=False)
    ws.add_usergroup("gate-support", id=SUPPORT_GROUP, members=["UERIN"], name="Gate support")
    return ws


def demo_settings(*, database_url: str, slack_api_url: str, bot_token: str, signing_secret: str,
                  live: bool) -> Settings:
    """The demo's settings (see the module docstring). ``live`` picks the short real-time intervals."""
    return DemoSettings(
        slack_bot_token=bot_token,
        slack_signing_secret=signing_secret,
        slack_api_url=slack_api_url,
        database_url=database_url,
        gatebot_env="development",
        gatebot_log_level="WARNING",
        gatebot_admins=[p.id for p in DEMO_PEOPLE if "admin" in p.roles],
        gatebot_ops=[p.id for p in DEMO_PEOPLE if "ops" in p.roles],
        gatebot_finance=[p.id for p in DEMO_PEOPLE if "finance" in p.roles],
        gatebot_support=[SUPPORT_GROUP],
        gatebot_low_balance="USD:500/100",
        gatebot_alert_channel=OPS_CHANNEL,
        gatebot_finance_channel=FINANCE_CHANNEL,
        gatebot_approval_over="USD:500",  # scripts/approvals.gate: larger orders wait for a second person
        gatebot_approval_channel=FINANCE_CHANNEL,
        gatebot_alert_repeat=1800,
        gatebot_track_interval=5 if live else 15,
        gatebot_recover_interval=30 if live else 60,
        gatebot_balance_interval=30 if live else 120,
        gatebot_health_interval=15 if live else 60,
        gatebot_deposit_interval=30 if live else 120,
        gatebot_catalog_interval=900 if live else 3600,
    )


# -- waiting for the app ----------------------------------------------------------------------------------------


class Settler:
    """Waits until the work started since :meth:`mark` is done: every asyncio task created since then
    (HTTP request handlers of the app and the emulator, what Bolt runs after ``ack()``, the notifier's
    Slack calls) has finished.

    ``daemons`` are tasks that never finish (the servers, the scheduler's lease loop); tasks they create
    themselves (``asyncio.wait_for`` in a loop makes one per turn on Python 3.11) are daemon work too:
    :meth:`install` sets a task factory that notes each task's creator.
    """

    def __init__(self) -> None:
        self.daemons: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        #: Whether the store has a unit of work in flight (``Database.busy``): its caller may be gone
        #: (cancelled) while the work still runs to its commit, so no task shows it.
        self.store_busy: Callable[[], bool] = lambda: False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Any = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Note the creator of every task made from now on (:meth:`uninstall` restores the loop)."""
        previous = loop.get_task_factory()
        daemons = self.daemons

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future[Any]:
            task = previous(loop, coro, **kwargs) if previous is not None else asyncio.Task(coro, loop=loop, **kwargs)
            parent = asyncio.current_task(loop)
            if parent is not None and parent in daemons and isinstance(task, asyncio.Task):
                daemons.add(task)
            return task

        self._loop, self._previous = loop, previous
        loop.set_task_factory(factory)

    def uninstall(self) -> None:
        if self._loop is not None:
            self._loop.set_task_factory(self._previous)
            self._loop = None

    def adopt_running(self) -> None:
        """Treat every task running now (servers just started) as a daemon."""
        me = asyncio.current_task()
        for task in asyncio.all_tasks():
            if task is not me:
                self.daemons.add(task)

    def mark(self) -> set[asyncio.Task[Any]]:
        return set(asyncio.all_tasks())

    def _busy(self, before: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
        me = asyncio.current_task()
        return [t for t in asyncio.all_tasks()
                if not t.done() and t is not me and t not in before and t not in self.daemons
                and not _terminal_task(t)]

    async def settle(self, before: set[asyncio.Task[Any]] | None = None, *, timeout: float = 30.0) -> bool:  # noqa: ASYNC109
        """Wait (at most ``timeout`` seconds) until no task started since ``before`` is running.
        Returns ``False`` on timeout (the rest finishes in the background)."""
        before = before if before is not None else set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet_turns = 0
        while True:
            busy = self._busy(before)
            if not busy and self.store_busy():
                quiet_turns = 0
                if loop.time() >= deadline:
                    return False
                await asyncio.sleep(0.001)  # the store's worker thread finishes the unit of work
                continue
            if not busy:
                quiet_turns += 1
                if quiet_turns >= 5:  # callbacks scheduled with call_soon may still create tasks
                    return True
                await asyncio.sleep(0)
                continue
            quiet_turns = 0
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.wait(busy, timeout=min(remaining, 0.5), return_when=asyncio.FIRST_COMPLETED)


def _terminal_task(task: asyncio.Task[Any]) -> bool:
    """A task of the terminal UI's prompt (prompt_toolkit), which is not the app's work."""
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and "prompt_toolkit" in code.co_filename


# -- letting time pass -------------------------------------------------------------------------------------------


@dataclass
class AdvanceReport:
    """What one ``:time`` jump did."""

    now: datetime
    steps: int = 0
    runs: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


class JobRunner:
    """Runs the scheduler's job bodies as time passes on the demo clock.

    ``start()`` does what a scheduler does on becoming leader (every job once, in table order);
    ``advance(delta)`` moves the clock forward in steps — one per job interval, at most
    :data:`MAX_STEPS` — and runs, at each step, every job whose next run is due (once: coalesced). With
    a live scheduler (``scheduler`` given) runs go through it, so they never overlap its own.
    """

    def __init__(self, ctx: JobContext, clock: DemoClock, settler: Settler, *,
                 scheduler: Scheduler | None = None) -> None:
        self.ctx = ctx
        self.clock = clock
        self.settler = settler
        self.scheduler = scheduler
        #: Who holds the scheduler lease in a scripted demo (``/gate health`` shows it).
        self.owner = "gatebot-demo:catch-up"
        self._next: dict[str, datetime] = {}
        self.started = False
        self.last: dict[str, JobOutcome] = {}

    @property
    def specs(self) -> tuple[JobSpec, ...]:
        return self.ctx.jobs

    def _next_due(self, spec: JobSpec, now: datetime) -> datetime:
        if spec.at_minute is not None:
            slot = now.replace(minute=spec.at_minute, second=0, microsecond=0)
            return slot if slot > now else slot + timedelta(hours=1)
        return now + spec.interval

    async def keep_lease(self) -> None:
        """Hold the store's scheduler lease at the current clock time, as a running scheduler does: a
        time jump must not look like a dead scheduler to ``/gate health``."""
        if self.scheduler is not None:
            await self.scheduler.lease_step()
            return
        now = self.clock.now()
        await self.ctx.db.run(
            lambda s: repo.try_acquire_lease(s, SCHEDULER_LEASE, self.owner, now, LEASE_TTL.total_seconds()))

    async def run(self, name: str) -> JobOutcome:
        """One job now (through the live scheduler when there is one), then wait for what it set off."""
        before = self.settler.mark()
        if self.scheduler is not None:
            outcome = await self.scheduler.run_now(name)
        else:
            outcome = await run_job(self.ctx, name)
        self.last[name] = outcome
        await self.settler.settle(before)
        return outcome

    async def start(self, *, run_all: bool = True) -> None:
        """Take the lease (scripted), register the jobs and (``run_all``) run each once, as a new leader does."""
        now = self.clock.now()
        if self.scheduler is None:
            await self.keep_lease()
        specs = self.specs
        await self.ctx.db.run(lambda s: [register_job(s, spec.name, spec.interval, now) for spec in specs])
        self.ctx.started_at = now
        if run_all:
            for spec in self.specs:
                await self.run(spec.name)
        now = self.clock.now()
        self._next = {spec.name: self._next_due(spec, now) for spec in self.specs}
        self.started = True

    async def advance(self, delta: timedelta) -> AdvanceReport:
        """Let ``delta`` pass: step the clock and run the jobs that become due on the way."""
        if delta <= timedelta(0):
            raise ValueError("time only moves forward")
        if not self.started:
            await self.start(run_all=False)
        report = AdvanceReport(now=self.clock.now())
        smallest = min((s.interval for s in self.specs), default=delta)
        min_step = max(delta / MAX_STEPS, timedelta(seconds=1))
        target = self.clock.now() + delta
        while True:
            now = self.clock.now()
            if now >= target:
                break
            upcoming = min(self._next.values(), default=target)
            when = min(target, max(upcoming, now + min_step, now + timedelta(microseconds=1)))
            if smallest <= timedelta(0):  # pragma: no cover - JobSpec forbids it
                when = target
            self.clock.advance(when - now)
            report.steps += 1
            await self.keep_lease()
            now = self.clock.now()
            for spec in self.specs:
                if self._next.get(spec.name, now) <= now:
                    outcome = await self.run(spec.name)
                    report.runs[spec.name] += 1
                    if outcome.error:
                        report.failures.append(f"{spec.name}: {outcome.error}")
                    self._next[spec.name] = self._next_due(spec, self.clock.now())
        report.now = self.clock.now()
        return report


class CatchUpScheduler:
    """What ``/gate health`` and ``/healthz`` see of the scheduler in a scripted demo: no timers, the jobs
    run when ``:time`` lets time pass (:class:`JobRunner`)."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner

    async def start(self) -> None:
        await self.runner.start()

    async def shutdown(self) -> None:
        return None

    def status(self) -> dict[str, Any]:
        last = self.runner.last
        return {
            "running": True,
            "leader": True,
            "mode": "demo: jobs run when :time lets time pass",
            "jobs": [{"name": spec.name, "interval_s": int(spec.interval.total_seconds()),
                      "last_ok": last[spec.name].ok if spec.name in last else None,
                      "last_error": last[spec.name].error if spec.name in last else None}
                     for spec in self.runner.specs],
        }


# -- the runtime -----------------------------------------------------------------------------------------------


@dataclass
class DemoRuntime:
    """Handles on everything :func:`running_demo` started."""

    workspace: Workspace
    emulator: EmulatorServer
    app_server: LoopbackServer
    driver: SlackDriver
    core: Core
    sim: Simulator
    clock: DemoClock
    settings: Settings
    jobs: JobRunner
    settler: Settler
    db_path: Path
    live: bool
    scheduler: Scheduler | None = None
    people: Sequence[Person] = DEMO_PEOPLE

    @property
    def app_url(self) -> str:
        return self.driver.app_url

    def person(self, ref: str) -> Person | None:
        """A demo person by name (``bob``, ``@bob``) or user id."""
        wanted = ref.strip().lstrip("@").lower()
        for person in self.people:
            if wanted in (person.name, person.id.lower()):
                return person
        return None


def prepare_database(path: Path) -> Path:
    """Create (if needed) and migrate the SQLite file at ``path`` to head; returns its absolute path."""
    path = path.expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return path


def _relax_sqlite(engine: Engine) -> None:
    """``synchronous=NORMAL`` on the demo's connections: with WAL journaling this is still crash-safe for
    the database file (only the last transactions may be lost on power loss), and ``:time +1h`` — hundreds
    of small job transactions — runs about a third faster than with a sync on every commit."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections opened so far (the schema check) reconnect with it


def _clock(live: bool) -> DemoClock:
    return OffsetClock() if live else ManualClock(DEMO_START)


@asynccontextmanager
async def running_demo(*, db: Path | None = None, live: bool = False) -> AsyncIterator[DemoRuntime]:
    """Start the whole demo in the running loop (see the module docstring); stop it on exit.

    ``live``: real time (an ``OffsetClock``) with the real APScheduler running the jobs; otherwise a
    ``ManualClock`` and jobs only when time is advanced. ``db``: a SQLite file to keep (created and
    migrated if needed), else a temporary one.
    """
    from gatebot.slack.alert_poster import AlertPoster, app_home_link
    from gatebot.slack.web import EVENTS_PATH, create_web_app

    clock = _clock(live)
    settler = Settler()
    async with AsyncExitStack() as stack:
        settler.install(asyncio.get_running_loop())
        stack.callback(settler.uninstall)
        if db is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="gatebot-demo-"))
            db_path = Path(tmp) / "gatebot-demo.db"
        else:
            db_path = db
        db_path = prepare_database(db_path)
        database_url = f"sqlite:///{db_path}"

        bot_token = "xoxb-demo-" + secrets.token_hex(12)
        signing_secret = secrets.token_hex(16)
        workspace = demo_workspace(clock, bot_token=bot_token)
        emulator = EmulatorServer(workspace)
        await emulator.start()
        stack.push_async_callback(emulator.stop)

        sandbox = create_sandbox(SandboxConfig(completion_delay=5.0), clock=clock)
        sim: Simulator = sandbox.state.sim
        settings = demo_settings(database_url=database_url, slack_api_url=emulator.api_url, bot_token=bot_token,
                                 signing_secret=signing_secret, live=live)
        the_core = build_core(settings, clock=clock, gate_transport=httpx.ASGITransport(app=sandbox))
        stack.push_async_callback(the_core.aclose)  # if building the rest fails; rt.stop() closes it too
        _relax_sqlite(the_core.db.engine)
        settler.store_busy = lambda: the_core.db.busy  # a unit of work in flight is work too

        home = app_home_link(emulator.api_url, team_id=workspace.team_id, app_id=workspace.app_id)
        poster = AlertPoster.for_settings(settings, db=the_core.db, clock=clock,
                                          link_for=lambda _key: (home, "Open gatebot"))
        if live:  # the real APScheduler runs the jobs; the Slack app reports on it (/gate health, /healthz)
            scheduler = build_scheduler(the_core, poster)
            runner = JobRunner(scheduler.ctx, clock, settler, scheduler=scheduler)
            rt = build_runtime(the_core, slack="http", scheduler=scheduler)
        else:  # jobs run when time is advanced; the app reports on them through a CatchUpScheduler
            scheduler = None
            runner = JobRunner(job_context(the_core, poster), clock, settler)
            rt = build_runtime(the_core, slack="http", jobs=False, scheduler_view=CatchUpScheduler(runner))
        assert rt.slack is not None

        app_server = LoopbackServer(create_web_app(rt.slack.app, rt.slack.deps))
        await app_server.start()
        stack.push_async_callback(rt.stop)  # after the app server: drain, scheduler, notifier, close
        stack.push_async_callback(app_server.stop)

        driver = emulator.driver(app_server.url + EVENTS_PATH, signing_secret)
        stack.push_async_callback(driver.aclose)

        demo = DemoRuntime(workspace=workspace, emulator=emulator, app_server=app_server, driver=driver,
                           core=the_core, sim=sim, clock=clock, settings=settings, jobs=runner,
                           settler=settler, db_path=db_path, live=live, scheduler=scheduler)
        settler.adopt_running()
        if scheduler is not None:
            await the_core.orders.refresh_catalog()  # the first /gate buy finds products at once
            await rt.start()
            settler.adopt_running()  # the lease loop
            await runner.start(run_all=False)
        else:
            await runner.start()
        yield demo


def parse_duration(text: str) -> timedelta:
    """``+1h``, ``30m``, ``90s``, ``1h30m``, ``2d`` as a timedelta (``ValueError`` otherwise)."""
    spec = text.strip().lstrip("+")
    parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", spec)
    if not spec or parts is None or not any(parts.groups()):
        raise ValueError(f"{text!r} is not a duration: use +90s, +30m, +1h, +1h30m or +2d")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in parts.groups())
    delta = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if delta <= timedelta(0) or not math.isfinite(delta.total_seconds()):
        raise ValueError(f"{text!r}: time only moves forward")
    if delta > timedelta(days=31):
        raise ValueError(f"{text!r}: at most 31 days at a time")
    return delta
