"""Message builders: order status and lookups, lists, balances, deposits, products, health, help, errors.

Every builder returns ``{"text": fallback, "blocks": [...]}`` within Slack's limits (see ``limits.py``),
escaping and truncating user and Gate data. Voucher codes, PINs and vendor ids appear ONLY in
:func:`order_delivery_dm` and in :func:`order_detail` when ``content`` is passed — the store's order
rows carry no content, so no other builder can leak one; fallback texts (shown in notifications)
never carry a code either.

Pure functions: must not import slack_bolt/slack_sdk, the store, or do I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from gatebot.config import Thresholds
from gatebot.finance.levels import balance_level
from gatebot.gate.models import Balance, Deposit, ProductKind, order_kind
from gatebot.money import MoneyError
from gatebot.slack import ids
from gatebot.slack.blocks.common import (
    FINAL_STATUSES,
    MAX_MESSAGE_BLOCKS,
    TIMES,
    Block,
    HealthCheck,
    HistoryView,
    Message,
    OrderView,
    ProductView,
    actions,
    button,
    channel_mention,
    code,
    context,
    divider,
    esc,
    field,
    fields_sections,
    format_money,
    header,
    line_sections,
    message,
    order_ref,
    price_text,
    section,
    slack_date,
    status_display,
    truncate,
    user_mention,
)
from gatebot.slack.grammar import USAGE, GrammarError, Usage

__all__ = [
    "balance_lines",
    "balance_message",
    "denied_message",
    "deposits_message",
    "error_message",
    "grammar_error_message",
    "health_lines",
    "health_message",
    "help_message",
    "order_delivery_dm",
    "order_detail",
    "order_message",
    "order_row",
    "order_thread_note",
    "orders_list",
    "products_message",
    "status_explanation",
]

#: Rows shown by :func:`orders_list` (one section with a "View" button each).
MAX_LIST_ROWS = 20
#: History rows shown by :func:`order_detail` (most recent) and by the status message's tail.
MAX_HISTORY_ROWS = 15
MAX_HISTORY_TAIL = 5
#: Longest product name / reason / note shown before "…".
NAME_LIMIT = 150
REASON_LIMIT = 500


# -- orders --------------------------------------------------------------------------------------------


def _name(order: OrderView) -> str:
    """The product name, escaped and truncated (falls back to the product id)."""
    raw = order.product_name or (f"product {order.product_id}" if order.product_id is not None else "product")
    return esc(truncate(raw, NAME_LIMIT))


def _reason(order: OrderView) -> str:
    """``: <reason> (`code`)`` or ``""`` — without the reason's own full stop: the sentence ends it."""
    text = ""
    reason = (order.status_reason or "").strip().rstrip(".").rstrip()
    if reason:
        text += f": {esc(truncate(reason, REASON_LIMIT))}"
    if order.error_code:
        text += f" ({code(order.error_code, 60)})"
    return text


