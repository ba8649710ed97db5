"""``python -m gatebot.sandbox`` (and ``gatebot sandbox``): serve the Gate API simulator over HTTP.

Prints one line ``Gate sandbox listening on http://HOST:PORT (agent_id ..., API key ...)`` once the
socket listens — with ``--port 0`` that is how a parent process (crash tests) learns the port. The
built-in sandbox key is public (it only opens this simulator) and is printed so a client can be
pointed at it; a key given with ``--api-key`` is not echoed. Fault knobs set here are only the
starting values; change them at run time with ``PATCH /_sandbox/faults``.

Must not import Slack, the scheduler or gatebot.gate.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Sequence

from gatebot.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY
from gatebot.sandbox.catalog import ALWAYS_FAILS_PRODUCT_ID
from gatebot.sandbox.server import DEFAULT_PORT, serve
from gatebot.sandbox.simulator import Faults, SandboxConfig

__all__ = ["build_parser", "config_from_args", "main"]


def build_parser(*, parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser,
                 prog: str = "gatebot sandbox") -> argparse.ArgumentParser:
    parser = parser_class(prog=prog, description="Serve the Plexy Gate API simulator over HTTP.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="TCP port; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=42,
                        help="seed of ids and voucher codes (default: %(default)s)")
    parser.add_argument("--completion-delay", type=float, default=5.0, metavar="SECONDS",
                        help="time from pending to completed/failed (default: %(default)s)")
    parser.add_argument("--fail-product", type=int, action="append", default=[], metavar="ID",
                        help="orders of this product always fail (repeatable; "
                             f"{ALWAYS_FAILS_PRODUCT_ID} always does)")
    parser.add_argument("--api-key", default=SANDBOX_API_KEY,
                        help="API key to accept (default: the built-in sandbox key)")
    parser.add_argument("--agent-id", type=uuid.UUID, default=SANDBOX_AGENT_ID,
                        help="agent id of the account (default: %(default)s)")
    parser.add_argument("--log-level", default="info",
                        choices=["critical", "error", "warning", "info", "debug"])
    faults = parser.add_argument_group("faults (starting values)")
    faults.add_argument("--latency", type=float, default=0.0, metavar="SECONDS",
                        help="added to every Gate request")
    faults.add_argument("--latency-jitter", type=float, default=0.0, metavar="SECONDS",
                        help="random extra latency, 0..SECONDS")
    faults.add_argument("--error-rate", type=float, default=0.0, metavar="FRACTION",
                        help="business requests failing (503; creates: reset / processed-then-500 / 503)")
    faults.add_argument("--create-error-rate", type=float, default=0.0, metavar="FRACTION",
                        help="the same, for creates only")
    faults.add_argument("--rate-limit-rate", type=float, default=0.0, metavar="FRACTION",
                        help="business requests answering 429")
    faults.add_argument("--retry-after", type=int, default=1, metavar="SECONDS",
                        help="Retry-After of 429 answers")
    faults.add_argument("--hang-rate", type=float, default=0.0, metavar="FRACTION",
                        help="business requests that do not answer for --hang-seconds")
    faults.add_argument("--hang-seconds", type=float, default=3600.0, metavar="SECONDS")
    faults.add_argument("--health-down", action="store_true", help="GET /health answers 503 degraded")
    return parser


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """A :class:`SandboxConfig` from parsed arguments; :class:`ValueError` for out-of-range values."""
    faults = Faults(latency=args.latency, latency_jitter=args.latency_jitter, error_rate=args.error_rate,
                    create_error_rate=args.create_error_rate, rate_limit_rate=args.rate_limit_rate,
                    retry_after=args.retry_after, hang_rate=args.hang_rate, hang_seconds=args.hang_seconds,
                    health_down=args.health_down)
    return SandboxConfig(api_key=args.api_key, agent_id=args.agent_id, seed=args.seed,
                         completion_delay=args.completion_delay,
                         fail_product_ids=frozenset({ALWAYS_FAILS_PRODUCT_ID, *args.fail_product}),
                         faults=faults)


def main(argv: Sequence[str] | None = None, *,
         parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser,
         prog: str = "python -m gatebot.sandbox") -> int:
    """Serve until interrupted. ``parser_class``/``prog``: how ``gatebot sandbox`` reports bad arguments."""
    parser = build_parser(parser_class=parser_class, prog=prog)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))

    def ready(url: str) -> None:
        key = config.api_key if config.api_key == SANDBOX_API_KEY else "as given with --api-key"
        print(f"Gate sandbox listening on {url} (agent_id {config.agent_id}, API key {key})", flush=True)

    try:
        serve(config, host=args.host, port=args.port, log_level=args.log_level, on_ready=ready)
    except OSError as exc:  # the port is taken, the host is not ours...
        print(f"gatebot sandbox: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
