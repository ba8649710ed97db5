"""``/gate <subcommand>``: parse, check the role, ack, then answer privately.

Routing table (roles from :data:`gatebot.slack.grammar.USAGE`; admin may do everything)::

    help [command]      anyone      the commands the caller's roles allow, with examples
    order <ref>         support     one order (the requester may always look up their own)
    orders [filter]     support     recent orders: pending | failed | mine | @person | #channel
    balance             finance     balance per currency with its threshold / alert status
    deposits            finance     recent deposits, from Gate
    buy [search]        ops         opens the order modal (see order_flow)
    bulk                ops         opens the bulk order modal (see bulk); ``order B12`` shows a batch
    products [search]   ops         the cached catalog
    health              anyone      Gate /health, circuit, jobs, scheduler, database
    approvals           anyone      open approval requests: those the caller may decide (buttons), their own
    export <kind> ...   finance     orders | deposits | ledger CSV, uploaded to the requester's DM

A bad command is answered in the ack itself (pure parsing, instant); everything else acks first and
answers through ``response_url`` (ephemeral), so slow Gate calls never cost the 3-second ack. A refusal
is answered politely and recorded in the audit log. Must not import the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from gatebot import gate
from gatebot.alerts import OpenAlert
from gatebot.orders import GateDown
from gatebot.slack import grammar, ids
from gatebot.slack.blocks.common import Message, esc, slack_date
from gatebot.slack.blocks.messages import (
    balance_message,
    denied_message,
    deposits_message,
    error_message,
    grammar_error_message,
    health_message,
    help_message,
    orders_list,
    products_message,
)
from gatebot.slack.deps import Deps
from gatebot.slack.grammar import Command, GrammarError
from gatebot.slack.listeners import Reply, acked_first, private_reply, with_note
from gatebot.slack.listeners.approvals import approvals_message
from gatebot.slack.listeners.bulk import batch_lookup, open_bulk_modal
from gatebot.slack.listeners.exports import send_export
from gatebot.slack.listeners.lookups import order_lookup
from gatebot.slack.listeners.order_flow import open_order_modal, search_catalog
from gatebot.store import repo
from gatebot.store.models import OPEN_STATUSES, Order, OrderStatus

__all__ = ["balance_alert_states", "register"]

log = logging.getLogger(__name__)

#: Orders read for ``/gate orders`` (the list shows 20; the rest is counted).
ORDERS_SCAN = 200
DEPOSITS_SHOWN = 20


def register(app: AsyncApp, deps: Deps) -> None:
    app.command(ids.COMMAND)(_gate(deps))


def _gate(deps: Deps) -> Any:
    @acked_first
    async def gate_command(ack: AsyncAck, body: dict[str, Any], command: dict[str, Any], respond: AsyncRespond,
                           client: AsyncWebClient) -> None:
        try:
            cmd = grammar.parse(command.get("text") or "")
        except GrammarError as exc:
            await ack(**grammar_error_message(exc))
            return
        await ack()
        user = str(command["user_id"])
        channel = str(command.get("channel_id") or "") or None
        reply = private_reply(client, user=user, channel=channel, respond=respond)
        await run(deps, cmd, user=user, channel=channel, trigger_id=command.get("trigger_id"), client=client,
                  reply=reply)

    return gate_command


async def run(deps: Deps, cmd: Command, *, user: str, channel: str | None, trigger_id: str | None,
              client: AsyncWebClient, reply: Reply) -> None:
    """Carry out one parsed command for ``user`` (after the ack)."""
    roles = await deps.roles.of(user)
    usage = cmd.usage
    if cmd.name == "help":
        await reply(help_message(grammar.allowed_usage(roles), topic=cmd.args[0] if cmd.args else None,
                                 roles=roles))
        return
    if cmd.name == "order":  # the requester may look up their own order (or batch) without the support role
        batch = await batch_lookup(deps, viewer=user, ref=cmd.args[0], roles=roles)
        await reply(batch or await order_lookup(deps, viewer=user, ref=cmd.args[0], roles=roles))
        return
    if not usage.allowed_for(roles):
        await deps.record_audit(actor=user, action=f"command.{cmd.name}", target=None, allowed=False,
                                detail=f"needs the {usage.role} role")
        await reply(denied_message(what=f"`{usage.syntax}`", role=usage.role or grammar.ROLE_ADMIN))
        return
    if cmd.name == "buy":
        if not trigger_id:
            await reply(error_message("Slack sent no trigger to open the order form with; try again."))
            return
        await open_order_modal(deps, client, trigger_id=trigger_id, user=user, channel=channel,
                               query=cmd.query, reply=reply)
        return
    if cmd.name == "bulk":
        if not trigger_id:
            await reply(error_message("Slack sent no trigger to open the bulk order form with; try again."))
            return
        await open_bulk_modal(deps, client, trigger_id=trigger_id, channel=channel, reply=reply)
        return
    if cmd.name == "export":  # the CSV goes to the requester's DM as a file
        await reply(await send_export(deps, client, cmd, user))
        return
    if cmd.name == "approvals":
        await reply(await approvals_message(deps, user, roles))
        return
    handlers = {"orders": _orders, "balance": _balance, "deposits": _deposits, "products": _products,
                "health": _health}
    await reply(await handlers[cmd.name](deps, cmd, user))


# -- subcommands ---------------------------------------------------------------------------------------------


async def _orders(deps: Deps, cmd: Command, user: str) -> Message:
    what = cmd.args[0] if cmd.args else None
    status: list[OrderStatus] | None = None
    requester: str | None = None
    title = "Recent orders"
    if what == "pending":
        status, title = sorted(OPEN_STATUSES), "Open orders (not finished yet)"
    elif what == "failed":
        status, title = [OrderStatus.FAILED, OrderStatus.REJECTED], "Failed and rejected orders"
    elif what == "mine":
        requester, title = user, "Your orders"
    elif what == "user":
        requester, title = cmd.user_id, "Orders by that person"
    found: list[Order] = await deps.db.run(
        lambda s: repo.list_orders(s, status=status, requester=requester, limit=ORDERS_SCAN))
    if what == "channel":  # few orders per channel: filtered here rather than by a query of its own
        found = [o for o in found if o.origin_channel == cmd.channel_id]
        title = "Orders from that channel"
    message = orders_list(found, title, total=len(found))
    if what == "user":
        message = with_note(message, f"Requested by <@{cmd.user_id}>.")
    elif what == "channel":
        message = with_note(message, f"Ordered from <#{cmd.channel_id}>.")
    return message


def balance_alert_states(alerts: Iterable[OpenAlert]) -> dict[str, str]:
    """Currency → low-balance alert state (``firing``, ``acked``...) of the open alerts."""
    return {a.key.split(":", 1)[1]: a.state for a in alerts if a.key.startswith("balance:")}


async def _balance(deps: Deps, cmd: Command, user: str) -> Message:
    try:
        snapshot = await deps.orders.balances(max_wait=deps.command_balance_wait)
    except GateDown as exc:
        return error_message(str(exc))
    now = deps.now()
    states = balance_alert_states(await deps.db.run(lambda s: deps.status.open_alerts(s, now)))
    message = balance_message(snapshot.balances, deps.settings.gatebot_low_balance, states, read_at=snapshot.at)
    spend = await _spend_today(deps, user)
    if spend:
        message = with_note(message, "*Spent in the last 24 hours*: " + " · ".join(spend))
    if snapshot.cached:
        message = with_note(message, f":hourglass: Gate did not answer in time: these are the balances gatebot "
                                     f"last read, {slack_date(snapshot.at)}.")
    return message


async def _spend_today(deps: Deps, user: str) -> list[str]:
    """Spend in the last 24 hours against each daily limit that applies to ``user`` and their roles."""
    roles = await deps.roles.of(user)
    currencies = sorted({lim.limit.currency for lim in deps.orders.approval_policy.daily_limits})
    uses = [use for currency in currencies for use in await deps.orders.limit_uses(user, roles, currency)]
    return [f"{esc(use.used)} of {esc(use.limit.limit)} ({use.whose}), {esc(use.remaining)} left" for use in uses]


async def _deposits(deps: Deps, cmd: Command, user: str) -> Message:
    try:
        page = await deps.gate.list_deposits(page=1, page_size=DEPOSITS_SHOWN)
    except gate.GateError as exc:
        log.info("could not list deposits: %s", type(exc).__name__)
        return error_message(f"Could not read the deposits from Gate ({type(exc).__name__}). "
                             f"Try again in a minute, or check `{ids.COMMAND} health`.")
    return deposits_message(page.items)


async def _products(deps: Deps, cmd: Command, user: str) -> Message:
    products = await search_catalog(deps, cmd.query, active_only=False)
    message = products_message(products, cmd.query)
    if not products and not cmd.query.strip():
        try:
            count = await deps.orders.refresh_catalog()
        except gate.GateError as exc:
            return with_note(message, f"Loading the catalog from Gate failed ({type(exc).__name__}).")
        if count:
            message = products_message(await search_catalog(deps, "", active_only=False))
    return message


async def _health(deps: Deps, cmd: Command, user: str) -> Message:
    report = await deps.status_report(probe_gate=True)
    return health_message(report.checks(), now=report.at)