def status_explanation(order: OrderView, *, resume_on_deposit: bool = True) -> str:
    """One or two sentences (mrkdwn) saying where the order is and what happens next."""
    status = str(order.status)
    reason = _reason(order)
    requester = user_mention(order.requester, missing="the requester")
    if status == "submitting":
        return "Sending the order to Gate…"
    if status == "unknown":
        return (f"Gate didn't confirm whether it received the order{reason}. gatebot keeps retrying with the "
                "same idempotency key, so it cannot be charged twice.")
    if status == "pending":
        return "Gate accepted the order and is processing it. This message updates when it finishes."
    if status == "waiting_funds":
        currency = f"{esc(order.currency)} " if order.currency else ""
        nxt = ("It is on hold and will be resubmitted automatically (same key, no double charge) once a "
               "deposit posts." if resume_on_deposit else
               "It is on hold until someone resumes it after a deposit posts (same key, no double charge).")
        return f"Not enough {currency}balance at Gate{reason}. {nxt}"
    if status == "completed":
        return f"Delivered to {requester} by DM."
    if status == "failed":
        return (f"Gate reported the order as failed{reason}. The charge is returned to the balance; place a "
                "new order to try again.")
    if status == "awaiting_approval":
        expires = getattr(order, "approval_expires_at", None)
        until = f" The request expires {slack_date(expires)}." if isinstance(expires, datetime) else ""
        why = esc(truncate((order.status_reason or "").strip().removeprefix("Needs approval: ").rstrip("."),
                           REASON_LIMIT))
        because = f"It needs approval: {why}. " if why else ""  # the status line above already says "waiting"
        return (f"{because}Nothing is sent to Gate until an approver other than {requester} approves it.{until}")
    if status == "rejected" and order.error_code in ("approval_rejected", "approval_expired"):
        decided = (order.status_reason or "").strip().rstrip(".")
        if order.error_code == "approval_expired":
            return "The approval request expired before anyone approved it. Nothing was sent to Gate or charged."
        return f"{esc(truncate(decided, REASON_LIMIT))}."  # "Rejected by …: why. Nothing was sent to Gate."
    if status == "rejected":
        return f"Gate rejected the order{reason}. Nothing was charged."
    if status == "needs_attention":
        return (f"gatebot stopped this order: its records disagree with Gate{reason}. Nothing more is sent "
                "automatically; an admin has to settle it.")
    return f"Status `{esc(truncate(status, 40))}`{reason}."


def _what(order: OrderView) -> str:
    """``top-up USD 10.00`` / ``voucher`` times ``2`` (escaped)."""
    kind = order_kind(order.amount)
    if kind is ProductKind.TOP_UP:
        return f"{kind} {esc(format_money(order.amount, order.currency))}"
    return f"{kind} {TIMES} {order.quantity or 1}"


def _cost(order: OrderView) -> str:
    if order.charged_amount is not None:
        return esc(format_money(order.charged_amount, order.currency))
    if order.estimated_cost is not None:
        return f"≈ {esc(format_money(order.estimated_cost, order.currency))} (estimate)"
    return "—"


def _order_buttons(order: OrderView, *, details: bool = True) -> list[Block]:
    if order.id is None:
        return []
    value = str(order.id)
    elements = []
    if str(order.status) not in FINAL_STATUSES:
        elements.append(button("Refresh", action_id=ids.ORDER_REFRESH, value=value))
    if details:
        elements.append(button("View details", action_id=ids.ORDER_VIEW, value=value))
    return elements


def _history_line(row: HistoryView) -> str:
    arrow = f"{code(row.from_status, 30)} → " if row.from_status else ""
    actor = user_mention(row.actor, missing="gatebot")
    line = f"{slack_date(row.at)} · {arrow}{code(row.to_status, 30)} · {actor}"
    if row.note:
        line += f": {esc(truncate(row.note, 300))}"
    return line


def _title(order: OrderView) -> str:
    emoji, _label = status_display(order.status)
    title = f"{emoji} *Order {order_ref(order)}* · {_name(order)}"
    return title + (" · :test_tube: _test order_" if order.is_test else "")


def order_message(order: OrderView, *, history_tail: Sequence[HistoryView] | None = None,
                  resume_on_deposit: bool = True) -> Message:
    """The order's status message in its channel, edited in place as the order moves.

    Never shows a code: a completed order says it was delivered to the requester by DM.
    """
    _emoji, label = status_display(order.status)
    explanation = status_explanation(order, resume_on_deposit=resume_on_deposit)
    blocks: list[Block] = [section(f"{_title(order)}\n*{label}* — {explanation}")]
    fields = [field("Order", _what(order)), field("Cost", _cost(order)),
              field("Requested by", user_mention(order.requester))]
    if order.external_ref:
        fields.append(field("External ref", code(order.external_ref, 80)))
    if order.gate_order_id:
        fields.append(field("Gate order", code(order.gate_order_id, 80)))
    blocks += fields_sections(fields)
    if history_tail:
        blocks.append(context(*(_history_line(row) for row in list(history_tail)[-MAX_HISTORY_TAIL:])))
    blocks.append(context(f"Created {slack_date(order.created_at)} · updated {slack_date(order.updated_at)}"))
    if buttons := _order_buttons(order):
        blocks.append(actions(*buttons))
    return message(f"Order {order_ref(order)} ({_name(order)}): {label}", blocks)


