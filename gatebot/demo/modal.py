"""The open form (a modal): showing it, the product picker's type-ahead, filling fields, submit and close.

What lives here
    :class:`ModalCommands`, the part of :class:`~gatebot.demo.session.DemoSession` for ``:form``,
    ``:select``, ``:pick``, ``:set``, ``:submit`` and ``:cancel``. Filling a field works like the Slack
    client: a dispatching input sends ``block_actions``, any other input is only recorded until submit.
    Rendering the form and parsing typed values lives in :mod:`gatebot.demo.form`.

Must not import the scheduler library.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gatebot.demo.commands import CommandError, SessionParts
from gatebot.demo.form import SELECT_TYPES, FormInput, input_value, options_lines, picker, split_field_value
from gatebot.emulator import View

__all__ = ["ModalCommands"]


class ModalCommands(SessionParts):
    """``:form``, ``:select``, ``:pick``, ``:set``, ``:submit`` and ``:cancel`` on the user's top view."""

    # -- the open form ----------------------------------------------------------------------------------------
    def _top(self) -> View:
        view = self.rt.workspace.top_view(self.person.id)
        if view is None:
            raise CommandError("no form is open (/gate buy opens one)")
        return view

    async def _form(self, args: str) -> None:
        self._show_form(self._top())

    async def _select(self, args: str) -> None:
        view = self._top()
        field = picker(view, self.directory)
        query = args
        if field.type == "external_select" or field.type == "multi_external_select":
            try:
                result = await self.rt.driver.select_options(
                    self.person.id, view, field.action_id, query, block_id=field.block_id)
            except ValueError as exc:
                said = re.sub(r"^'[^']*' ", "", str(exc).removeprefix("emulator: "))
                raise CommandError(f"“{field.label}” {said}") from None
            self._check_delivery(result, "the options load")
            options = list(result.options)
        else:
            wanted = query.lower()
            options = [o for o in (field.element.get("options") or [])
                       if wanted in self.renderer.text(o.get("text")).lower()]
        self._options = (view.id, field, options)
        self.emit(options_lines(options, self.directory, query=query))

    async def _pick(self, args: str) -> None:
        if self._options is None:
            raise CommandError("nothing to pick from: :select TEXT first")
        view_id, field, options = self._options
        view = self._top()
        if view.id != view_id:
            raise CommandError("the form changed since :select — :select again")
        if not args.strip().isdigit() or not 1 <= int(args) <= len(options):
            raise CommandError(f"usage: :pick N with N from 1 to {len(options)}")
        await self._fill(view, field, options[int(args) - 1])

    async def _set(self, args: str) -> None:
        view = self._top()
        field, raw = split_field_value(view, args, self.directory)
        if field.type == "external_select":
            await self._select(raw)
            assert self._options is not None
            options = self._options[2]
            exact = [o for o in options if self.renderer.text(o.get("text")).lower() == raw.strip().lower()]
            chosen = exact or options
            if len(chosen) == 1:
                await self._fill(view, field, chosen[0])
            return
        if field.type == "file_input":  # the person picks a file from this machine; the client uploads it
            try:
                await self._fill(view, field, [self._upload(raw)])
            except ValueError as exc:  # the Slack client's own refusal (a type the input does not take...)
                said = re.sub(r"^'[^']*' ", "", str(exc).removeprefix("emulator: "))
                raise CommandError(f"“{field.label}” {said}") from None
            return
        await self._fill(view, field, input_value(field, raw, self.directory))

    def _upload(self, raw: str) -> Any:
        path = Path(raw.strip().strip("'\"")).expanduser()
        if not raw.strip():
            raise CommandError("give the path of a file on this machine, e.g. :set csv file ~/june.csv")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
        return self.rt.workspace.upload_file(self.person.id, path.name, data)

    async def _fill(self, view: View, field: FormInput, value: Any) -> None:
        """Type or pick ``value`` like the Slack client: a dispatching input sends ``block_actions``."""
        if field.dispatch or field.element.get("dispatch_action_config"):
            kwargs: dict[str, Any] = {"block_id": field.block_id}
            if field.type in SELECT_TYPES:
                kwargs["selected_option"] = value
            elif isinstance(value, list):
                kwargs["selected_options"] = value
            else:
                kwargs["value"] = value
            delivery = await self.rt.driver.click(self.person.id, view, field.action_id, **kwargs)
            self._check_delivery(delivery, f"the change of “{field.label}”")
        else:
            self.rt.driver.set_input(view, field.block_id, field.action_id, value)

    async def _submit(self, args: str) -> None:
        view = self._top()
        result = await self.rt.driver.submit_view(self.person.id, view)
        if result.client_errors:
            self._say("Slack does not send the form: fix the marked fields", "error")
        elif result.client_error:
            raise CommandError(f"Slack shows: {result.client_error}")
        elif result.errors:
            count = len(result.errors)
            self._say(f"the app found {count} problem{'s' if count != 1 else ''} in the form", "error")

    async def _cancel(self, args: str) -> None:
        view = self._top()
        await self.rt.driver.close_view(self.person.id, view)
