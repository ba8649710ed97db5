"""Prometheus metrics: what ``GET /metrics`` shows, in the text format of the official ``prometheus_client``.

Two kinds of figures, two sources:

* **Process-local counters and histograms** (:class:`Metrics`): Gate calls by endpoint and outcome with a
  latency histogram, retries and 429s (fed by the Gate client's ``on_call`` hook, :meth:`Metrics.gate_call`),
  Slack Web API calls by method and error and the Slack ack latency (fed by the Slack edge,
  :mod:`gatebot.slack.metrics`). With ``PROMETHEUS_MULTIPROC_DIR`` set (several web processes behind one
  port), ``prometheus_client`` keeps them in files in that directory and :func:`render` adds up every
  process's values — the directory must exist, be empty at start-up and be shared by the processes.
* **Facts the store holds** (:class:`StoreCollector`), read at scrape time: orders by status and product
  kind, the Gate circuit, balance per currency with its thresholds and alert level, open alerts by kind and
  state, each job's last success and duration, the scheduler lease (and whether *this* process leads).
  The database is shared, so every process reports the same values: multi-process correct by construction.

Labels carry bounded, non-secret values only: route templates (``GET /orders/{id}``, never a raw path),
outcome words, Slack method names and error codes (anything unexpected becomes ``other``), order
statuses, product kinds, currencies, alert kinds, job names. Never an order id, a user id, an account
value or a code. Balances are exported as floats because that is what Prometheus stores; the books
(exports, digest) keep Decimal.

Nothing happens at import time (:func:`default_metrics` builds the process's metrics on first use).
Must not import Slack, the scheduler or httpx.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, start_http_server
from prometheus_client import multiprocess as prom_multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from gatebot import alerts
from gatebot.alerts.stored import alert_state, gate_down, open_alerts
from gatebot.config import Thresholds
from gatebot.finance.readings import last_readings
from gatebot.gate.client import CallAttempt
from gatebot.gate.models import KNOWN_TYPE_CODES
from gatebot.health.job_runs import MISSED_INTERVALS, job_records, job_status, scheduler_status
from gatebot.store import repo
from gatebot.store.db import Database

__all__ = [
    "CONTENT_TYPE",
    "PRODUCT_KINDS",
    "Metrics",
    "StoreCollector",
    "default_metrics",
    "multiprocess_dir",
    "render",
    "scrape_registry",
    "serve_metrics",
]

log = logging.getLogger(__name__)

#: The ``Content-Type`` of :func:`render`'s output (Prometheus text format 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Product kinds as the catalog knows them (Gate's documented type codes); anything else is ``other``.
PRODUCT_KINDS = KNOWN_TYPE_CODES

_GATE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
_SLACK_METHOD = re.compile(r"[a-z]+(?:\.[a-zA-Z]+){1,3}")
_SLACK_ERROR = re.compile(r"[a-z_]{1,48}")
_LEVELS = {None: 0, "warning": 1, "critical": 2}


def multiprocess_dir() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR`` when set: several processes share their counters through it."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The process-local counters and histograms, in a registry of their own (not the library's global
    one, so tests can build a fresh set)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.gate_calls = Counter("gatebot_gate_calls", "Gate API HTTP attempts by endpoint and outcome",
                                  ["endpoint", "outcome"], registry=r)
        self.gate_seconds = Histogram("gatebot_gate_call_duration_seconds", "Gate API HTTP attempt latency",
                                      ["endpoint"], buckets=_GATE_BUCKETS, registry=r)
        self.gate_retries = Counter("gatebot_gate_retries", "Gate API attempts that were retries",
                                    ["endpoint"], registry=r)
        self.gate_rate_limited = Counter("gatebot_gate_rate_limited", "Gate API answers 429 (rate limited)",
                                         ["endpoint"], registry=r)
        self.slack_calls = Counter("gatebot_slack_api_calls", "Slack Web API calls by method and error "
                                   "(error=none when ok)", ["method", "error"], registry=r)
        self.slack_ack_seconds = Histogram("gatebot_slack_ack_duration_seconds",
                                           "Time from a Slack request's arrival to the start of our answer",
                                           buckets=_ACK_BUCKETS, registry=r)

    # -- hooks ----------------------------------------------------------------------------------------
    def gate_call(self, attempt: CallAttempt) -> None:
        """The Gate client's ``on_call`` hook."""
        route = attempt.route
        self.gate_calls.labels(route, attempt.outcome).inc()
        self.gate_seconds.labels(route).observe(max(0.0, attempt.seconds))
        if attempt.attempt > 1:
            self.gate_retries.labels(route).inc()
        if attempt.outcome == "rate_limited":
            self.gate_rate_limited.labels(route).inc()

    def slack_call(self, method: str, error: str | None) -> None:
        """One Slack Web API call; ``error`` is Slack's error code (``None`` when ok)."""
        name = method if _SLACK_METHOD.fullmatch(method) else "other"
        code = "none" if error is None else error if _SLACK_ERROR.fullmatch(error) else "other"
        self.slack_calls.labels(name, code).inc()

    def slack_ack(self, seconds: float) -> None:
        self.slack_ack_seconds.observe(max(0.0, seconds))


