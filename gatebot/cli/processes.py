"""Checks, maintenance and the long-running processes: ``check``, ``sandbox``, ``db``, ``serve``, ``socket``,
``clock``, ``demo``."""

from __future__ import annotations

import argparse
import asyncio
import logging

from gatebot.cli.common import Parser
from gatebot.config import Settings


# -- check --------------------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    print("Effective configuration (secrets masked):")
    masked = settings.masked()
    width = max(len(k) for k in masked)
    for name, value in masked.items():
        print(f"  {name:<{width}}  {value}")
    print()
    return asyncio.run(_probe(settings))


async def _probe(settings: Settings) -> int:
    from gatebot.clock import SystemClock
    from gatebot.gate import GateError, RetryPolicy
    from gatebot.runtime import build_database, build_gate_client
    from gatebot.store.db import SchemaOutOfDate

    ok = True
    where = "built-in sandbox (in-process)" if settings.uses_builtin_sandbox else settings.gate_api_url
    print(f"Gate API: {where}")
    async with build_gate_client(settings, SystemClock(), retry=RetryPolicy(attempts=1)) as client:
        health = await client.health()
        print(f"  /health   {'ok' if health.ok else 'FAILED'}"
              + (f" (HTTP {health.status_code})" if health.status_code else f" ({health.detail})"))
        ok &= health.ok
        try:
            balances = await client.get_balance()
            print("  /balance  ok: " + (", ".join(b.money().format() for b in balances) or "no balances"))
        except GateError as exc:
            ok = False
            print(f"  /balance  FAILED: {type(exc).__name__}: {exc.message}")
    print(f"Database: {settings.masked()['DATABASE_URL']}")
    try:
        build_database(settings).dispose()  # SQLite: migrated on first use, as by every command
        print("  schema    up to date")
    except SchemaOutOfDate as exc:
        ok = False
        print(f"  schema    {exc}")
    except Exception as exc:
        ok = False
        print(f"  cannot connect: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    print("Slack: " + ("bot token set" if settings.slack_bot_token else "no SLACK_BOT_TOKEN (needed for serve)"))
    print("All checks passed." if ok else "Some checks failed (see above).")
    return 0 if ok else 1


# -- sandbox ------------------------------------------------------------------------------------------
def cmd_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.sandbox.__main__ import main as sandbox_main

    return sandbox_main(args.extra, parser_class=Parser, prog="gatebot sandbox")


# -- db -----------------------------------------------------------------------------------------------
def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.runtime import build_database
    from gatebot.store.db import current_revision, head_revision

    db = build_database(settings, check=False)  # migrations are what this command is for
    try:
        if args.db_command == "upgrade":
            before = current_revision(db.engine)
            db.upgrade()
            after = current_revision(db.engine)
            print(f"database at {after}" + (" (already up to date)" if before == after else f" (was {before})"))
        else:
            print(f"database at {current_revision(db.engine) or '(empty)'}; code needs {head_revision()}")
    finally:
        db.dispose()
    return 0


# -- long-running processes ---------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.runtime import runtime
    from gatebot.slack.app import check_settings
    from gatebot.slack.web import run_http

    check_settings(settings)  # before anything starts: a clear message, not a half-started server

    async def go() -> int:
        async with runtime(settings, slack="http") as rt:  # jobs too, unless GATEBOT_RUN_JOBS=false
            await run_http(rt, port=args.port or settings.port, host=args.host)
        return 0

    return asyncio.run(go())


def cmd_socket(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.runtime import runtime
    from gatebot.slack.app import check_settings
    from gatebot.slack.socket import run_socket

    check_settings(settings, socket_mode=True)

    async def go() -> int:
        async with runtime(settings, slack="socket") as rt:
            await run_socket(rt)
        return 0

    return asyncio.run(go())


def cmd_clock(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.runtime import runtime, until_stopped

    if settings.slack_bot_token is None:
        logging.getLogger("gatebot").warning("SLACK_BOT_TOKEN is not set: alerts are only logged")

    async def go() -> int:
        # The jobs, /metrics on GATEBOT_METRICS_PORT, and (with a bot token) the notifier: tracking and
        # recovery events still edit order messages and deliver codes.
        async with runtime(settings, jobs=True, metrics_port=settings.gatebot_metrics_port) as rt:
            await rt.run(until_stopped)
        return 0

    return asyncio.run(go())


def cmd_demo(args: argparse.Namespace, settings: Settings | None) -> int:
    from gatebot.demo import run_demo

    return run_demo(script=args.script, db=args.db)

