"""What the Slack client does with a modal: typing into inputs, refusing to submit an empty required
field or a bad number, submitting (``view_submission``) and applying the ``response_action``, closing
(``view_closed``).

Must not import slack_bolt or slack_sdk.
"""

from __future__ import annotations

from typing import Any

from gatebot.emulator.actions import BlockActions
from gatebot.emulator.blockkit import (
    find_action,
    iter_elements,
    number_problem,
)
from gatebot.emulator.deliveries import Delivery, SubmitResult
from gatebot.emulator.model import JSON, ApiError, View

#: What the Slack client shows when a view submission gets no usable answer.
CONNECTION_TROUBLE = "We had some trouble connecting. Try again?"
REQUIRED_FIELD = "Please complete this required field."


def _has_value(state: JSON | None) -> bool:
    if not state:
        return False
    return any(v not in (None, "", []) for k, v in state.items() if k != "type")


class Modals(BlockActions):
    """A user's side of a modal."""

    def set_input(self, view: View | str, block_id: str, action_id: str, value: Any) -> View:
        """The user types/picks ``value`` in an input of an open view (no request is sent).

        Text and number inputs take a string (or a number/Decimal, sent as its string); selects,
        radio buttons and overflow menus an option value or option object; multi-selects and
        checkboxes a list; user/channel/conversation pickers ids; date pickers ``YYYY-MM-DD``.
        """
        ws = self.workspace
        current = ws.view(view if isinstance(view, str) else view.id)
        if current.closed:
            raise LookupError(f"emulator: view {current.id} is closed")
        found = find_action(current.blocks, action_id, block_id=block_id)
        if found is None:
            raise LookupError(f"emulator: view {current.id} has no element {block_id!r}/{action_id!r}")
        return ws.set_view_state(current.id, block_id, action_id, self._state_value(found.element, value))

    def _client_errors(self, view: View) -> dict[str, str]:
        """What the Slack client checks before it submits a view."""
        errors: dict[str, str] = {}
        for block, element in iter_elements(view.blocks):
            if block.get("type") != "input":
                continue
            block_id = str(block.get("block_id"))
            state = view.state.get(block_id, {}).get(str(element.get("action_id")))
            if not block.get("optional", False) and not _has_value(state):
                errors[block_id] = REQUIRED_FIELD
                continue
            value = state.get("value") if state else None
            etype = element.get("type")
            if etype == "number_input":
                problem = number_problem(element, value)
                if problem:
                    errors[block_id] = problem
            elif etype == "plain_text_input" and isinstance(value, str) and value:
                low, high = element.get("min_length"), element.get("max_length")
                if low is not None and len(value) < int(low):
                    errors[block_id] = f"Must be at least {low} characters."
                elif high is not None and len(value) > int(high):
                    errors[block_id] = f"Must be {high} characters or fewer."
        return errors

    def _top(self, user: str, view: View | str) -> View:
        view_id = view if isinstance(view, str) else view.id
        top = self.workspace.top_view(user)
        if top is None or top.id != view_id:
            raise LookupError(f"emulator: view {view_id} is not the top view of {user}")
        return top

    async def submit_view(self, user: str, view: View | str, *, force: bool = False) -> SubmitResult:
        """``user`` presses the modal's submit button: a ``view_submission``, then the answer's
        ``response_action`` (``errors``/``update``/``push``/``clear``; an empty answer closes the view)
        is applied to the user's stack. ``force=True`` skips the Slack client's own checks."""
        ws = self.workspace
        current = self._top(user, view)
        if not force:
            client_errors = self._client_errors(current)
            if client_errors:
                ws.set_view_errors(current.id, client_errors)
                return SubmitResult(delivery=None, client_errors=client_errors, view=current)
        trigger_id = ws.issue_trigger(user)
        submitted_hash = current.hash
        payload = self._base("view_submission", user)
        payload |= {"trigger_id": trigger_id, "view": ws.view_dict(current), "response_urls": []}
        delivery = await self._send_payload(payload, trigger_id=trigger_id)
        result = SubmitResult(delivery=delivery)
        if not delivery.ok:
            result.client_error = CONNECTION_TROUBLE
            result.view = ws.top_view(user)
            return result
        body = delivery.json()
        if delivery.text.strip() and not isinstance(body, dict):
            result.client_error = CONNECTION_TROUBLE
        elif not body or not body.get("response_action"):
            ws.close_top_view(user)
        elif body["response_action"] == "update" and current.hash != submitted_hash:
            # Slack applies the answer as it arrives, before anything the app does after acking; here the
            # answer reaches the driver late, after the app's own views.update: that later update stands.
            result.response_action = "update"
        else:
            self._apply_response_action(user, current, body, result)
        result.view = ws.top_view(user)
        return result

    def _apply_response_action(self, user: str, current: View, body: JSON, result: SubmitResult) -> None:
        ws = self.workspace
        action = str(body["response_action"])
        result.response_action = action
        try:
            if action == "errors":
                errors = body.get("errors")
                if not isinstance(errors, dict) or not errors:
                    raise ApiError("invalid_errors")
                inputs = {str(b.get("block_id")) for b in current.blocks if b.get("type") == "input"}
                unknown = sorted(set(errors) - inputs)
                if unknown:
                    raise ApiError("invalid_errors", f"not input blocks: {unknown}")
                result.errors = {str(k): str(v) for k, v in errors.items()}
                ws.set_view_errors(current.id, result.errors)
            elif action == "update":
                ws.replace_top_view(user, body.get("view") or {})
            elif action == "push":
                ws.push_view_for(user, body.get("view") or {})
            elif action == "clear":
                ws.clear_views(user)
            else:
                raise ApiError("invalid_response_action", action)
        except ApiError as exc:
            result.client_error = f"{CONNECTION_TROUBLE} ({exc})"

    async def close_view(self, user: str, view: View | str) -> Delivery | None:
        """``user`` closes the top modal (the whole stack if ``clear_on_close``). A ``view_closed``
        is sent only if the view asked for it (``notify_on_close``); returns its delivery or ``None``."""
        ws = self.workspace
        current = self._top(user, view)
        snapshot = ws.view_dict(current)
        cleared = current.clear_on_close
        if cleared:
            ws.clear_views(user)
        else:
            ws.close_top_view(user)
        if not current.notify_on_close:
            return None
        payload = self._base("view_closed", user)
        payload |= {"view": snapshot, "is_cleared": cleared}
        return await self._send_payload(payload)
