"""Bulk orders in Slack: the "Bulk order" modal (a CSV ``file_input``), its checking / problems / summary
states, and a batch's progress message.

The progress message says where a batch is — a text progress bar, placed / completed / failed / waiting
counts, the cost so far, an ETA, why the first few failed rows failed — and carries Pause / Resume / Cancel
and "Download results again" as the batch's status allows. It NEVER holds a code or an account value: it is
built from counts, money and Gate's reasons only (the results file goes to the requester's DM). A batch
waiting for approval says in which channel approvers are asked (the request message itself is
:func:`~gatebot.slack.blocks.approvals.batch_approval_request`), with the terminal's way as a fallback.

Pure functions: must not import slack_bolt/slack_sdk, the store, or do I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from gatebot.bulk import BASE_COLUMNS, MAX_ROWS, REQUIRED_COLUMNS, BatchProgress, BulkPlan, Problem
from gatebot.money import Money
from gatebot.slack import ids
from gatebot.slack.blocks.common import (
    Block,
    Message,
    actions,
    button,
    channel_mention,
    code,
    context,
    divider,
    esc,
    field,
    fields_sections,
    line_sections,
    message,
    plain,
    section,
    slack_date,
    truncate,
    user_mention,
)
from gatebot.store.models import BatchStatus

__all__ = [
    "MAX_SHOWN_FAILURES",
    "MAX_SHOWN_PROBLEMS",
    "BatchCard",
    "BulkMeta",
    "batch_message",
    "bulk_modal",
    "checking_view",
    "placing_view",
    "summary_view",
]

#: Problems of an invalid file shown in the modal (the full list goes to the requester's DM).
MAX_SHOWN_PROBLEMS: Final = 8
#: Failed rows whose reason the progress message shows.
MAX_SHOWN_FAILURES: Final = 5
_BAR: Final = 20
_TITLE: Final = "Bulk order"

_STATUS: Final[Mapping[str, tuple[str, str]]] = {
    BatchStatus.PLANNED: (":memo:", "not confirmed yet"),
    BatchStatus.AWAITING_APPROVAL: (":raised_hand:", "waiting for approval"),
    BatchStatus.RUNNING: (":arrow_forward:", "placing orders"),
    BatchStatus.PAUSED: (":double_vertical_bar:", "paused"),
    BatchStatus.WAITING_FUNDS: (":hourglass:", "waiting for funds"),
    BatchStatus.CANCELLED: (":no_entry_sign:", "cancelled"),
    BatchStatus.FINISHED: (":white_check_mark:", "finished"),
    BatchStatus.REJECTED: (":x:", "rejected"),
}


@dataclass(frozen=True, slots=True)
class BulkMeta:
    """What the bulk views carry in ``private_metadata``: the channel ``/gate bulk`` came from (``None``:
    App Home) and, once planned, the batch."""

    channel: str | None = None
    batch_id: int | None = None

    def encode(self) -> str:
        return json.dumps({"c": self.channel, "b": self.batch_id}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> BulkMeta:
        """Raises ``ValueError`` for metadata gatebot did not write."""
        data = json.loads(text or "null")
        if not isinstance(data, dict):
            raise ValueError("not bulk metadata")
        channel, batch = data.get("c"), data.get("b")
        if not (channel is None or isinstance(channel, str)) or not (batch is None or type(batch) is int):
            raise ValueError("not bulk metadata")
        return cls(channel=channel, batch_id=batch)


def _modal(meta: BulkMeta, blocks: list[Block], *, callback_id: str = ids.BULK_MODAL, submit: str | None = None,
           close: str = "Close") -> dict[str, Any]:
    view: dict[str, Any] = {"type": "modal", "callback_id": callback_id, "title": plain(_TITLE, 24),
                            "close": plain(close, 24), "private_metadata": meta.encode(), "blocks": blocks}
    if submit is not None:
        view["submit"] = plain(submit, 24)
    return view


def _file_input() -> Block:
    return {"type": "input", "block_id": ids.BULK_FILE, "label": plain("CSV file"),
            "element": {"type": "file_input", "action_id": ids.BULK_FILE, "filetypes": ["csv"], "max_files": 1},
            "hint": plain(f"UTF-8, comma or semicolon separated, up to {MAX_ROWS:,} rows.")}


def bulk_modal(meta: BulkMeta, *, note: str | None = None, problems: Sequence[Problem] = (),
               file_name: str | None = None) -> dict[str, Any]:
    """The upload form; with ``problems`` (of ``file_name``) or a ``note`` above it after a failed check."""
    columns = ", ".join(code(c) for c in BASE_COLUMNS)
    needed = " and ".join(code(c) for c in REQUIRED_COLUMNS)
    blocks: list[Block] = []
    if problems:
        name = esc(truncate(file_name or "the file", 80))
        blocks.append(section(f":warning: *{name}* has {len(problems):,} problem(s), so nothing was ordered "
                              "and nothing was charged. Fix them and pick the file again."))
        lines = [f"• {esc(str(p))}" for p in problems[:MAX_SHOWN_PROBLEMS]]
        blocks += line_sections(lines, max_blocks=2)
        if len(problems) > MAX_SHOWN_PROBLEMS:
            blocks.append(context(f"…and {len(problems) - MAX_SHOWN_PROBLEMS:,} more. The full list is in your "
                                  "direct messages, as a CSV."))
        blocks.append(divider())
    elif note:
        blocks += [section(f":warning: {esc(truncate(note, 2000))}"), divider()]
    blocks += [
        section("Order many vouchers and top-ups at once: one row per order. Nothing is charged before you "
                "confirm the summary."),
        context(f"Columns: {columns}, and one column per customer-account field (e.g. `steam_login`). "
                f"{needed} are required; every row needs its own external_ref."),
        _file_input(),
    ]
    return _modal(meta, blocks, submit="Check file", close="Cancel")


def checking_view(meta: BulkMeta, name: str) -> dict[str, Any]:
    """Shown while the file is downloaded and checked (the submission's ``response_action: update``)."""
    return _modal(meta, [section(f":hourglass_flowing_sand: Checking your file {code(name, 80)}… every row goes "
                                 "through the same checks as a single order. This takes a few seconds.")])


def _money_lines(amounts: Mapping[str, Money | None]) -> str:
    return "\n".join(m.format() if m is not None else f"{cur} unknown" for cur, m in sorted(amounts.items()))


def summary_view(meta: BulkMeta, plan: BulkPlan) -> dict[str, Any]:
    """What confirming ``plan`` would do (rows, products, totals, balances, approval) and a Confirm button."""
    products = [f"• {esc(truncate(p.name, 80))} (#{p.product_id}): {p.rows:,} row(s)" for p in plan.products]
    blocks: list[Block] = [
        section(f"*Batch {plan.number}* from {code(plan.source_name, 80)} is valid. Nothing is charged until "
                "you confirm."),
        *fields_sections([
            field("Orders", f"{plan.rows:,}"),
            field("Estimated total", _money_lines(dict(plan.totals))),
            field("Balance now", _money_lines(plan.balances)),
            field("Balance after", _money_lines(plan.balances_after)),
        ]),
        *line_sections(["*Products*", *products], max_blocks=3),
    ]
    if plan.balance_cached:
        blocks.append(context(":hourglass: Gate was slow to answer: the balance is the last one gatebot read."))
    if plan.short:
        missing = ", ".join(m.format() for _, m in sorted(plan.short.items()))
        blocks.append(section(f":warning: The balance does not cover the whole batch (short by {missing}). The "
                              "batch pauses when Gate says so and goes on when a deposit posts."))
    if plan.approval:
        blocks.append(section(f":raised_hand: *Needs approval:* {esc(truncate(plan.approval, 500))}. Nothing is "
                              "sent until a second person approves it."))
    return _modal(BulkMeta(meta.channel, plan.batch_id), blocks, callback_id=ids.BULK_CONFIRM,
                  submit="Confirm", close="Cancel")


def placing_view(meta: BulkMeta, text: str) -> dict[str, Any]:
    """After Confirm: what happened (or is happening) to the batch, without buttons."""
    return _modal(meta, [section(text)])


# -- the progress message ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchCard:
    """What a progress message shows besides the counts: who, which file, where the rows failed (row number
    and Gate's reason only), whether results can still be downloaded, and why it waits for approval."""

    requester: str
    source_name: str
    origin_channel: str | None = None
    failures: tuple[tuple[int, str], ...] = ()
    results_available: bool = False
    approval_reason: str | None = None
    approval_channel: str | None = None


def progress_bar(fraction: float) -> str:
    """``▓▓▓▓▓░░░░░ 50%`` (display only)."""
    filled = max(0, min(_BAR, round(fraction * _BAR)))
    return f"`{'▓' * filled}{'░' * (_BAR - filled)}` {int(fraction * 100)}%"


def _eta(eta: timedelta | None) -> str | None:
    if eta is None:
        return None
    seconds = max(1, round(eta.total_seconds()))
    if seconds < 90:
        return f"about {seconds} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


def batch_message(progress: BatchProgress, card: BatchCard, *, controls: bool = True,
                  now: datetime | None = None) -> Message:
    """The batch's progress message (``controls``: the Pause/Resume/Cancel/results buttons)."""
    emoji, label = _STATUS.get(str(progress.status), (":grey_question:", str(progress.status)))
    cost = ", ".join(m.format() for _, m in sorted(progress.cost.items())) or "nothing yet"
    head = (f"{emoji} *Batch {progress.number}* · {esc(label)} · {progress.rows:,} orders from "
            f"{code(card.source_name, 80)}, by {user_mention(card.requester)}")
    counts = [field("Placed", f"{progress.placed:,}"), field("Completed", f"{progress.completed:,}"),
              field("Failed", f"{progress.failed:,}"), field("Waiting", f"{progress.waiting:,}"),
              field("Cost so far", esc(cost))]
    if progress.cancelled:
        counts.append(field("Not sent", f"{progress.cancelled:,}"))
    if progress.attention:
        counts.append(field("Need attention", f"{progress.attention:,}"))
    eta = _eta(progress.eta)
    if eta:
        counts.append(field("ETA", eta))
    blocks: list[Block] = [section(head), section(progress_bar(progress.fraction)), *fields_sections(counts)]
    if progress.status is BatchStatus.AWAITING_APPROVAL:
        why = f" ({esc(truncate(card.approval_reason, 300))})" if card.approval_reason else ""
        where = f" in {channel_mention(card.approval_channel)}" if card.approval_channel else ""
        blocks.append(section(f":raised_hand: Waiting for approval{where}{why}: nothing is sent until an approver "
                              f"approves batch {progress.number}."))
        blocks.append(context(f"Approvers can also use `{ids.COMMAND} approvals`, or from a terminal "
                              f"`gatebot bulk approve {progress.number} --as <id>`."))
    elif progress.status_reason:
        blocks.append(context(esc(truncate(progress.status_reason, 500))))
    if card.failures:
        lines = [f"• row {row:,}: {esc(truncate(reason, 200))}" for row, reason in card.failures]
        if progress.failed > len(card.failures):
            lines.append(f"_…and {progress.failed - len(card.failures):,} more in the results file._")
        blocks += line_sections(["*Failed rows*", *lines], max_blocks=2)
    buttons = _buttons(progress, card) if controls else []
    if buttons:
        blocks.append(actions(*buttons, block_id=f"bulk_controls_{progress.batch_id}"))
    where = f" · from {channel_mention(card.origin_channel)}" if card.origin_channel else ""
    if now is not None:
        blocks.append(context(f"Updated {slack_date(now)}{where} · look it up with `{ids.COMMAND} order "
                              f"{progress.number}`"))
    text = (f"Batch {progress.number}: {label}, {progress.done:,} of {progress.rows:,} orders done "
            f"({progress.completed:,} completed, {progress.failed:,} failed).")
    return message(text, blocks)


def _buttons(progress: BatchProgress, card: BatchCard) -> list[Block]:
    value = str(progress.batch_id)
    status = progress.status
    found: list[Block] = []
    if status in (BatchStatus.RUNNING, BatchStatus.WAITING_FUNDS):
        found.append(button("Pause", action_id=ids.BULK_PAUSE, value=value))
    if status in (BatchStatus.PAUSED, BatchStatus.WAITING_FUNDS):
        found.append(button("Resume", action_id=ids.BULK_RESUME, value=value, style="primary"))
    if status in (BatchStatus.AWAITING_APPROVAL, BatchStatus.RUNNING, BatchStatus.PAUSED, BatchStatus.WAITING_FUNDS):
        found.append(button("Cancel the rest", action_id=ids.BULK_CANCEL, value=value, style="danger"))
    if card.results_available:
        found.append(button("Download results again", action_id=ids.BULK_RESULTS, value=value))
    return found
