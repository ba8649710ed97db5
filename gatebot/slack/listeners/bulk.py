"""Bulk orders in Slack: the "Bulk order" modal, its summary and confirmation, the batch message's buttons.

Routing table::

    /gate bulk (commands) and            open_bulk_modal: views.open with a CSV file_input
      block_actions home_bulk_order
    view_submission bulk_modal           ack with "Checking your file…" (response_action update), then
                                         download the file (url_private_download, bot token, capped) and
                                         BulkService.plan → views.update: the problems (the first few inline,
                                         all of them as a CSV in the requester's DM) or the summary
    view_submission bulk_confirm         ack ("Saving…"), BulkService.confirm (idempotent), views.update
    block_actions bulk_pause/resume/     the requester or an admin (the core decides); a refusal is a polite
      bulk_cancel                        ephemeral; the button must be on that batch's own message
    block_actions bulk_results           the results CSV again, to the requester's DM only

The progress message itself is :mod:`gatebot.slack.batches` (it follows the batch's events). Who may bulk
order: the role of ``/gate buy`` (checked again at every submission: showing the form is not a permission).
Must not import the scheduler.
"""

from __future__ import annotations

import logging
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from gatebot.bulk import BatchRefused, BulkInvalid, Problem
from gatebot.bulk.csvfile import MAX_BYTES
from gatebot.finance.exports import to_csv
from gatebot.orders import GateDown
from gatebot.slack import grammar, ids
from gatebot.slack.approval_notices import approvers_channel
from gatebot.slack.batches import render_batch, send_results
from gatebot.slack.blocks.bulk import BulkMeta, bulk_modal, checking_view, placing_view, summary_view
from gatebot.slack.blocks.common import Message, channel_mention, code, message, section, truncate
from gatebot.slack.blocks.messages import denied_message, error_message
from gatebot.slack.deps import Deps
from gatebot.slack.listeners import SLACK_FAILURES, Reply, acked_first, error_code, private_reply, with_note
from gatebot.store.models import BatchStatus

__all__ = ["batch_lookup", "open_bulk_modal", "problems_csv", "register"]

log = logging.getLogger(__name__)

#: Seconds allowed for downloading the file from Slack.
DOWNLOAD_TIMEOUT: Final = 20.0
#: Hosts that may receive the bot token with a file download (besides the Web API's own origin).
_SLACK_FILE_HOSTS: Final = ("slack.com", "slack-gov.com")
_ACTIONS: Final = {ids.BULK_PAUSE: "pause", ids.BULK_RESUME: "resume", ids.BULK_CANCEL: "cancel"}


def register(app: AsyncApp, deps: Deps) -> None:
    app.action(ids.HOME_BULK_ORDER)(_home_button(deps))
    app.view(ids.BULK_MODAL)(_check(deps))
    app.view(ids.BULK_CONFIRM)(_confirm(deps))
    for action_id in _ACTIONS:
        app.action(action_id)(_control(deps))
    app.action(ids.BULK_RESULTS)(_results_again(deps))


def _may_bulk(roles: frozenset[str]) -> bool:
    return grammar.USAGE["bulk"].allowed_for(roles)


async def _refuse(deps: Deps, user: str) -> None:
    await deps.record_audit(actor=user, action="batch.create", target=None, allowed=False,
                            detail=f"needs the {grammar.USAGE['bulk'].role} role")


# -- opening ------------------------------------------------------------------------------------------------------


async def open_bulk_modal(deps: Deps, client: AsyncWebClient, *, trigger_id: str, channel: str | None,
                          reply: Reply) -> None:
    """Open the "Bulk order" modal (the caller checked the role); ``channel``: where the command was typed."""
    try:
        await client.views_open(trigger_id=trigger_id, view=bulk_modal(BulkMeta(channel=channel)))
    except SLACK_FAILURES as exc:
        log.info("could not open the bulk modal (%s)", error_code(exc))
        await reply(error_message(f"I couldn't open the bulk order form (Slack said {error_code(exc)}). "
                                  f"Try `{ids.COMMAND} bulk` again."))