_default: Metrics | None = None


def default_metrics() -> Metrics:
    """This process's :class:`Metrics`, built on first use."""
    global _default
    if _default is None:
        _default = Metrics()
    return _default


class StoreCollector(Collector):
    """Gauges read from the store at scrape time (see the module docstring).

    ``leader`` answers whether this process's scheduler holds the lease (``None``: no scheduler here,
    the gauge is left out). A store that cannot be read gives ``gatebot_store_up 0`` and nothing else
    from the store, rather than a failed scrape.
    """

    def __init__(self, db: Database, *, now: Callable[[], datetime],
                 thresholds: Mapping[str, Thresholds] | None = None,
                 leader: Callable[[], bool | None] | None = None) -> None:
        self.db = db
        self.now = now
        self.thresholds = dict(thresholds or {})
        self.leader = leader

    def describe(self) -> Iterable[Metric]:
        return []  # no database read when registering

    def collect(self) -> Iterable[Metric]:
        if self.leader is not None:
            value = self.leader()
            if value is not None:
                yield _gauge("gatebot_leader", "1 when this process's scheduler holds the lease", value=value)
        try:
            families = list(self._from_store(self.now()))
        except SQLAlchemyError as exc:
            log.warning("metrics: could not read the store (%s)", type(exc).__name__)
            yield _gauge("gatebot_store_up", "1 when the store could be read for this scrape", value=0)
            return
        yield _gauge("gatebot_store_up", "1 when the store could be read for this scrape", value=1)
        yield from families

    def _from_store(self, now: datetime) -> Iterable[Metric]:
        """Every store figure of one scrape, read in one unit of work."""
        with self.db.session() as s:
            yield from self._read(s, now)

    def _read(self, s: Session, now: datetime) -> Iterable[Metric]:
        counts = repo.order_counts_by_kind(s)
        orders = GaugeMetricFamily("gatebot_orders", "Orders by status and product kind",
                                   labels=["status", "kind"])
        merged: Tally[tuple[str, str]] = Tally()
        for (status, kind), n in counts.items():
            merged[(status, kind if kind in PRODUCT_KINDS else "other")] += n
        for (status, kind), n in sorted(merged.items()):
            orders.add_metric([status, kind], n)
        yield orders

        yield _gauge("gatebot_gate_circuit_open", "1 while the Gate circuit is open (Gate considered down)",
                     value=gate_down(s))
        yield from self._balances(s)
        yield from self._alerts(s, now)
        yield from self._jobs(s, now)
        lease = scheduler_status(s, now)
        yield _gauge("gatebot_scheduler_lease_active", "1 while some scheduler instance holds an unexpired lease",
                     value=bool(lease.get("active")))

    def _balances(self, s: Session) -> Iterable[Metric]:
        readings = last_readings(s)
        balance = GaugeMetricFamily("gatebot_balance", "Last Gate balance read, per currency", labels=["currency"])
        read_at = GaugeMetricFamily("gatebot_balance_read_timestamp_seconds", "When that balance was read",
                                    labels=["currency"])
        level = GaugeMetricFamily("gatebot_balance_alert_level",
                                  "Low-balance alert level: 0 ok, 1 warning, 2 critical", labels=["currency"])
        for cur, r in sorted(readings.items()):
            balance.add_metric([cur], float(r.balance.amount))
            read_at.add_metric([cur], r.at.timestamp())
            state = alert_state(s, alerts.balance_key(cur))
            open_level = state.alert.level if state is not None and state.alert.open else None
            level.add_metric([cur], _LEVELS.get(open_level, 0))
        threshold = GaugeMetricFamily("gatebot_balance_threshold", "Configured low-balance thresholds",
                                      labels=["currency", "level"])
        for cur, t in sorted(self.thresholds.items()):
            threshold.add_metric([cur, "warning"], float(t.warning.amount))
            threshold.add_metric([cur, "critical"], float(t.critical.amount))
        yield from (balance, read_at, level, threshold)

    def _alerts(self, s: Session, now: datetime) -> Iterable[Metric]:
        family = GaugeMetricFamily("gatebot_open_alerts", "Open alerts by kind and state", labels=["kind", "state"])
        tally: Tally[tuple[str, str]] = Tally()
        for a in open_alerts(s, now):
            tally[(a.key.split(":", 1)[0], a.state)] += 1
        for (kind, state), n in sorted(tally.items()):
            family.add_metric([kind, state], n)
        yield family

    def _jobs(self, s: Session, now: datetime) -> Iterable[Metric]:
        success = GaugeMetricFamily("gatebot_job_last_success_timestamp_seconds", "When each job last succeeded",
                                    labels=["job"])
        duration = GaugeMetricFamily("gatebot_job_last_duration_seconds", "How long each job's last run took",
                                     labels=["job"])
        on_time = GaugeMetricFamily("gatebot_job_on_time",
                                    f"1 when the job succeeded within {MISSED_INTERVALS} intervals",
                                    labels=["job"])
        records = job_records(s)
        for name, r in sorted(records.items()):
            if r.last_success is not None:
                success.add_metric([name], r.last_success.timestamp())
            if r.last_duration_ms is not None:
                duration.add_metric([name], r.last_duration_ms / 1000)
        for status in job_status(s, now):
            on_time.add_metric([status.name], 1 if status.ok else 0)
        yield from (success, duration, on_time)


