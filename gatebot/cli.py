"""The ``gatebot`` command line: a thin layer over the core (and the ops fallback when Slack is down).

Exit codes: 0 success, 1 the operation failed (not found, refused by Gate...), 2 bad usage or
configuration; ``buy`` also 3 (saved, outcome not settled yet: ``recover`` settles it). Problems are
printed as one line each, never as a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from gatebot import __version__
from gatebot.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from gatebot.orders import OrderInvalid
    from gatebot.runtime import Core

__all__ = ["main"]

Handler = Callable[[argparse.Namespace, Settings], int]


class UsageError(Exception):
    """Bad arguments: the message names what is wrong and how to fix it."""


def _print_err(message: str) -> None:
    print(f"gatebot: {message}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (a :class:`UsageError`, printed by :func:`main`, exit 2)
    instead of the usage block: what is wrong, and where the options are listed."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _positive_int(text: str) -> int:
    """``type=`` for counts such as ``--limit``: a whole number of at least 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


def _port(text: str) -> int:
    """``type=`` for ``--port``: a TCP port 1-65535."""
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port 1-65535, got {text!r}")
    return int(text)


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

    return sandbox_main(args.extra, parser_class=_Parser, prog="gatebot sandbox")


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


# -- orders -------------------------------------------------------------------------------------------
def _run(settings: Settings, fn: Callable[[Core], Coroutine[Any, Any, int]]) -> int:
    """``fn`` over the core of a runtime without Slack or jobs (the one-shot commands)."""
    from gatebot.runtime import runtime

    async def go() -> int:
        async with runtime(settings, notifier=False) as rt:
            return await fn(rt.core)

    return asyncio.run(go())


def _clean(text: str, *, limit: int, what: str) -> str:
    """A free-text argument through the one sanitiser (``gatebot.textinput``); too long is a usage error."""
    from gatebot.textinput import InputTooLong, clean_text

    try:
        return clean_text(text, limit=limit, what=what)
    except InputTooLong as exc:
        raise UsageError(str(exc)) from None


