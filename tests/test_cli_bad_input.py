"""Bad input to any ``gatebot`` command: one line naming what is wrong and how to fix it, exit 2, never a
traceback. In-process through :func:`gatebot.cli.main`; every subcommand of :func:`build_parser` must have
cases here, so a new command without coverage fails :func:`test_every_command_has_bad_input_cases`."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from gatebot.cli import build_parser, main

#: Settings that load but are wrong, for the commands that read settings.
BAD_LOW_BALANCE = {"GATEBOT_LOW_BALANCE": "USD"}

#: command -> [(argv, environment overrides, a fragment the one line must contain)]
CASES: dict[str, list[tuple[list[str], dict[str, str], str]]] = {
    "check": [(["check", "--verbose"], {}, "unrecognized arguments: --verbose"),
              (["check"], BAD_LOW_BALANCE, "GATEBOT_LOW_BALANCE: 'USD' has no levels; write CUR:warning/critical"),
              (["check"], {"GATEBOT_LOW_BALANCE": "USD:lots"}, "amount 'lots' is not a number"),
              (["check"], {"GATEBOT_ACCOUNT_FIELDS": "steam"}, "GATEBOT_ACCOUNT_FIELDS: expected JSON like"),
              (["check"], {"GATEBOT_HEALTH_INTERVAL": "0"}, "GATEBOT_HEALTH_INTERVAL")],
    "sandbox": [(["sandbox", "--port", "http"], {}, "argument --port: invalid int value: 'http'"),
                (["sandbox", "--error-rate", "2"], {}, "error_rate")],
    "db": [(["db"], {}, "the following arguments are required: db_command"),
           (["db", "downgrade"], {}, "invalid choice: 'downgrade'"),
           (["db", "current"], {"DATABASE_URL": "sqlite:///plain/gatebot.db"}, "plain"),
           (["db", "current"], {"DATABASE_URL": "postgresql://gatebot:s3cret@127.0.0.1:9/gatebot"},
            "DATABASE_URL: cannot open the database")],
    "order": [(["order"], {}, "the following arguments are required: ref"),
              (["order", "12"], BAD_LOW_BALANCE, "GATEBOT_LOW_BALANCE")],
    "orders": [(["orders", "--limit", "-1"], {}, "--limit: must be a whole number of at least 1, got '-1'"),
               (["orders", "--limit", "0"], {}, "--limit: must be a whole number of at least 1, got '0'"),
               (["orders", "--limit", "ten"], {}, "--limit: must be a whole number of at least 1, got 'ten'"),
               (["orders", "--status", "lost"], {}, "unknown status lost"),
               (["orders", "--since", "yesterday"], {}, "--since 'yesterday'"),
               (["orders"], {"DATABASE_URL": "mysql://db/gatebot"}, "DATABASE_URL: expected sqlite")],
    "export": [(["export"], {}, "the following arguments are required: kind, --since"),
               (["export", "ledger", "--since", "yesterday"], {}, "--since 'yesterday'"),
               (["export", "orders", "--since", "7d", "--until", "2020-01-01"], {}, "--until must be after --since"),
               (["export", "orders", "--since", "7d", "--currency", "dollars"], {}, "--currency 'dollars'"),
               (["export", "orders", "--since", "7d", "--out", "plain/x.csv"], {},
                "--out plain/x.csv: Not a directory")],
    "balance": [(["balance", "USD"], {}, "unrecognized arguments: USD"),
                (["balance"], BAD_LOW_BALANCE, "GATEBOT_LOW_BALANCE")],
    "products": [(["products", "--limit"], {}, "unrecognized arguments: --limit"),
                 (["products"], {"GATEBOT_TOPUP_MARGIN": "lots"}, "GATEBOT_TOPUP_MARGIN")],
    "buy": [(["buy"], {}, "the following arguments are required: --product"),
            (["buy", "--product", "101", "--account", "oops"], {}, "--account: line 1 has no '='"),
            (["buy", "--product", "101"], BAD_LOW_BALANCE, "GATEBOT_LOW_BALANCE")],
    "approvals": [(["approvals", "--limit", "0"], {}, "--limit: must be a whole number of at least 1, got '0'"),
                  (["approvals"], {"GATEBOT_APPROVAL_OVER": "USD"}, "GATEBOT_APPROVAL_OVER: 'USD' has no amount"),
                  (["approvals"], {"GATEBOT_DAILY_LIMIT": "ops:USD:5"}, "GATEBOT_DAILY_LIMIT: 'ops:USD:5': write"),
                  (["approvals"], {"GATEBOT_APPROVER_ROLES": "boss"}, "GATEBOT_APPROVER_ROLES: roles must be"),
                  (["approvals"], {"GATEBOT_OVER_LIMIT": "ask"}, "GATEBOT_OVER_LIMIT"),
                  (["approvals"], {"GATEBOT_APPROVAL_TTL": "soon"}, "GATEBOT_APPROVAL_TTL")],
    "approve": [(["approve", "12"], {}, "the following arguments are required: --as"),
                (["approve", "twelve", "--as", "U777"], {}, "must be an order number like 12 or #12, got 'twelve'"),
                (["approve", "12", "--as", "bob"], {}, "--as: must be a Slack user id (U…) or cli:<name>, got 'bob'"),
                (["approve", "12", "--as", "U777"], {"GATEBOT_CLI_APPROVERS": "bob"},
                 "GATEBOT_CLI_APPROVERS: 'bob' is not a CLI identity")],
    "reject": [(["reject", "12", "--as", "U777"], {}, "the following arguments are required: --reason"),
               (["reject", "12", "--reason", " ", "--as", "U777"], {}, "--reason: say why the order is rejected"),
               (["reject", "0", "--reason", "no", "--as", "U777"], {}, "must be an order number like 12 or #12")],
    "bulk": [(["bulk"], {}, "the following arguments are required: FILE.csv|ACTION"),
             (["bulk", "missing.csv", "--yes"], {}, "missing.csv: No such file or directory; give the path of a CSV"),
             (["bulk", "plain", "--out", "plain/results.csv"], {}, "--out plain/results.csv: no directory plain"),
             (["bulk", "empty.csv", "--yes"], {}, "empty.csv: The file is empty: it needs a header row"),
             (["bulk", "pause"], {}, "bulk pause: name the batch, e.g. gatebot bulk pause B12"),
             (["bulk", "cancel", "twelve"], {}, "bulk cancel: must be a batch number like B12, got 'twelve'"),
             (["bulk", "status", "B1", "--as", "bob"], {}, "--as: must be a Slack user id (U…) or cli:<name>"),
             (["bulk", "approve", "B1"], {}, "bulk approve: the following arguments are required: --as"),
             (["bulk", "reject", "B1", "--as", "U777"], {}, "--reason: say why the batch is rejected"),
             (["bulk", "results", "B1"], {}, "bulk results: give --out FILE"),
             (["bulk", "june.csv", "B1"], {}, "unrecognized arguments: B1"),
             (["bulk", "june.csv", "--wait", "0"], {}, "--wait: must be a whole number of at least 1"),
             (["bulk", "status", "B1"], {"GATEBOT_BULK_RATE": "0"}, "GATEBOT_BULK_RATE"),
             (["bulk", "status", "B1"], {"GATEBOT_BULK_RESULTS_TTL": "forever"}, "GATEBOT_BULK_RESULTS_TTL")],
    "demo": [(["demo", "--script", "missing.gate"], {}, "missing.gate: no such file"),
             (["demo", "--script", "."], {}, ".: not a file"),
             (["demo", "--db", "plain/demo.db"], {}, "--db plain/demo.db: no directory plain; create it")],
    "serve": [(["serve", "--port", "-1"], {}, "--port: must be a TCP port 1-65535, got '-1'"),
              (["serve", "--port", "70000"], {}, "--port: must be a TCP port 1-65535, got '70000'"),
              (["serve"], {"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET is not set"),
              (["serve"], {"PORT": "web"}, "PORT: expected a TCP port number 1-65535, got 'web'")],
    "socket": [(["socket", "--port", "3000"], {}, "unrecognized arguments: --port 3000"),
               (["socket"], {"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_APP_TOKEN is not set")],
    "clock": [(["clock", "now"], {}, "unrecognized arguments: now"),
              (["clock"], {"GATEBOT_HEALTH_FAIL_AFTER": "never"}, "GATEBOT_HEALTH_FAIL_AFTER")],
    "recover": [(["recover", "--all"], {}, "unrecognized arguments: --all"),
                (["recover"], {"GATEBOT_OPS": "bob"}, "GATEBOT_OPS: 'bob' is not a Slack user id")],
}


def subcommands() -> set[str]:
    """The subcommand names, from argparse's own (private) record of them."""
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {name for action in actions for name in action.choices}