def _gauge(name: str, documentation: str, *, value: float | bool) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


class _Process(Collector):
    """This process's counters (or, in multi-process mode, every process's, from the shared directory)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.directory = multiprocess_dir()

    def collect(self) -> Iterable[Metric]:
        if self.directory is not None:
            collector = prom_multiprocess.MultiProcessCollector(None, path=self.directory)  # type: ignore[no-untyped-call]
            families: Iterable[Metric] = collector.collect()  # type: ignore[no-untyped-call]
            return families
        return self.metrics.registry.collect()


def scrape_registry(metrics: Metrics | None = None, *collectors: Collector) -> CollectorRegistry:
    """A registry of the process counters (summed over processes in multi-process mode) plus ``collectors``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Process(metrics or default_metrics()))
    for collector in collectors:
        registry.register(collector)
    return registry


def render(metrics: Metrics | None = None, *collectors: Collector) -> bytes:
    """The scrape, in the Prometheus text format."""
    return generate_latest(scrape_registry(metrics, *collectors))


def serve_metrics(port: int, *collectors: Collector, addr: str = "0.0.0.0") -> tuple[int, Callable[[], None]]:
    """Serve ``GET /metrics`` on ``addr:port`` from a background thread (``gatebot clock``, which has no web
    app); returns the bound port (``port=0``: any free one) and the function that stops it."""
    server, thread = start_http_server(port, addr=addr, registry=scrape_registry(None, *collectors))
    log.info("serving metrics on http://%s:%d/metrics", addr, server.server_port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return int(server.server_port), stop