def order_thread_note(row: HistoryView) -> Message:
    """A reply in the status message's thread recording one history step."""
    line = _history_line(row)
    return message(line, [context(line)])


# -- delivery (the only place codes appear) ---------------------------------------------------------------

_CONTENT_LABELS = {
    "voucher_code": "Code", "code": "Code", "pin": "PIN", "pin_code": "PIN", "serial": "Serial",
    "serial_number": "Serial", "vendor_order_id": "Vendor order id", "transaction_id": "Transaction id",
    "expires_at": "Expires", "expiry": "Expires", "expiry_date": "Expires", "redeem_url": "Redeem at",
    "redemption_url": "Redeem at", "url": "Link", "instructions": "Instructions", "vouchers": "Vouchers",
    "codes": "Codes",
}  # fmt: skip
_PROSE_KEYS = frozenset({"instructions", "description", "message", "note", "notes"})
_URL_KEYS = frozenset({"redeem_url", "redemption_url", "url", "link"})


def _content_label(key: object) -> str:
    text = str(key)
    return _CONTENT_LABELS.get(text.lower(), esc(truncate(text.replace("_", " ").capitalize(), 60)))


def _content_value(key: object, value: object) -> str:
    if value is None or value == "":
        return "—"
    text = str(value)
    if str(key).lower() in _URL_KEYS and text.startswith(("https://", "http://")) and "|" not in text:
        return f"<{esc(truncate(text, 2000))}>"
    if str(key).lower() in _PROSE_KEYS:
        return esc(truncate(text, 1000))
    return code(text, 1000)  # codes are shown whole (1000 chars is far beyond any real code)


def _content_lines(content: Mapping[str, Any], prefix: str = "") -> list[str]:
    lines: list[str] = []
    for key, value in content.items():
        label = _content_label(key)
        if isinstance(value, Mapping):
            lines += _content_lines(value, prefix=f"{prefix}{label} · ")
        elif isinstance(value, list | tuple):
            lines.append(f"*{prefix}{label}* ({len(value)}):")
            for number, item in enumerate(value, 1):
                if isinstance(item, Mapping):
                    parts = [f"{_content_label(k)} {_content_value(k, v)}" for k, v in item.items()
                             if not isinstance(v, Mapping | list | tuple)]
                    lines.append(f"{number}. " + " · ".join(parts or ["—"]))
                else:
                    lines.append(f"{number}. {_content_value(key, item)}")
        else:
            lines.append(f"*{prefix}{label}:* {_content_value(key, value)}")
    return lines


