"""What the Slack client sends when a user works a message's or view's interactive elements: clicks
(``block_actions`` with the element's value and the blocks' state, a fresh ``trigger_id`` and, on a
message, a ``response_url``) and external-select searches (``block_suggestion``).

Must not import slack_bolt or slack_sdk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gatebot.emulator.blockkit import (
    LIST_STATE_KEYS,
    STATE_KEYS,
    find_actions,
    initial_state,
)
from gatebot.emulator.deliveries import Delivery, OptionsResult, delivery_fields
from gatebot.emulator.files import UploadedFile
from gatebot.emulator.model import JSON, Ephemeral, FoundAction, Message, View
from gatebot.emulator.transport import DriverTransport


class BlockActions(DriverTransport):
    """Clicking, choosing and searching in Block Kit elements."""

    @staticmethod
    def _pick(
        blocks: Sequence[JSON] | None, action_id: str, *, block_id: str | None, value: Any
    ) -> FoundAction:
        candidates = find_actions(blocks, action_id, block_id=block_id)
        if not candidates:
            raise LookupError(
                f"emulator: no element with action_id {action_id!r}"
                + (f" in block {block_id!r}" if block_id else "")
            )
        if len(candidates) > 1 and value is not None:
            narrowed = [c for c in candidates if c.element.get("value") == value]
            candidates = narrowed or candidates
        if len(candidates) > 1:
            raise LookupError(
                f"emulator: {len(candidates)} elements have action_id {action_id!r}; pass block_id= or value="
            )
        return candidates[0]

    @staticmethod
    def _option(element: JSON, choice: str | JSON | None) -> JSON:
        if isinstance(choice, dict):
            return choice
        if choice is None:
            raise ValueError(
                f"emulator: {element.get('type')} {element.get('action_id')!r} needs a selected option"
            )
        options = list(element.get("options") or [])
        for group in element.get("option_groups") or []:
            options += group.get("options") or []
        for option in options:
            if option.get("value") == choice:
                return dict(option)
        if element.get("type", "").endswith("external_select"):
            return {"text": {"type": "plain_text", "text": choice, "emoji": True}, "value": choice}
        raise LookupError(f"emulator: {element.get('action_id')!r} has no option with value {choice!r}")

    def _state_value(
        self,
        element: JSON,
        value: Any,
        *,
        selected_option: str | JSON | None = None,
        selected_options: Sequence[str | JSON] | None = None,
    ) -> JSON:
        """The ``state.values`` entry for ``element`` after the user typed/picked ``value``."""
        etype = str(element.get("type"))
        if etype not in STATE_KEYS:
            raise ValueError(f"emulator: {etype} {element.get('action_id')!r} holds no value")
        key = STATE_KEYS[etype][0]
        if etype == "file_input":
            return {"type": etype, key: self._picked_files(element, value)}
        if key == "selected_option":
            return {
                "type": etype,
                key: self._option(element, selected_option if selected_option is not None else value),
            }
        if key in LIST_STATE_KEYS:
            chosen = selected_options if selected_options is not None else value
            if chosen is None:
                chosen = []
            if isinstance(chosen, str | dict):
                chosen = [chosen]
            if key == "selected_options":
                return {"type": etype, key: [self._option(element, c) for c in chosen]}
            return {"type": etype, key: [str(c) for c in chosen]}
        if key == "rich_text_value":
            return {"type": etype, key: value}
        return {"type": etype, key: None if value is None else str(value)}

    def _picked_files(self, element: JSON, value: Any) -> list[JSON]:
        """What the Slack client lets a person pick in a ``file_input``: at most ``max_files`` (default 10)
        uploaded files of the allowed ``filetypes`` (by extension; any when none are listed)."""
        picked = [value] if isinstance(value, UploadedFile) else list(value or [])
        limit = int(element.get("max_files") or 10)
        if len(picked) > limit:
            raise ValueError(f"emulator: {element.get('action_id')!r} takes at most {limit} file(s)")
        allowed = {str(t).lower() for t in element.get("filetypes") or []}
        for item in picked:
            if not isinstance(item, UploadedFile):
                raise ValueError("emulator: a file_input takes files from Workspace.upload_file")
            if allowed and item.filetype not in allowed:
                raise ValueError(f"emulator: {element.get('action_id')!r} does not take .{item.filetype} files")
        ws = self.workspace
        return [f.to_dict(self.emulator_base_url, ws.team_id) for f in picked]

    async def click(
        self,
        user: str,
        target: Message | Ephemeral | View,
        action_id: str,
        *,
        value: Any = None,
        selected_option: str | JSON | None = None,
        selected_options: Sequence[str | JSON] | None = None,
        block_id: str | None = None,
    ) -> Delivery:
        """``user`` uses the element ``action_id`` in a message, an ephemeral message or a view
        (modal or Home tab): a ``block_actions`` payload.

        ``value`` picks among buttons sharing an action_id (by their ``value``), or is what was typed
        into a ``dispatch_action`` input / the user, channel or date picked. ``selected_option`` is an
        option's value (looked up in the element) or a whole option object (external selects).
        """
        ws = self.workspace
        trigger_id = ws.issue_trigger(user)
        payload = self._base("block_actions", user)
        payload["trigger_id"] = trigger_id
        response_url: str | None = None
        if isinstance(target, View):
            view = ws.view(target.id)
            if view.closed:
                raise LookupError(f"emulator: view {view.id} is closed")
            found = self._pick(view.blocks, action_id, block_id=block_id, value=value)
            action = self._action(found, value, selected_option, selected_options)
            if found.element.get("type") in STATE_KEYS:
                state = self._state_value(
                    found.element, value, selected_option=selected_option, selected_options=selected_options
                )
                ws.set_view_state(view.id, found.block_id, action_id, state)
            payload["container"] = {"type": "view", "view_id": view.id}
            payload["view"] = ws.view_dict(view)
        else:
            if target.deleted:
                raise LookupError("emulator: that message was deleted")
            ch = ws.channel(target.channel)
            found = self._pick(target.blocks, action_id, block_id=block_id, value=value)
            action = self._action(found, value, selected_option, selected_options)
            is_ephemeral = isinstance(target, Ephemeral)
            container: JSON = {
                "type": "message",
                "message_ts": target.ts,
                "channel_id": ch.id,
                "is_ephemeral": is_ephemeral,
            }
            if target.thread_ts is not None and target.thread_ts != target.ts:
                container["thread_ts"] = target.thread_ts
            response_url = ws.issue_response_url(
                self.emulator_base_url, user=user, channel=ch.id, original=target
            )
            payload["container"] = container
            payload["channel"] = ws.channel_ref(ch)
            if isinstance(target, Message):
                payload["message"] = ws.message_dict(target)
            payload["state"] = {"values": self._message_state(target.blocks, found, action)}
            payload["response_url"] = response_url
        payload["actions"] = [action]
        return await self._send_payload(payload, trigger_id=trigger_id, response_url=response_url)

    def _message_state(self, blocks: list[JSON] | None, found: FoundAction, action: JSON) -> JSON:
        state = initial_state(list(blocks or []))
        etype = found.element.get("type")
        if isinstance(etype, str) and etype in STATE_KEYS:
            key = STATE_KEYS[etype][0]
            state.setdefault(found.block_id, {})[str(found.element.get("action_id"))] = {
                "type": etype,
                key: action.get(key),
            }
        return state

    def _action(
        self,
        found: FoundAction,
        value: Any,
        selected_option: str | JSON | None,
        selected_options: Sequence[str | JSON] | None,
    ) -> JSON:
        element = found.element
        etype = str(element.get("type"))
        action: JSON = {
            "type": etype,
            "block_id": found.block_id,
            "action_id": element.get("action_id"),
            "action_ts": self.workspace.now_ts(),
        }
        if etype == "button":
            action["text"] = element.get("text")
            if "value" in element:
                action["value"] = element["value"]
            if "style" in element:
                action["style"] = element["style"]
        elif etype == "overflow":
            action["selected_option"] = self._option(
                element, selected_option if selected_option is not None else value
            )
        elif etype in STATE_KEYS:
            state = self._state_value(
                element, value, selected_option=selected_option, selected_options=selected_options
            )
            action.update({k: v for k, v in state.items() if k != "type"})
            if "placeholder" in element:
                action["placeholder"] = element["placeholder"]
        return action

    async def select_options(
        self, user: str, target: View | Message, action_id: str, query: str, *, block_id: str | None = None
    ) -> OptionsResult:
        """``user`` types ``query`` into the external select ``action_id``: a ``block_suggestion``.

        Like Slack, refuses to ask when ``query`` is shorter than the element's ``min_query_length``.
        """
        ws = self.workspace
        payload = self._base("block_suggestion", user)
        if isinstance(target, View):
            view = ws.view(target.id)
            found = self._pick(view.blocks, action_id, block_id=block_id, value=None)
            payload["container"] = {"type": "view", "view_id": view.id}
            payload["view"] = ws.view_dict(view)
        else:
            found = self._pick(target.blocks, action_id, block_id=block_id, value=None)
            ch = ws.channel(target.channel)
            payload["container"] = {
                "type": "message",
                "message_ts": target.ts,
                "channel_id": ch.id,
                "is_ephemeral": False,
            }
            payload["channel"] = ws.channel_ref(ch)
            payload["message"] = ws.message_dict(target)
        minimum = int(found.element.get("min_query_length", 3))
        if len(query) < minimum:
            raise ValueError(
                f"emulator: Slack asks for options only after {minimum} characters (got {query!r})"
            )
        payload |= {"action_id": action_id, "block_id": found.block_id, "value": query}
        delivery = await self._send_payload(payload)
        result = OptionsResult(**delivery_fields(delivery))
        body = delivery.json() if delivery.ok else None
        if isinstance(body, dict):
            result.options = list(body.get("options") or [])
            result.option_groups = list(body.get("option_groups") or [])
            for group in result.option_groups:
                result.options += list(group.get("options") or [])
        return result