def _home_button(deps: Deps) -> Any:
    @acked_first
    async def bulk_button(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user = str(body["user"]["id"])
        reply = private_reply(client, user=user)
        if not _may_bulk(await deps.roles.of(user)):
            await _refuse(deps, user)
            await reply(denied_message(what="bulk orders", role=grammar.USAGE["bulk"].role or grammar.ROLE_OPS))
            return
        await open_bulk_modal(deps, client, trigger_id=str(body["trigger_id"]), channel=None, reply=reply)

    return bulk_button


# -- checking the file --------------------------------------------------------------------------------------------


def _trusted(url: str, api_base: str) -> bool:
    """Whether the bot token may go to ``url``: Slack's own hosts over HTTPS, or the Web API's origin
    (``SLACK_API_URL``: GovSlack, or a local fake)."""
    target, base = urlsplit(url), urlsplit(api_base)
    if (target.scheme, target.netloc) == (base.scheme, base.netloc):
        return True
    host = target.hostname or ""
    return target.scheme == "https" and any(host == h or host.endswith("." + h) for h in _SLACK_FILE_HOSTS)


async def download(client: AsyncWebClient, file: dict[str, Any]) -> bytes | str:
    """The bytes of a ``file_input`` file (its ``url_private_download`` with the bot token, at most
    :data:`~gatebot.bulk.csvfile.MAX_BYTES`), or one sentence saying why not."""
    url = str(file.get("url_private_download") or file.get("url_private") or "")
    if not url or not client.token or not _trusted(url, client.base_url):
        return "Slack gave no address gatebot may download the file from."
    try:
        async with httpx.AsyncClient(timeout=DOWNLOAD_TIMEOUT, follow_redirects=True) as http, \
                http.stream("GET", url, headers={"Authorization": f"Bearer {client.token}"}) as answer:
            if answer.status_code != 200:
                return f"Slack did not hand over the file (HTTP {answer.status_code}); pick it again."
            if answer.headers.get("content-type", "").startswith("text/html"):  # Slack's sign-in page
                return ("Slack sent a sign-in page instead of the file: the app needs the files:read scope "
                        "(ask a Slack admin to reinstall it).")
            data = bytearray()
            async for chunk in answer.aiter_bytes():
                data += chunk
                if len(data) > MAX_BYTES:
                    return f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it into several."
    except httpx.HTTPError as exc:
        log.info("could not download a bulk file (%s)", type(exc).__name__)
        return "The file could not be downloaded from Slack; try again in a moment."
    return bytes(data)


def problems_csv(problems: list[Problem]) -> bytes:
    """Every problem of a file, one per line: ``row, column, problem`` (UTF-8 CSV)."""
    return to_csv(["row", "column", "problem"], [[p.row, p.column, p.message] for p in problems]).encode("utf-8")


async def _send_problems(client: AsyncWebClient, user: str, name: str, problems: list[Problem]) -> None:
    """The full list of problems as a CSV in ``user``'s DM (a failure is logged: the modal shows the first)."""
    stem = name[:-4] if name.lower().endswith(".csv") else name
    try:
        opened = await client.conversations_open(users=user)
        await client.files_upload_v2(channel=str(opened["channel"]["id"]), content=problems_csv(problems),
                                     filename=f"{stem}-problems.csv", title=f"Problems in {name}",
                                     initial_comment=f"{len(problems):,} problem(s) in {name}: nothing was ordered "
                                                     "and nothing was charged. Fix them and upload the file again.")
    except SLACK_FAILURES as exc:
        log.warning("could not DM the problems of a bulk file (%s)", error_code(exc))


def _picked_file(view: dict[str, Any]) -> dict[str, Any] | None:
    state = view.get("state", {}).get("values", {}).get(ids.BULK_FILE, {}).get(ids.BULK_FILE) or {}
    files = state.get("files") or []
    return files[0] if files and isinstance(files[0], dict) else None


async def _update(client: AsyncWebClient, view_id: str, view: dict[str, Any]) -> None:
    try:
        await client.views_update(view_id=view_id, view=view)
    except SLACK_FAILURES as exc:  # closed meanwhile: a planned batch nobody confirms is dropped after a day
        log.info("could not update the bulk modal (%s)", error_code(exc))


def _check(deps: Deps) -> Any:
    @acked_first
    async def check_file(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient) -> None:
        user = str(body["user"]["id"])
        try:
            meta = BulkMeta.decode(view.get("private_metadata", ""))
        except ValueError:
            await ack(response_action="errors", errors={
                ids.BULK_FILE: f"This form is out of date: close it and run {ids.COMMAND} bulk again."})
            return
        roles = await deps.roles.of(user)
        if not _may_bulk(roles):
            await _refuse(deps, user)
            await ack(response_action="errors", errors={
                ids.BULK_FILE: "Only people with the ops role can place bulk orders; ask a gatebot admin."})
            return
        file = _picked_file(view)
        name = truncate(str((file or {}).get("name") or "bulk.csv"), 200)
        size = (file or {}).get("size")
        if file is None:
            await ack(response_action="errors", errors={ids.BULK_FILE: "Pick a CSV file."})
            return
        if not name.lower().endswith(".csv") and file.get("filetype") != "csv":
            await ack(response_action="errors", errors={ids.BULK_FILE: "That is not a CSV file: save the "
                                                        "spreadsheet as CSV (UTF-8) and pick that."})
            return
        if isinstance(size, int) and size > MAX_BYTES:
            await ack(response_action="errors", errors={
                ids.BULK_FILE: f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it into several."})
            return
        await ack(response_action="update", view=checking_view(meta, name))
        view_id = str(view["id"])
        data = await download(client, file)
        if isinstance(data, str):
            await _update(client, view_id, bulk_modal(meta, note=data))
            return
        try:
            plan = await deps.bulk.plan(data, requester=user, source_name=name, requester_roles=roles,
                                        origin_channel=meta.channel, balance_wait=deps.balance_wait)
        except BulkInvalid as exc:
            await _send_problems(client, user, name, exc.problems)
            await _update(client, view_id, bulk_modal(meta, problems=exc.problems, file_name=name))
            return
        except GateDown as exc:
            await _update(client, view_id, bulk_modal(meta, note=str(exc)))
            return
        await _update(client, view_id, summary_view(meta, plan))

    return check_file


# -- confirming ---------------------------------------------------------------------------------------------------


def _where(meta: BulkMeta) -> str:
    return f"in {channel_mention(meta.channel)} (or in your DMs if I can't post there)" if meta.channel \
        else "in your direct messages"


def _confirm(deps: Deps) -> Any:
    @acked_first
    async def confirm(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient) -> None:
        user = str(body["user"]["id"])
        try:
            meta = BulkMeta.decode(view.get("private_metadata", ""))
        except ValueError:
            meta = BulkMeta()
        if meta.batch_id is None:
            await ack(response_action="update", view=placing_view(meta, ":warning: This form is out of date, so "
                                                                        f"nothing was ordered. Run {ids.COMMAND} "
                                                                        "bulk again."))
            return
        if not _may_bulk(await deps.roles.of(user)):
            await _refuse(deps, user)
            await ack(response_action="update", view=placing_view(meta, ":no_entry: Only people with the ops role "
                                                                        "can place bulk orders; nothing was ordered."))
            return
        number = f"B{meta.batch_id}"
        await ack(response_action="update", view=placing_view(meta, f":hourglass_flowing_sand: Saving batch {number}…"))
        try:
            batch = await deps.bulk.confirm(meta.batch_id, user)
        except BatchRefused as exc:
            text = f":warning: {exc}"
        except BulkInvalid as exc:
            await _send_problems(client, user, f"batch {number}", exc.problems)
            shown = "; ".join(str(p) for p in exc.problems[:3])
            text = (f":warning: The file is no longer valid ({truncate(shown, 1500)}), so nothing was ordered and "
                    f"nothing was charged. Every problem is in your DMs; fix them and run {ids.COMMAND} bulk again.")
        else:
            waiting = " It waits for approval: nothing is sent until an approver approves it." \
                if batch.state is BatchStatus.AWAITING_APPROVAL else ""
            text = (f":white_check_mark: Batch {batch.number} is confirmed: {batch.rows:,} orders.{waiting} Its "
                    f"progress is {_where(meta)}; the results come to you by direct message when it ends.")
        await _update(client, str(view["id"]), placing_view(meta, text))

    return confirm


# -- the batch message's buttons ----------------------------------------------------------------------------------


def _batch_id(action: dict[str, Any]) -> int | None:
    raw = str(action.get("value") or "")
    return int(raw) if raw.isdigit() and len(raw) <= 9 else None


def _control(deps: Deps) -> Any:
    @acked_first
    async def control(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient,
                      respond: AsyncRespond) -> None:
        await ack()
        user = str(body["user"]["id"])
        verb = _ACTIONS[str(action.get("action_id"))]
        channel = (body.get("channel") or {}).get("id")
        reply = private_reply(client, user=user, channel=channel, respond=respond)
        batch_id = _batch_id(action)
        batch = await deps.bulk.get(batch_id) if batch_id is not None else None
        clicked = (body.get("container") or {}).get("message_ts")
        if batch is None or batch.message_ts is None or clicked != batch.message_ts:  # a crafted or stale button
            await deps.record_audit(actor=user, action=f"batch.{verb}", target=f"B{batch_id}" if batch_id else None,
                                    allowed=False, detail="the button was not on that batch's message")
            await reply(error_message("That button does not belong to this batch's message, so nothing changed."))
            return
        try:
            await getattr(deps.bulk, verb)(batch.id, user, roles=await deps.roles.of(user))
        except BatchRefused as exc:
            await reply(error_message(str(exc)))

    return control


def _results_again(deps: Deps) -> Any:
    @acked_first
    async def results_again(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient,
                            respond: AsyncRespond) -> None:
        await ack()
        user = str(body["user"]["id"])
        channel = (body.get("channel") or {}).get("id")
        reply = private_reply(client, user=user, channel=channel, respond=respond)
        batch_id = _batch_id(action)
        problem = await send_results(deps.bulk, client, batch_id, user) if batch_id is not None \
            else "That button names no batch."
        await deps.record_audit(actor=user, action="batch.results", target=f"B{batch_id}", allowed=problem is None,
                                detail=problem)
        if problem is not None:
            await reply(error_message(problem))
            return
        text = f"Sent you the results of batch B{batch_id} by direct message."
        await reply(message(text, [section(f":page_facing_up: {text}")]))

    return results_again


# -- /gate order B12 ----------------------------------------------------------------------------------------------


async def batch_lookup(deps: Deps, *, viewer: str, ref: str, roles: frozenset[str]) -> Message | None:
    """What ``viewer`` gets for ``/gate order B12``: the batch's progress (its requester, or the role that
    looks orders up), a refusal, or ``None`` when ``ref`` names no batch (then it is looked up as an order)."""
    batch = await deps.bulk.find(ref)
    if batch is None or batch.state is BatchStatus.PLANNED:
        return None
    if batch.requester != viewer and not grammar.USAGE["order"].allowed_for(roles):
        await deps.record_audit(actor=viewer, action="batch.view", target=batch.number, allowed=False,
                                detail="not the requester and no support role")
        return denied_message(what="looking up other people's batches", role=grammar.ROLE_SUPPORT)
    found = await render_batch(deps.bulk, batch, controls=False, approval_channel=approvers_channel(deps.settings))
    return with_note(found, f"Its rows are orders: look one up with {code(f'{ids.COMMAND} order <external_ref>')}.")