def test_every_command_has_bad_input_cases() -> None:
    assert subcommands() == set(CASES), "add bad-input cases for every gatebot command"


@pytest.fixture(autouse=True)
def _clean_env(_clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The shared clean environment (tests/conftest.py), with a store in the test's directory."""
    (tmp_path / "plain").write_text("a file where a directory is expected\n")
    (tmp_path / "empty.csv").write_bytes(b"")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("GATEBOT_ENV", "development")


@pytest.mark.parametrize(("argv", "env", "expected"), [
    pytest.param(argv, env, expected, id=" ".join(argv) + "".join(f" {k}={v}" for k, v in env.items()))
    for cases in CASES.values() for argv, env, expected in cases
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], env: dict[str, str], expected: str,
                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gatebot"), lines[0]
    assert expected in lines[0]
    assert "Traceback" not in err and "unpack" not in err and "s3cret" not in err


def test_an_unknown_command_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("gatebot: argument COMMAND: invalid choice: 'frobnicate'") and "gatebot --help" in line


@pytest.mark.parametrize("tip", ["tour", "tour.gate"])
def test_the_tours_own_tip_names_the_built_in_tour(tip: str) -> None:
    from gatebot.demo import TOUR, script_source

    assert script_source(tip) == str(TOUR)
    assert f"--script {TOUR.name}" in TOUR.read_text(encoding="utf-8").splitlines()[0]