def cmd_order(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.textinput import MAX_REFERENCE
    from gatebot.textview import order_text, orders_table

    ref = _clean(args.ref, limit=MAX_REFERENCE, what="the order reference")

    async def go(c: Core) -> int:
        matches = await c.orders.lookup(ref)
        if not matches:
            _print_err(f"no order matches {ref!r} (try our number like 12, a Gate order id or its first 8 "
                       "characters, an external_ref or an idempotency key)")
            return 1
        if len(matches) > 1:
            print(orders_table(matches))
            _print_err(f"{len(matches)} orders match {ref!r}: give one's number, e.g. gatebot order {matches[0].id}")
            return 1
        (order,) = matches
        assert order.id is not None  # a stored row
        content = c.orders.content(order) if args.show_code else None
        print(order_text(order, await c.orders.history(order.id), content=content))
        return 0

    return _run(settings, go)


def cmd_orders(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.store import repo
    from gatebot.store.models import OrderStatus
    from gatebot.textview import orders_table

    statuses = None
    if args.status:
        valid = {s.value for s in OrderStatus}
        statuses = [s.strip() for s in args.status.split(",")]
        bad = [s for s in statuses if s not in valid]
        if bad:
            raise UsageError(f"unknown status {', '.join(bad)}; use one of {', '.join(sorted(valid))}")
    since = _parse_since(args.since) if args.since else None

    async def go(c: Core) -> int:
        rows = await c.db.run(lambda s: repo.list_orders(s, status=statuses, requester=args.requester, since=since,
                                                          limit=args.limit))
        print(orders_table(rows))
        return 0

    return _run(settings, go)


def _parse_since(text: str, option: str = "--since") -> datetime:
    from gatebot.clock import TimeArgumentError, parse_when

    try:
        return parse_when(text, now=datetime.now(UTC), option=option)
    except TimeArgumentError as exc:
        raise UsageError(str(exc)) from None


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.finance.exports import ExportError, build_export, check_currency

    since = _parse_since(args.since)
    until = _parse_since(args.until, "--until") if args.until else datetime.now(UTC)
    try:
        currency = check_currency(args.currency)
    except ExportError as exc:
        raise UsageError(str(exc)) from None
    if until <= since:
        raise UsageError("--until must be after --since")

    async def go(c: Core) -> int:
        export = build_export(c.db, args.kind, since=since, until=until, currency=currency)
        if args.out in (None, "-"):
            sys.stdout.write(export.text)
        else:
            await asyncio.to_thread(_write_text, args.out, export.text)
            print(f"wrote {export.rows} row(s) to {args.out}", file=sys.stderr)
        return 0

    return _run(settings, go)


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as out:  # the CSV carries its own \r\n
        out.write(text)


def cmd_balance(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.clock import format_utc
    from gatebot.finance.levels import balance_level
    from gatebot.orders import GateDown

    async def go(c: Core) -> int:
        try:
            snapshot = await c.orders.balances()
        except GateDown as exc:
            _print_err(str(exc))
            return 1
        balances = snapshot.balances
        thresholds = settings.gatebot_low_balance
        for b in balances:
            money = b.money()
            level = thresholds.get(money.currency)
            status = ""
            if level is not None:
                status = {"critical": "CRITICAL", "warning": "LOW"}.get(lvl := balance_level(money, level), lvl)
                status = f"  [{status}: warning {level.warning.amount}, critical {level.critical.amount}]"
            print(f"{money.format():>20}{status}")
        if not balances:
            print("no balances")
        read_at = format_utc(snapshot.at)  # when, not Gate's updated_at
        if snapshot.cached:
            _print_err(f"Gate did not answer: these are the balances gatebot last read, at {read_at}")
            return 1
        print(f"read from Gate at {read_at}")
        return 0

    return _run(settings, go)


async def _load_catalog(c: Core, *, refresh: bool) -> bool:
    """Load the catalog from Gate when it was never loaded (or ``refresh``); False if that failed."""
    from gatebot.gate import GateError
    from gatebot.store import repo

    empty = await c.db.run(repo.catalog_refreshed_at) is None
    if empty or refresh:
        try:
            await c.orders.refresh_catalog()
        except GateError as exc:
            _print_err(f"could not load the catalog from Gate: {exc.message}")
            return False
    return True


def cmd_buy(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.orders import GateDown, OrderDraft, OrderInvalid, parse_account_lines
    from gatebot.textview import order_text

    account, problems = parse_account_lines("\n".join(args.account or []))
    if problems:
        raise UsageError("--account: " + "; ".join(problems))
    requester = f"cli:{getpass.getuser()}"

    async def go(c: Core) -> int:
        if not await _load_catalog(c, refresh=args.refresh):
            return 1
        draft = OrderDraft(product=args.product, requester=requester, amount=args.amount,
                           quantity=args.quantity, account=account, external_ref=args.ref, test=args.test)
        try:
            quote = await c.orders.quote(draft)
        except OrderInvalid as exc:
            return _invalid_order(exc)
        except GateDown as exc:
            _print_err(str(exc))
            return 1
        after = quote.balance_after
        print(f"{quote.product.name}: costs {quote.cost}"
              + (f", leaves {after}" if after is not None else ""))
        if quote.approval:
            print(f"Needs approval ({quote.approval}): it is saved, and sent only when an approver approves it.")
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError("not a terminal: add --yes to place the order without confirming")
            answer = await asyncio.to_thread(input, "Place this order? [y/N] ")
            if answer.strip().lower() not in {"y", "yes"}:
                print("Nothing was sent.")
                return 1
        try:
            order = await c.orders.save_intent(quote, draft)
        except OrderInvalid as exc:  # e.g. the same --ref placed by another command just now
            return _invalid_order(exc)
        order_id = order.id
        assert order_id is not None  # saved
        order = await c.orders.submit(order_id, actor=requester)
        print(order_text(order, await c.orders.history(order_id), content=None))
        code = BUY_EXIT.get(str(order.status), 1)
        if code == EXIT_UNSETTLED:
            _print_err(f"order #{order.id} is saved but not settled ({order.status}): do not place it again; "
                       + ("it is sent again, with the same key, when a deposit posts"
                          if order.status == "waiting_funds" else
                          f"an approver sends it with `gatebot approve {order.id} --as <id>`"
                          if order.status == "awaiting_approval" else
                          "`gatebot recover` settles it with the same key (no double charge)"))
        return code

    return _run(settings, go)


# -- approvals (for when Slack is down) ------------------------------------------------------------------
def _order_number(text: str) -> int:
    """``type=`` for an order number: 12 or #12."""
    digits = text.strip().removeprefix("#")
    if not digits.isdigit() or not 1 <= int(digits) < 2**31:
        raise argparse.ArgumentTypeError(f"must be an order number like 12 or #12, got {text!r}")
    return int(digits)


def _approver(text: str) -> str:
    """``type=`` for ``--as``: a Slack user id (U…/W…) or a CLI identity ``cli:<name>``."""
    from gatebot.slack.roles import is_user_id

    value = text.strip()
    if is_user_id(value) or (value.startswith("cli:") and len(value) > 4 and len(value) <= 64
                             and value[4:].replace("-", "").replace("_", "").replace(".", "").isalnum()):
        return value
    raise argparse.ArgumentTypeError(f"must be a Slack user id (U…) or cli:<name>, got {text!r}")


async def _approver_roles(settings: Settings, approver: str) -> frozenset[str]:
    """The roles of ``--as``: a Slack user id's from GATEBOT_OPS/FINANCE/SUPPORT/ADMINS (user ids only: user
    groups need Slack); a ``cli:`` identity has none of its own (GATEBOT_CLI_APPROVERS makes it an approver)."""
    from gatebot.slack.roles import Roles

    if approver.startswith("cli:"):
        return frozenset()
    return await Roles.from_settings(settings, client=None).of(approver)


def cmd_approvals(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.textview import approvals_table

    async def go(c: Core) -> int:
        print(approvals_table(await c.orders.open_approvals(limit=args.limit), now=c.clock.now()))
        return 0

    return _run(settings, go)


def cmd_decide(args: argparse.Namespace, settings: Settings) -> int:
    """``gatebot approve N --as WHO`` and ``gatebot reject N --reason WHY --as WHO``."""
    from gatebot.orders import ApprovalRefused, GateDown
    from gatebot.textview import order_text

    reason = _clean(args.reason, limit=500, what="--reason") if args.command == "reject" else ""
    if args.command == "reject" and not reason:
        raise UsageError("--reason: say why the order is rejected (the requester is told)")

    async def go(c: Core) -> int:
        roles = await _approver_roles(settings, args.approver)
        try:
            if args.command == "approve":
                order = await c.orders.approve(args.number, args.approver, roles=roles)
            else:
                order = await c.orders.reject(args.number, args.approver, reason, roles=roles)
        except (ApprovalRefused, GateDown) as exc:
            _print_err(str(exc))
            return 1
        assert order.id is not None
        print(order_text(order, await c.orders.history(order.id), content=None))
        return 0

    return _run(settings, go)


#: ``gatebot buy`` exits 3 when the order is saved but Gate's answer is not final yet.
EXIT_UNSETTLED = 3
BUY_EXIT = {"pending": 0, "completed": 0, "unknown": EXIT_UNSETTLED, "submitting": EXIT_UNSETTLED,
            "waiting_funds": EXIT_UNSETTLED, "awaiting_approval": EXIT_UNSETTLED}
BUY_EXIT_CODES = """exit codes:
  0  Gate accepted the order (pending or completed)
  1  nothing was placed, or Gate refused it (rejected, failed, needs attention)
  2  bad usage: a wrong option or order field (nothing was sent), e.g. an --ref already used
  3  the order is saved but its outcome is not settled yet (Gate did not answer clearly, it
     waits for funds, or it waits for approval): do not place it again; `gatebot recover`
     settles it with the same key, `gatebot approve N --as ...` sends one awaiting approval"""


def _invalid_order(exc: OrderInvalid) -> int:
    for fld, msg in exc.errors.items():
        _print_err(f"{fld.replace('account.', '--account ')}: {msg}")
    return 2


def cmd_products(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.orders import find_products
    from gatebot.textinput import MAX_QUERY
    from gatebot.textview import products_table

    query = _clean(args.query or "", limit=MAX_QUERY, what="the search")

    async def go(c: Core) -> int:
        if not await _load_catalog(c, refresh=args.refresh):
            return 1
        rows = await c.db.run(lambda s: find_products(s, query, active_only=not args.all))
        print(products_table(rows))
        return 0

    return _run(settings, go)


def cmd_recover(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.store import repo
    from gatebot.store.models import OrderStatus

    async def go(c: Core) -> int:
        n = await c.orders.recover(everything=True)
        result = await c.orders.track()
        print(f"re-drove {n} open order(s); tracked {result.checked} pending ({result.changed} changed)")
        stuck = await c.db.run(lambda s: repo.list_orders(s, status=[OrderStatus.NEEDS_ATTENTION], limit=20))
        for order in stuck:
            print(f"order #{order.id} ({order.external_ref}) needs attention: {order.status_reason}")
        return 0

    return _run(settings, go)


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


# -- parser -------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gatebot", description="Slack chat-ops for the Plexy Gate API.")
    parser.add_argument("--version", action="version", version=f"gatebot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("check", help="print the effective configuration and probe the Gate API")
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser("sandbox", add_help=False,
                       help="serve the Gate API simulator over HTTP (gatebot sandbox --help for its options)")
    p.set_defaults(handler=cmd_sandbox, no_settings=True, passthrough=True)

    p = sub.add_parser("db", help="database schema: upgrade | current")
    p.add_argument("db_command", choices=["upgrade", "current"])
    p.set_defaults(handler=cmd_db)

    p = sub.add_parser("order", help="show one order by any reference")
    p.add_argument("ref", help="our number (12 or #12), Gate order id, external_ref or idempotency key")
    p.add_argument("--show-code", action="store_true", help="also print the voucher code / PIN")
    p.set_defaults(handler=cmd_order)

    p = sub.add_parser("orders", help="list orders, newest first")
    p.add_argument("--status", help="comma-separated: submitting,unknown,pending,waiting_funds,completed,...")
    p.add_argument("--since", help="a date (2026-11-24), a time, or an age (2h, 7d)")
    p.add_argument("--requester", help="a Slack user id or cli:<name>")
    p.add_argument("--limit", type=_positive_int, default=50, help="at most this many (default: 50)")
    p.set_defaults(handler=cmd_orders)

    p = sub.add_parser("export", help="finance CSV: orders | deposits | ledger (the daily digests)")
    p.add_argument("kind", choices=["orders", "deposits", "ledger"])
    p.add_argument("--since", required=True, help="a date (2026-11-01), a time, or an age (7d)")
    p.add_argument("--until", help="a date, a time or an age (default: now); the window is [since, until)")
    p.add_argument("--currency", help="only this currency (e.g. USD)")
    p.add_argument("--out", help="write the CSV to this file (default: standard output)")
    p.set_defaults(handler=cmd_export)

    p = sub.add_parser("balance", help="balances per currency, with their low-balance status")
    p.set_defaults(handler=cmd_balance)

    p = sub.add_parser("products", help="search the cached catalog")
    p.add_argument("query", nargs="?", default="")
    p.add_argument("--all", action="store_true", help="include inactive products")
    p.add_argument("--refresh", action="store_true", help="reload the catalog from Gate first")
    p.set_defaults(handler=cmd_products)

    p = sub.add_parser("buy", help="place an order", epilog=BUY_EXIT_CODES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--product", required=True, help="product id or slug")
    p.add_argument("--amount", help="top-up amount, e.g. 25.00")
    p.add_argument("--quantity", help="voucher quantity (1-100)")
    p.add_argument("--account", action="append", metavar="KEY=VALUE", help="customer-account field (repeat)")
    p.add_argument("--ref", help="external_ref (default: generated, e.g. GB-20261124-7K3Q)")
    p.add_argument("--test", action="store_true", help="a test order (is_test at Gate)")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--refresh", action="store_true", help="reload the catalog from Gate first")
    p.set_defaults(handler=cmd_buy)

    p = sub.add_parser("approvals", help="approval requests waiting for a decision, oldest first")
    p.add_argument("--limit", type=_positive_int, default=100, help="at most this many (default: 100)")
    p.set_defaults(handler=cmd_approvals)

    as_help = ("who decides: a Slack user id (roles from GATEBOT_FINANCE/ADMINS...) or cli:<name> "
               "(listed in GATEBOT_CLI_APPROVERS); never the requester")
    p = sub.add_parser("approve", help="approve a request: the saved order is sent to Gate")
    p.add_argument("number", type=_order_number, help="the order number (12 or #12)")
    p.add_argument("--as", dest="approver", type=_approver, required=True, help=as_help)
    p.set_defaults(handler=cmd_decide)

    p = sub.add_parser("reject", help="reject a request: nothing is sent to Gate")
    p.add_argument("number", type=_order_number, help="the order number (12 or #12)")
    p.add_argument("--reason", required=True, help="why (the requester is told)")
    p.add_argument("--as", dest="approver", type=_approver, required=True, help=as_help)
    p.set_defaults(handler=cmd_decide)

    p = sub.add_parser("demo", help="the whole bot on this machine, no Slack workspace needed")
    from gatebot.demo import add_arguments

    add_arguments(p)
    p.set_defaults(handler=cmd_demo, no_settings=True)

    p = sub.add_parser("serve", help="serve the Slack app over HTTP on $PORT (and run the jobs)")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=_port, help="default: $PORT (3000)")
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("socket", help="run the Slack app over Socket Mode (and the jobs)")
    p.set_defaults(handler=cmd_socket)

    p = sub.add_parser("clock", help="run the scheduled jobs alone (one leader among instances)")
    p.set_defaults(handler=cmd_clock)

    p = sub.add_parser("recover", help="re-drive orders with an unknown outcome, then track pending ones")
    p.set_defaults(handler=cmd_recover)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and not getattr(args, "passthrough", False):
            sub = f"gatebot {args.command}" if getattr(args, "command", None) else "gatebot"
            raise UsageError(f"unrecognized arguments: {' '.join(extra)} (see `{sub} --help`)")
    except UsageError as exc:
        _print_err(str(exc))
        return 2
    args.extra = extra
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from gatebot.logs import configure_logging

    configure_logging()  # redacting from the first line: settings errors are logged before settings exist
    try:
        settings = None if getattr(args, "no_settings", False) else load_settings()
        if settings is not None:
            serving = args.command in {"serve", "socket", "clock"}
            configure_logging(settings, level=settings.gatebot_log_level if serving else logging.WARNING,
                              fmt=settings.gatebot_log_format)
        return int(args.handler(args, settings))
    except ConfigError as exc:  # one line per problem, each naming its variable (environment, .env, gatebot.toml)
        for line in exc.problems:
            _print_err(line)
        return 2
    except UsageError as exc:
        _print_err(str(exc))
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from sqlalchemy.exc import ArgumentError, OperationalError

        from gatebot.store.db import SchemaOutOfDate

        if isinstance(exc, SchemaOutOfDate):
            _print_err(str(exc))
            return 2
        if isinstance(exc, OperationalError | ArgumentError):  # the driver's reason: no credentials in it
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            _print_err(f"DATABASE_URL: cannot open the database ({reason}); check the URL and that the "
                       "database (or the SQLite file's directory) exists")
            return 2
        if isinstance(exc, OSError) and exc.filename:  # e.g. a SQLite path under something that is not a folder
            _print_err(f"{exc.filename}: {exc.strerror or exc}; check the path (DATABASE_URL, --db, ...)")
            return 2
        raise
