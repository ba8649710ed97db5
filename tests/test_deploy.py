"""The Grafana dashboard and the example Prometheus rules in ``deploy/`` only use metrics gatebot exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from gatebot.clock import ManualClock
from gatebot.gate.client import CallAttempt
from gatebot.metrics import Metrics, StoreCollector, render
from gatebot.store.db import Database, make_engine, upgrade

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"\bgatebot_[a-z_]+")
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def exported(tmp_path: Path) -> set[str]:
    engine = make_engine(f"sqlite:///{tmp_path / 'deploy.db'}")
    upgrade(engine)
    metrics = Metrics()  # labelled counters show up once they have a child
    metrics.gate_call(CallAttempt("balance", "rate_limited", 0.1, attempt=2))
    metrics.slack_call("chat.postMessage", None)
    try:
        text = render(metrics, StoreCollector(Database(engine), now=ManualClock().now, leader=lambda: True)).decode()
    finally:
        engine.dispose()
    return {base(m.group(1)) for m in re.finditer(r"^# TYPE (\S+) ", text, re.M)}


def base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_dashboard_and_rules_reference_exported_metrics(tmp_path: Path) -> None:
    names = exported(tmp_path)
    dashboard = json.loads((ROOT / "deploy/grafana/gatebot.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    rules = yaml.safe_load((ROOT / "deploy/prometheus/gatebot-alerts.yml").read_text())
    alerts = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}
    assert {"GatebotDown", "GatebotNoLeader", "GatebotJobLate"} <= set(alerts)
    used = {base(m) for e in [*exprs, *alerts.values()] for m in NAME.findall(e)}
    assert used - names == set()
    assert len(used) >= 15