def _pairs(item: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {(str(k).lower(), str(v)) for k, v in item.items() if not isinstance(v, Mapping | list | tuple)}


def _without_repeats(content: Mapping[str, Any]) -> dict[str, Any]:
    """``content`` with each code listed once. Gate puts the first voucher's code and PIN at the top as
    well as under ``vouchers``: a list holding only that voucher is dropped (the top shows it); with
    several vouchers, the top-level copies are dropped instead (the list shows them all)."""
    top = _pairs(content)
    out = {k: v for k, v in content.items()
           if not (isinstance(v, list | tuple) and len(v) == 1 and isinstance(v[0], Mapping)
                   and _pairs(v[0]) and _pairs(v[0]) <= top)}
    listed = {pair for value in out.values() if isinstance(value, list | tuple)
              for item in value if isinstance(item, Mapping) for pair in _pairs(item)}
    return {k: v for k, v in out.items()
            if isinstance(v, Mapping | list | tuple) or (str(k).lower(), str(v)) not in listed}


def _content_blocks(order: OrderView, content: Mapping[str, Any], *, max_blocks: int) -> list[Block]:
    lines = _content_lines(_without_repeats(content))
    if not lines:
        return [section("Gate sent no code or details with this order. Support can check it with "
                        f"`{ids.COMMAND} order {order_ref(order)}`.")]
    return line_sections(lines, max_blocks=max_blocks,
                         more=f"…{{n}} more lines: see `{ids.COMMAND} order {order_ref(order)}`.")


def order_delivery_dm(order: OrderView, content: Mapping[str, Any]) -> Message:
    """The requester's DM with what was bought: the code, PIN, vendor id… (``order_content``)."""
    blocks: list[Block] = [
        header(f"Your order {order_ref(order)} is ready"),
        section(f"*{_name(order)}* · {_what(order)} · {_cost(order)}"
                + (" · :test_tube: _test order_" if order.is_test else "")),
    ]
    blocks += _content_blocks(order, content, max_blocks=MAX_MESSAGE_BLOCKS - len(blocks) - 1)
    blocks.append(context(":lock: Keep this private. gatebot never posts codes in channels."))
    ref = order_ref(order)
    return message(f"Your order {ref} ({_name(order)}) is ready — open this message for the details.", blocks)


def order_detail(order: OrderView, history: Sequence[HistoryView], *,
                 content: Mapping[str, Any] | None = None, resume_on_deposit: bool = True) -> Message:
    """Everything about one order (the lookup result). Shows the code only when ``content`` is passed —
    the caller decides whether the viewer may see it."""
    _emoji, label = status_display(order.status)
    blocks: list[Block] = [
        header(f"Order {order_ref(order)} · {label}"),
        section(f"{_title(order)}\n{status_explanation(order, resume_on_deposit=resume_on_deposit)}"),
    ]
    fields = [
        field("Product", f"{_name(order)} ({order_kind(order.amount)}"
                         + (f", id {order.product_id})" if order.product_id is not None else ")")),
        field("Order", _what(order)),
        field("Estimated cost", esc(format_money(order.estimated_cost, order.currency))),
        field("Charged", esc(format_money(order.charged_amount, order.currency))),
        field("Requested by", user_mention(order.requester)),
        field("From channel", channel_mention(order.origin_channel)),
    ]
    if order.balance_before is not None or order.balance_after is not None:
        fields.append(field("Balance", f"{esc(format_money(order.balance_before, order.currency))} → "
                                       f"{esc(format_money(order.balance_after, order.currency))}"))
    fields += [
        field("Gate order id", code(order.gate_order_id) if order.gate_order_id else "—"),
        field("External ref", code(order.external_ref, 80) if order.external_ref else "—"),
        field("Idempotency key", code(order.idempotency_key, 80) if order.idempotency_key else "—"),
    ]
    if order.is_test:
        fields.append(field("Test order", "yes"))
    blocks += fields_sections(fields)
    times = [f"Created {slack_date(order.created_at)}"]
    if order.submitted_at:
        times.append(f"submitted {slack_date(order.submitted_at)}")
    if order.completed_at:
        times.append(f"completed {slack_date(order.completed_at)}")
    if order.failed_at:
        times.append(f"failed {slack_date(order.failed_at)}")
    times.append(f"updated {slack_date(order.updated_at)}")
    blocks.append(context(" · ".join(times)))
    buttons = _order_buttons(order, details=False)
    # What is left for delivery and history, keeping room for the buttons.
    budget = MAX_MESSAGE_BLOCKS - len(blocks) - (1 if buttons else 0)
    if content is not None:
        blocks.append(divider())
        blocks.append(section("*Delivery* — visible to you only; don't paste it into channels."))
        budget -= 2
        delivery = _content_blocks(order, content, max_blocks=max(budget // 2, 1))
        blocks += delivery
        budget -= len(delivery)
    rows = list(history)
    if rows and budget >= 1:
        shown = rows[-MAX_HISTORY_ROWS:]
        lines = [_history_line(row) for row in shown]
        if len(rows) > len(shown):
            lines.insert(0, f"_…{len(rows) - len(shown)} earlier entries_")
        blocks += line_sections(["*History*", *lines], max_blocks=budget)
    if buttons:
        blocks.append(actions(*buttons))
    return message(f"Order {order_ref(order)} ({_name(order)}): {label}", blocks)


def order_row(order: OrderView) -> Block:
    """One order as a list row (a section with a "View" button) — shared with the Home tab."""
    emoji, label = status_display(order.status)
    text = (f"{emoji} *{order_ref(order)}* · {_name(order)} · {_what(order)} · {_cost(order)}\n"
            f"{label} · {user_mention(order.requester)} · {slack_date(order.created_at)}")
    if order.id is None:
        return section(text)
    return section(text, accessory=button("View", action_id=ids.ORDER_VIEW, value=str(order.id)))


def orders_list(orders: Sequence[OrderView], title: str, *, total: int | None = None) -> Message:
    """A list of orders, newest first as given, each with a "View" button; long lists are cut with a
    note on how to narrow them. ``total`` is the number that matched when ``orders`` is a page."""
    total = len(orders) if total is None else max(total, len(orders))
    blocks: list[Block] = [header(title)]
    if not orders:
        blocks.append(section("No orders to show."))
        return message(f"{esc(title)}: no orders", blocks)
    shown = list(orders)[:MAX_LIST_ROWS]
    blocks += [order_row(order) for order in shown]
    if total > len(shown):
        blocks.append(context(f"Showing {len(shown)} of {total}. Narrow it down with `{ids.COMMAND} orders "
                              "pending`, `failed`, `mine` or `@person`."))
    summary = ", ".join(f"{order_ref(o)} {status_display(o.status)[1].lower()}" for o in shown[:10])
    return message(f"{esc(title)}: {total} orders ({summary}{', …' if total > 10 else ''})", blocks)


# -- money ---------------------------------------------------------------------------------------------

_LEVEL = {"ok": ":large_green_circle:", "warning": ":large_yellow_circle:", "critical": ":red_circle:",
          "unset": ":white_circle:"}
_ALERT_STATE = {"firing": ":rotating_light: alert firing", "flapping": ":rotating_light: alert flapping",
                "acked": "alert acknowledged", "snoozed": "alert snoozed"}


def balance_lines(balances: Sequence[Balance], thresholds: Mapping[str, Thresholds],
                  alert_states: Mapping[str, str] | None = None) -> tuple[list[str], list[str]]:
    """(mrkdwn line per currency, short ``USD 1,234.50 (ok)`` summaries) — shared with the Home tab."""
    alert_states = {k.upper(): v for k, v in (alert_states or {}).items()}
    thresholds = {k.upper(): v for k, v in thresholds.items()}
    lines: list[str] = []
    summary: list[str] = []
    seen: set[str] = set()
    for balance in sorted(balances, key=lambda b: b.currency_code.upper()):
        currency = balance.currency_code.upper()
        seen.add(currency)
        amount = esc(format_money(balance.available, currency))
        levels = thresholds.get(currency)
        try:
            level = balance_level(balance.money(), levels)
        except (MoneyError, ArithmeticError):
            level = "unset"
        line = f"{_LEVEL[level]} *{amount}* — {level if level != 'unset' else 'no alert threshold set'}"
        if levels is not None:
            line += f" (warning at {esc(levels.warning)}, critical at {esc(levels.critical)})"
        if state := alert_states.get(currency):
            line += f" · {_ALERT_STATE.get(state, esc(truncate(state, 30)))}"
        if balance.updated_at:  # Gate's date of the last change (often a deposit weeks ago), not of the reading
            line += f" · last changed {slack_date(balance.updated_at)}"
        lines.append(line)
        summary.append(f"{amount} ({level})")
    for currency in sorted(set(thresholds) - seen):
        lines.append(f"{_LEVEL['unset']} *{esc(currency)}* — Gate reported no balance in this currency")
    return lines, summary


def balance_message(balances: Sequence[Balance], thresholds: Mapping[str, Thresholds],
                    alert_states: Mapping[str, str] | None = None, *, read_at: datetime | None = None) -> Message:
    """Each currency's available balance with its threshold status (ok / warning / critical).

    ``alert_states`` maps a currency to its low-balance alert state (``firing``, ``acked``...).
    ``read_at``: when gatebot read these balances from Gate, shown so that they never look stale.
    """
    lines, summary = balance_lines(balances, thresholds, alert_states)
    blocks: list[Block] = [header("Gate balance")]
    if lines:
        blocks += line_sections(lines, max_blocks=MAX_MESSAGE_BLOCKS - 2)
    else:
        blocks.append(section("Gate reported no balances."))
    if read_at is not None:
        blocks.append(context(f"Read from Gate {slack_date(read_at)}"))
    return message("Gate balance: " + (", ".join(summary) or "none reported"), blocks)


#: Deposits listed by :func:`deposits_message` before "…and N more".
MAX_DEPOSIT_ROWS = 50
_DEPOSIT_STATUS = {"posted": ":white_check_mark:", "pending": ":hourglass_flowing_sand:", "rejected": ":x:"}


def deposits_message(deposits: Sequence[Deposit], *, title: str = "Recent deposits") -> Message:
    """Recent deposits, newest first as given: amount, method, status, reference and dates."""
    lines = []
    for dep in deposits[:MAX_DEPOSIT_ROWS]:
        emoji = _DEPOSIT_STATUS.get(dep.status, ":grey_question:")
        line = (f"{emoji} *{esc(format_money(dep.amount, dep.currency_code))}*"
                f" · {esc(truncate((dep.method or 'unknown method').replace('_', ' '), 40))}"
                f" · {esc(truncate(dep.status, 30))}")
        if dep.external_ref:
            line += f" · ref {code(dep.external_ref, 80)}"
        line += f" · created {slack_date(dep.created_at)}"
        if dep.posted_at:
            line += f" · posted {slack_date(dep.posted_at)}"
        lines.append(line)
    if len(deposits) > MAX_DEPOSIT_ROWS:
        lines.append(f"_…and {len(deposits) - MAX_DEPOSIT_ROWS} older ones._")
    blocks: list[Block] = [header(title)]
    if lines:
        blocks += line_sections(lines, max_blocks=MAX_MESSAGE_BLOCKS - 1)
    else:
        blocks.append(section("No deposits yet."))
    return message(f"{esc(title)}: {len(deposits)}", blocks)


# -- catalog, health, help, errors -------------------------------------------------------------------------

#: Products listed by :func:`products_message` before "…and N more".
MAX_PRODUCT_ROWS = 100


def products_message(products: Iterable[ProductView], query: str = "") -> Message:
    """The products a search for ``query`` found, as :func:`gatebot.orders.find_products` ordered them
    (inactive ones marked); ``query`` is only shown."""
    found = list(products)
    title = f"Products matching “{truncate(query.strip(), 60)}”" if query.strip() else "Products"
    blocks: list[Block] = [header(title)]
    if not found:
        blocks.append(section(f"No products match “{esc(truncate(query.strip(), 60))}”. Try a shorter search."
                              if query.strip() else "The catalog is empty — it refreshes on a schedule."))
        return message(f"{esc(title)}: none", blocks)
    lines = [
        f"• *{esc(truncate(p.name, NAME_LIMIT))}* · {p.kind} {esc(price_text(p))}"
        + (f" · {esc(truncate(p.region_code, 10))}" if p.region_code else "")
        + f" · id {p.id}" + ("" if p.is_active else " · _inactive_")
        for p in found[:MAX_PRODUCT_ROWS]
    ]
    if len(found) > MAX_PRODUCT_ROWS:
        lines.append(f"_…and {len(found) - MAX_PRODUCT_ROWS} more: search with more words._")
    blocks += line_sections(lines, max_blocks=MAX_MESSAGE_BLOCKS - 2)
    example = found[0].id if found[0].is_active else next((p.id for p in found if p.is_active), None)
    if example is not None:
        blocks.append(context(f"Order one with `{ids.COMMAND} buy` and its name or id, e.g. "
                              f"`{ids.COMMAND} buy {example}`."))
    return message(f"{esc(title)}: {len(found)} found", blocks)


def health_lines(checks: Sequence[HealthCheck]) -> tuple[str, list[str]]:
    """(summary line, one line per check, problems first) — shared with the Home tab."""
    failing = [c for c in checks if not c.ok]
    if not checks:
        summary = ":white_circle: No health checks have run yet."
    elif failing:
        summary = f":red_circle: {len(failing)} of {len(checks)} checks failing."
    else:
        summary = ":large_green_circle: All systems normal."
    lines = []
    for check in sorted(checks, key=lambda c: c.ok):
        line = f"{':large_green_circle:' if check.ok else ':red_circle:'} *{esc(truncate(check.name, 80))}*"
        if check.detail:
            line += f" — {esc(truncate(check.detail, 300))}"
        else:
            line += " — ok" if check.ok else " — failing"
        if check.checked_at:
            line += f" · {esc(check.at_label)} {slack_date(check.checked_at)}"
        lines.append(line)
    return summary, lines


def health_message(checks: Sequence[HealthCheck], *, now: datetime | None = None) -> Message:
    """Health of Gate and gatebot's own parts (one :class:`HealthCheck` per part), problems first."""
    summary, lines = health_lines(checks)
    blocks: list[Block] = [header("gatebot health"), section(summary)]
    blocks += line_sections(lines, max_blocks=MAX_MESSAGE_BLOCKS - 3)
    if now is not None:
        blocks.append(context(f"As of {slack_date(now)}"))
    failing = ", ".join(truncate(c.name, 40) for c in checks if not c.ok)
    text = f"gatebot health: failing: {esc(truncate(failing, 400))}" if failing else "gatebot health: all ok"
    return message(text, blocks)


def help_message(rows: Sequence[Usage], *, topic: str | None = None, roles: Iterable[str] = ()) -> Message:
    """The commands the viewer may use (``rows`` = ``grammar.allowed_usage(roles)``), or one ``topic``."""
    if topic is not None:
        matching = [u for u in rows if u.name == topic]
        if not matching and topic in USAGE:
            return denied_message(what=f"`{USAGE[topic].syntax}`", role=USAGE[topic].role or "admin")
        rows = matching
    blocks: list[Block] = [header("gatebot commands")]
    if not rows:
        blocks.append(section("You don't have a gatebot role yet, so there is nothing here for you. "
                              "Ask a gatebot admin if you need access."))
        return message("gatebot: no commands available to you", blocks)
    lines = [f"`{esc(u.syntax)}`\n{esc(u.summary)} — e.g. `{esc(u.example)}`" for u in rows]
    blocks += line_sections(lines, max_blocks=MAX_MESSAGE_BLOCKS - 2)
    have = sorted(set(roles))
    blocks.append(context(f"Your roles: {esc(', '.join(have))}" if have else
                          "You have no gatebot role; some commands need one."))
    return message("gatebot commands: " + ", ".join(u.name for u in rows), blocks)


def error_message(text: str, *, usage: str | None = None) -> Message:
    """A polite error (``text`` is plain text from gatebot; it is escaped here)."""
    blocks: list[Block] = [section(f":warning: {esc(truncate(text, 2000))}")]
    if usage:
        blocks.append(context(f"Usage: `{esc(truncate(usage, 500))}`"))
    return message(esc(truncate(text, 2000)), blocks)


def grammar_error_message(error: GrammarError) -> Message:
    return error_message(error.message, usage=error.usage)


def denied_message(*, what: str, role: str | Iterable[str]) -> Message:
    """Polite refusal: ``what`` (mrkdwn from gatebot, e.g. "`/gate balance`") needs ``role``."""
    roles = [role] if isinstance(role, str) else sorted(role)
    needed = " or ".join(f"*{esc(r)}*" for r in roles) or "*admin*"
    text = (f":lock: Sorry — {what} is for people with the {needed} role. "
            "If you need it, ask a gatebot admin to add you.")
    return message(text, [section(text)])
