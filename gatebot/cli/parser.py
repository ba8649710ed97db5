"""The ``gatebot`` argument parser (every subcommand and its options) and :func:`main`, which runs one."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from gatebot import __version__
from gatebot.cli.approvals import cmd_approvals, cmd_decide
from gatebot.cli.bulk import BULK_ACTIONS, BULK_EPILOG, cmd_bulk
from gatebot.cli.common import Parser, UsageError, approver, order_number, positive_int, print_err, tcp_port
from gatebot.cli.orders import (
    BUY_EXIT_CODES,
    cmd_balance,
    cmd_buy,
    cmd_export,
    cmd_order,
    cmd_orders,
    cmd_products,
    cmd_recover,
)
from gatebot.cli.processes import cmd_check, cmd_clock, cmd_db, cmd_demo, cmd_sandbox, cmd_serve, cmd_socket
from gatebot.config import ConfigError, load_settings

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="gatebot", description="Slack chat-ops for the Plexy Gate API.")
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

    p = sub.add_parser("order", help="show one order by any reference (or a bulk batch: B12)")
    p.add_argument("ref", help="our number (12 or #12), Gate order id, external_ref, idempotency key, or B12")
    p.add_argument("--show-code", action="store_true", help="also print the voucher code / PIN")
    p.set_defaults(handler=cmd_order)

    p = sub.add_parser("orders", help="list orders, newest first")
    p.add_argument("--status", help="comma-separated: submitting,unknown,pending,waiting_funds,completed,...")
    p.add_argument("--since", help="a date (2026-11-24), a time, or an age (2h, 7d)")
    p.add_argument("--requester", help="a Slack user id or cli:<name>")
    p.add_argument("--limit", type=positive_int, default=50, help="at most this many (default: 50)")
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
    p.add_argument("--limit", type=positive_int, default=100, help="at most this many (default: 100)")
    p.set_defaults(handler=cmd_approvals)

    as_help = ("who decides: a Slack user id (roles from GATEBOT_FINANCE/ADMINS...) or cli:<name> "
               "(listed in GATEBOT_CLI_APPROVERS); never the requester")
    p = sub.add_parser("approve", help="approve a request: the saved order is sent to Gate")
    p.add_argument("number", type=order_number, help="the order number (12 or #12)")
    p.add_argument("--as", dest="approver", type=approver, required=True, help=as_help)
    p.set_defaults(handler=cmd_decide)

    p = sub.add_parser("reject", help="reject a request: nothing is sent to Gate")
    p.add_argument("number", type=order_number, help="the order number (12 or #12)")
    p.add_argument("--reason", required=True, help="why (the requester is told)")
    p.add_argument("--as", dest="approver", type=approver, required=True, help=as_help)
    p.set_defaults(handler=cmd_decide)

    p = sub.add_parser("bulk", help="place a CSV file of orders; status|pause|resume|cancel|approve|reject|results B12",
                       epilog=BULK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", metavar="FILE.csv|ACTION", help="the CSV file to place, or an action on a batch: "
                   + ", ".join(BULK_ACTIONS))
    p.add_argument("batch", nargs="?", metavar="BATCH", help="the batch an action is for (B12)")
    p.add_argument("--out", help="write the results CSV (with the voucher codes) to this file, mode 0600")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--as", dest="who", type=approver,
                   help="who you are: a Slack user id (roles from GATEBOT_ADMINS/FINANCE...) or cli:<name> "
                        "(default: cli:<your login>)")
    p.add_argument("--reason", help="why a batch is rejected (bulk reject)")
    p.add_argument("--test", action="store_true", help="test orders (is_test at Gate)")
    p.add_argument("--wait", type=positive_int, default=30,
                   help="seconds to wait after placing for Gate to deliver, so the results hold the codes "
                        "(default: 30)")
    p.add_argument("--refresh", action="store_true", help="reload the catalog from Gate first")
    p.set_defaults(handler=cmd_bulk)

    p = sub.add_parser("demo", help="the whole bot on this machine, no Slack workspace needed")
    from gatebot.demo import add_arguments

    add_arguments(p)
    p.set_defaults(handler=cmd_demo, no_settings=True)

    p = sub.add_parser("serve", help="serve the Slack app over HTTP on $PORT (and run the jobs)")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=tcp_port, help="default: $PORT (3000)")
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
        print_err(str(exc))
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
            print_err(line)
        return 2
    except UsageError as exc:
        print_err(str(exc))
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from sqlalchemy.exc import ArgumentError, OperationalError

        from gatebot.store.db import SchemaOutOfDate

        if isinstance(exc, SchemaOutOfDate):
            print_err(str(exc))
            return 2
        if isinstance(exc, OperationalError | ArgumentError):  # the driver's reason: no credentials in it
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            print_err(f"DATABASE_URL: cannot open the database ({reason}); check the URL and that the "
                      "database (or the SQLite file's directory) exists")
            return 2
        if isinstance(exc, OSError) and exc.filename:  # e.g. a SQLite path under something that is not a folder
            print_err(f"{exc.filename}: {exc.strerror or exc}; check the path (DATABASE_URL, --db, ...)")
            return 2
        raise
