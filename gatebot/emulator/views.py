r"""Modals and App Home tabs: ``trigger_id``\ s, the view stack (at most 3), ``views.open/push/update/publish``
with ``hash_conflict`` and ``duplicate_external_id``, typed values that survive updates, and what the
Slack client does to views (input, errors, closing).

Must not import slack_bolt, slack_sdk, the scheduler or any HTTP library.
"""

from __future__ import annotations

import copy
import hashlib
from datetime import timedelta
from typing import Any, Literal

from gatebot.emulator.blockkit import assign_ids, carry_state, initial_state, view_problems
from gatebot.emulator.directory import Directory
from gatebot.emulator.model import JSON, ApiError, Change, Trigger, View

#: How long a ``trigger_id`` can be exchanged for a modal (emulator clock).
TRIGGER_TTL = timedelta(seconds=3)
MAX_VIEW_STACK = 3


class Views(Directory):
    """Modal stacks per user and Home tabs per user."""

    def issue_trigger(self, user: str) -> str:
        """A fresh ``trigger_id`` for an interaction by ``user`` (valid for :data:`TRIGGER_TTL`)."""
        with self._lock:
            self._counters["trigger"] += 1
            n = self._counters["trigger"]
            digest = hashlib.sha256(f"{self.team_id}:{n}".encode()).hexdigest()[:20]
            trigger_id = f"{1_000_000 + n}.{self.team_id}.{digest}"
            self._triggers[trigger_id] = Trigger(trigger_id, user, self.clock.now())
            return trigger_id

    def _check_trigger(self, trigger_id: str) -> Trigger:
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            raise ApiError("invalid_trigger_id")
        if trigger.used:
            raise ApiError("exchanged_trigger_id")
        if self.clock.now() - trigger.issued_at > TRIGGER_TTL:
            raise ApiError("expired_trigger_id")
        return trigger

    def _build_view(
        self, user: str, spec: JSON, *, view_id: str | None = None, old: View | None = None
    ) -> View:
        vid = view_id or self._next_id("V")
        view_hash = self._new_hash()
        blocks = assign_ids(list(spec.get("blocks") or []), f"{vid}:{view_hash}")
        state = carry_state(old.state, blocks) if old is not None else initial_state(blocks)
        return View(
            id=vid,
            user=user,
            type=str(spec.get("type", "modal")),
            hash=view_hash,
            blocks=blocks,
            callback_id=str(spec.get("callback_id", "")),
            private_metadata=str(spec.get("private_metadata", "")),
            external_id=str(spec.get("external_id", "")),
            title=copy.deepcopy(spec.get("title")),
            submit=copy.deepcopy(spec.get("submit")),
            close=copy.deepcopy(spec.get("close")),
            notify_on_close=bool(spec.get("notify_on_close", False)),
            clear_on_close=bool(spec.get("clear_on_close", False)),
            state=state,
        )

    def _validate_view(
        self, spec: Any, kind: Literal["modal", "home"], *, replacing: View | None = None
    ) -> JSON:
        problems = view_problems(spec, kind=kind)
        if problems:
            raise ApiError("invalid_arguments", *problems)
        assert isinstance(spec, dict)
        external_id = spec.get("external_id")
        if external_id:
            for other in self._views.values():
                if other.external_id == external_id and not other.closed and other is not replacing:
                    raise ApiError("duplicate_external_id")
        return spec

    def open_view(self, trigger_id: str, spec: JSON) -> View:
        """``views.open``: a new modal stack for the trigger's user (replacing any open one)."""
        with self._mutating() as changes:
            trigger = self._check_trigger(trigger_id)
            self._validate_view(spec, "modal")
            for old in self._stacks[trigger.user]:
                old.closed = True
                changes.append(Change("view.closed", user=trigger.user, view=old))
            view = self._build_view(trigger.user, spec)
            view.root_view_id = view.id
            trigger.used = True
            self._views[view.id] = view
            self._stacks[trigger.user] = [view]
            changes.append(Change("view.opened", user=trigger.user, view=view))
            return view

    def push_view(self, trigger_id: str, spec: JSON) -> View:
        """``views.push``: a new view on top of the trigger's user's open modal (at most 3)."""
        with self._mutating() as changes:
            trigger = self._check_trigger(trigger_id)
            view = self._push(trigger.user, spec, changes)
            trigger.used = True
            return view

    def _push(self, user: str, spec: JSON, changes: list[Change]) -> View:
        stack = self._stacks[user]
        if not stack:
            raise ApiError("not_found", "no modal is open to push onto")
        if len(stack) >= MAX_VIEW_STACK:
            raise ApiError("push_limit_reached")
        self._validate_view(spec, "modal")
        view = self._build_view(user, spec)
        view.root_view_id = stack[0].id
        view.previous_view_id = stack[-1].id
        self._views[view.id] = view
        stack.append(view)
        changes.append(Change("view.pushed", user=user, view=view))
        return view

    def update_view(
        self,
        spec: JSON,
        *,
        view_id: str | None = None,
        external_id: str | None = None,
        hash: str | None = None,
    ) -> View:
        """``views.update``: replace an open modal (or a Home tab) in place; a stale ``hash`` is a
        ``hash_conflict``. Typed values survive where block_id, action_id and element type match."""
        with self._mutating() as changes:
            view = self._find_open_view(view_id, external_id)
            if hash is not None and hash != view.hash:
                raise ApiError("hash_conflict")
            self._validate_view(spec, "home" if view.type == "home" else "modal", replacing=view)
            self._replace(view, spec)
            changes.append(Change("view.updated", user=view.user, view=view))
            return view

    def _find_open_view(self, view_id: str | None, external_id: str | None) -> View:
        if not view_id and not external_id:
            raise ApiError("invalid_arguments", "view_id or external_id is required")
        for view in self._views.values():
            if not view.closed and (
                (view_id and view.id == view_id) or (external_id and view.external_id == external_id)
            ):
                return view
        raise ApiError("not_found")

    def _replace(self, view: View, spec: JSON) -> None:
        new = self._build_view(view.user, spec, view_id=view.id, old=view)
        for name in (
            "type",
            "hash",
            "blocks",
            "callback_id",
            "private_metadata",
            "external_id",
            "title",
            "submit",
            "close",
            "notify_on_close",
            "clear_on_close",
            "state",
        ):
            setattr(view, name, getattr(new, name))
        view.errors = {}
        view.updates += 1

    def publish_home(self, user: str, spec: JSON, *, hash: str | None = None) -> View:
        """``views.publish``: set ``user``'s App Home tab (the view keeps its id across publishes)."""
        with self._mutating() as changes:
            self.user(user)
            current = self._homes.get(user)
            if current is not None and hash is not None and hash != current.hash:
                raise ApiError("hash_conflict")
            self._validate_view(spec, "home", replacing=current)
            if current is None:
                current = self._build_view(user, spec)
                self._views[current.id] = current
                self._homes[user] = current
            else:
                self._replace(current, spec)
            changes.append(Change("home.published", user=user, view=current))
            return current

    # ----------------------------------------------------- what the Slack client does to views

    def set_view_state(self, view_id: str, block_id: str, action_id: str, value: JSON) -> View:
        """Record what the user typed/selected (``value`` is the element's ``state.values`` entry)."""
        with self._mutating() as changes:
            view = self.view(view_id)
            view.state.setdefault(block_id, {})[action_id] = copy.deepcopy(value)
            changes.append(Change("view.input", user=view.user, view=view))
            return view

    def set_view_errors(self, view_id: str, errors: dict[str, str]) -> View:
        with self._mutating() as changes:
            view = self.view(view_id)
            view.errors = dict(errors)
            changes.append(Change("view.updated", user=view.user, view=view))
            return view

    def replace_top_view(self, user: str, spec: JSON) -> View:
        """``response_action: update``: replace the top view (validated like ``views.update``)."""
        with self._mutating() as changes:
            view = self.top_view(user)
            if view is None:
                raise ApiError("not_found")
            self._validate_view(spec, "modal", replacing=view)
            self._replace(view, spec)
            changes.append(Change("view.updated", user=user, view=view))
            return view

    def push_view_for(self, user: str, spec: JSON) -> View:
        """``response_action: push``."""
        with self._mutating() as changes:
            return self._push(user, spec, changes)

    def close_top_view(self, user: str) -> View | None:
        """The user closes (or submits) the top view; the one below becomes visible."""
        with self._mutating() as changes:
            stack = self._stacks[user]
            if not stack:
                return None
            view = stack.pop()
            view.closed = True
            changes.append(Change("view.closed", user=user, view=view))
            return view

    def clear_views(self, user: str) -> list[View]:
        """``response_action: clear`` / ``clear_on_close``: close the whole stack."""
        with self._mutating() as changes:
            closed = list(reversed(self._stacks[user]))
            self._stacks[user] = []
            for view in closed:
                view.closed = True
                changes.append(Change("view.closed", user=user, view=view))
            return closed

    # ------------------------------------------------------------------------------ queries

    def view_stack(self, user: str) -> list[View]:
        with self._lock:
            return list(self._stacks[user])

    def top_view(self, user: str) -> View | None:
        """The modal the user sees (top of the stack), or ``None``."""
        with self._lock:
            stack = self._stacks[user]
            return stack[-1] if stack else None

    def home_view(self, user: str) -> View | None:
        with self._lock:
            return self._homes.get(user)

    def view(self, view_id: str) -> View:
        with self._lock:
            try:
                return self._views[view_id]
            except KeyError:
                raise ApiError("not_found") from None

    # -------------------------------------------------------------------------- serialising

    def view_dict(self, view: View) -> JSON:
        """A view as ``views.*`` responses and interaction payloads show it."""
        with self._lock:
            data: JSON = {
                "id": view.id,
                "team_id": self.team_id,
                "type": view.type,
                "blocks": copy.deepcopy(view.blocks),
                "private_metadata": view.private_metadata,
                "callback_id": view.callback_id,
                "state": {"values": copy.deepcopy(view.state)},
                "hash": view.hash,
                "clear_on_close": view.clear_on_close,
                "notify_on_close": view.notify_on_close,
                "root_view_id": view.root_view_id,
                "previous_view_id": view.previous_view_id,
                "app_id": self.app_id,
                "external_id": view.external_id,
                "app_installed_team_id": self.team_id,
                "bot_id": self.bot_id,
            }
            if view.type == "modal":
                data["title"] = copy.deepcopy(view.title)
                data["close"] = copy.deepcopy(view.close)
                data["submit"] = copy.deepcopy(view.submit)
            return data
