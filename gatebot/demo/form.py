"""A modal as a terminal form: rendering, finding inputs by label, and turning typed text into input values.

What lives here
    * :func:`render_form` — the user's top modal as a form: title, every input with its label (``*`` when
      required), current value, hint and the inline error the app returned (``response_action: errors``)
      or the Slack client raised (empty required field, number out of range); the other blocks rendered
      like a message (buttons numbered); the submit/close labels.
    * :func:`form_inputs`, :func:`find_input` and :func:`split_field_value` — ``:set FIELD VALUE`` finds
      its input by label, block id or action id (case-insensitive; a unique prefix is enough; quotes
      allowed: ``:set "Steam login" player_one``).
    * :func:`input_value` — what the Slack client would record for typed text: the text for text and
      number inputs, the option for a select (by label, value or number), the options for checkboxes.
    * :func:`picker` and :func:`options_lines` — the product picker's type-ahead (``:select TEXT``) lists
      the options the app answered to the real options-load request, numbered for ``:pick N``.

Pure: no I/O. Must not import the Slack libraries, the app, the store or the scheduler.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gatebot.demo.render import INDENT, BlockRenderer, Directory, Line, option_text, plain_text
from gatebot.emulator.workspace import View

__all__ = [
    "SELECT_TYPES",
    "FormError",
    "FormInput",
    "current_value",
    "find_input",
    "form_inputs",
    "input_value",
    "options_lines",
    "picker",
    "render_form",
    "split_field_value",
]

JSON = dict[str, Any]

#: Single-choice menus (a value is one option).
SELECT_TYPES = frozenset({"static_select", "external_select", "radio_buttons"})
_MULTI_TYPES = frozenset({"checkboxes", "multi_static_select", "multi_external_select"})
_TEXT_TYPES = frozenset({"plain_text_input", "number_input", "email_text_input", "url_text_input",
                         "datepicker", "timepicker", "users_select", "channels_select",
                         "conversations_select"})
_YES = frozenset({"on", "yes", "y", "true", "x", "✓", "1", "checked"})
_NO = frozenset({"off", "no", "n", "false", "none", "0", "-", "unchecked"})
_STATE_KEY = {
    "plain_text_input": "value", "number_input": "value", "email_text_input": "value", "url_text_input": "value",
    "static_select": "selected_option", "external_select": "selected_option", "radio_buttons": "selected_option",
    "checkboxes": "selected_options", "multi_static_select": "selected_options",
    "multi_external_select": "selected_options", "datepicker": "selected_date", "timepicker": "selected_time",
    "users_select": "selected_user", "channels_select": "selected_channel",
    "conversations_select": "selected_conversation", "file_input": "files",
}  # fmt: skip


class FormError(Exception):
    """A form command that cannot be carried out; the message says why and what would work."""


@dataclass(frozen=True, slots=True)
class FormInput:
    """One input block of a view."""

    block_id: str
    action_id: str
    label: str
    element: JSON
    optional: bool
    dispatch: bool
    hint: str

    @property
    def type(self) -> str:
        return str(self.element.get("type", ""))

    @property
    def keys(self) -> tuple[str, ...]:
        """Names ``:set`` accepts for this input (normalised)."""
        names = {self.label, re.sub(r"\(.*?\)", "", self.label), self.block_id, self.action_id}
        for prefix in ("order_acct__", "order_"):
            names |= {n.removeprefix(prefix) for n in (self.block_id, self.action_id) if n.startswith(prefix)}
        return tuple(sorted(k for k in (_norm(n) for n in names) if k))


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def form_inputs(view: View, directory: Directory) -> list[FormInput]:
    """The input blocks of ``view``, in order."""
    found = []
    for block in view.blocks:
        element = block.get("element")
        if block.get("type") != "input" or not isinstance(element, dict):
            continue
        found.append(FormInput(
            block_id=str(block.get("block_id", "")),
            action_id=str(element.get("action_id", "")),
            label=plain_text(block.get("label"), directory, emoji=False),
            element=element,
            optional=bool(block.get("optional", False)),
            dispatch=bool(block.get("dispatch_action", False)),
            hint=plain_text(block.get("hint"), directory),
        ))
    return found


def find_input(view: View, name: str, directory: Directory) -> FormInput | None:
    """The input ``name`` designates (exact name first, then a unique prefix); ``None`` if none.

    Raises :class:`FormError` when a prefix fits several inputs.
    """
    wanted = _norm(name)
    if not wanted:
        return None
    inputs = form_inputs(view, directory)
    exact = [i for i in inputs if wanted in i.keys]
    if len(exact) == 1:
        return exact[0]
    prefix = [i for i in inputs if any(k.startswith(wanted) for k in i.keys)]
    if len(prefix) == 1:
        return prefix[0]
    if len(exact) > 1 or len(prefix) > 1:
        names = ", ".join(f"“{i.label}”" for i in (exact or prefix))
        raise FormError(f"“{name}” fits several fields ({names}): type more of the label")
    return None


def split_field_value(view: View, args: str, directory: Directory) -> tuple[FormInput, str]:
    """``:set`` arguments as (input, value): the longest leading words that name an input, the rest the
    value (``:set Steam login player_one``); or a quoted name (``:set "Steam login" player_one``)."""
    args = args.strip()
    if not args:
        raise FormError("usage: :set FIELD VALUE (FIELD is a label or block id, e.g. :set amount 10)")
    if args[0] in "\"'":
        end = args.find(args[0], 1)
        if end < 0:
            raise FormError("unbalanced quotes in the field name")
        name, rest = args[1:end], args[end + 1:]
        found = find_input(view, name, directory)
        if found is None:
            raise FormError(_no_field(view, name, directory))
        return found, rest.strip()
    words = list(re.finditer(r"\S+", args))
    for count in range(len(words), 0, -1):
        name = args[: words[count - 1].end()]
        value = args[words[count].start():] if count < len(words) else ""
        try:
            found = find_input(view, name, directory)
        except FormError:
            if count == 1:
                raise
            continue
        if found is not None and (count < len(words) or _norm(name) in found.keys):
            return found, value
    raise FormError(_no_field(view, words[0].group(0), directory))


def _no_field(view: View, name: str, directory: Directory) -> str:
    labels = ", ".join(f"“{i.label}”" for i in form_inputs(view, directory)) or "none"
    return f"the form has no field “{name}” (fields: {labels})"


def _options(element: JSON) -> list[JSON]:
    options = [o for o in element.get("options") or [] if isinstance(o, dict)]
    for group in element.get("option_groups") or []:
        options += [o for o in group.get("options") or [] if isinstance(o, dict)]
    return options


def _match_option(options: Sequence[JSON], text: str, directory: Directory) -> JSON:
    wanted = text.strip()
    if wanted.isdigit() and 1 <= int(wanted) <= len(options) and not any(o.get("value") == wanted for o in options):
        return options[int(wanted) - 1]
    lowered = wanted.lower()
    for test in (
        lambda o: o.get("value") == wanted,
        lambda o: plain_text(o.get("text"), directory).lower() == lowered,
        lambda o: plain_text(o.get("text"), directory).lower().startswith(lowered),
        lambda o: lowered in plain_text(o.get("text"), directory).lower(),
    ):
        hits = [o for o in options if test(o)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            names = " / ".join(plain_text(o.get("text"), directory) for o in hits[:5])
            raise FormError(f"“{text}” fits several options ({names})")
    names = " / ".join(plain_text(o.get("text"), directory) for o in options[:8]) or "none"
    raise FormError(f"no option “{text}” (options: {names})")


def input_value(field: FormInput, raw: str, directory: Directory) -> Any:
    """What the Slack client records when ``raw`` is typed into ``field``: text for text and number
    inputs (``\\n`` becomes a line break in multi-line ones), an option for a select, a list of options
    for checkboxes (``on``/``off`` for a single checkbox). External selects need an options load: the
    caller does that (see :func:`picker`)."""
    etype = field.type
    if etype == "external_select":
        raise FormError(f"“{field.label}” loads its options from the app: use :select TEXT, then :pick N")
    if etype in SELECT_TYPES:
        if not raw.strip():
            raise FormError(f"“{field.label}” needs a choice")
        return _match_option(_options(field.element), raw, directory)
    if etype in _MULTI_TYPES:
        options = _options(field.element)
        text = raw.strip().lower()
        if text in _NO or not text:
            return []
        if text in _YES:
            if len(options) == 1:
                return [options[0]]
            raise FormError(f"“{field.label}” has {len(options)} options: name the ones to tick, comma-separated")
        return [_match_option(options, part, directory) for part in raw.split(",") if part.strip()]
    if etype == "plain_text_input" and field.element.get("multiline"):
        return raw.replace("\\n", "\n")
    if etype in _TEXT_TYPES:
        return raw
    raise FormError(f"the demo cannot fill a {etype} input")


def current_value(view: View, field: FormInput, directory: Directory) -> str:
    """The input's value as the form shows it (``""`` when empty)."""
    state = view.state.get(field.block_id, {}).get(field.action_id) or {}
    key = _STATE_KEY.get(field.type, "value")
    value = state.get(key)
    if value is None or value == [] or value == "":
        return ""
    if isinstance(value, dict):
        return option_text(value, directory)
    if field.type == "file_input" and isinstance(value, list):
        return ", ".join(str(f.get("name") if isinstance(f, dict) else getattr(f, "filename", f)) for f in value)
    if isinstance(value, list):
        return ", ".join(option_text(v, directory) if isinstance(v, dict) else str(v) for v in value)
    return str(value)


def picker(view: View, directory: Directory, name: str | None = None) -> FormInput:
    """The select ``:select`` types into: the named one, else the first external select, else the first
    select of the form."""
    if name:
        found = find_input(view, name, directory)
        if found is None or found.type not in SELECT_TYPES | {"multi_external_select", "multi_static_select"}:
            raise FormError(f"“{name}” is not a menu in this form")
        return found
    inputs = form_inputs(view, directory)
    for wanted in ({"external_select", "multi_external_select"}, SELECT_TYPES | {"multi_static_select"}):
        for field in inputs:
            if field.type in wanted:
                return field
    raise FormError("this form has no menu to search")


def options_lines(options: Sequence[JSON], directory: Directory, *, query: str) -> list[Line]:
    """The options an options load returned, numbered for ``:pick N``."""
    if not options:
        return [Line(f"no options match “{query}”", "dim")]
    lines = [Line(f"{len(options)} option{'s' if len(options) != 1 else ''} for “{query}” — :pick N", "meta")]
    lines += [Line(f"{INDENT}({n}) {option_text(o, directory)}", "text") for n, o in enumerate(options, start=1)]
    return lines


def _field_lines(view: View, field: FormInput, renderer: BlockRenderer) -> list[Line]:
    directory = renderer.directory
    mark = "" if field.optional else " *"
    value = current_value(view, field, directory)
    etype = field.type
    if etype in ("checkboxes", "radio_buttons"):
        state = view.state.get(field.block_id, {}).get(field.action_id) or {}
        chosen = state.get(_STATE_KEY[etype])
        picked = {o.get("value") for o in (chosen if isinstance(chosen, list) else [chosen]) if isinstance(o, dict)}
        boxes = "  ".join(
            ("[x] " if o.get("value") in picked else "[ ] ") + option_text(o, directory)
            for o in _options(field.element)
        )
        lines = [Line(f"│ {field.label}{mark}: {boxes}", "form")]
    elif etype in ("external_select", "multi_external_select"):
        placeholder = plain_text(field.element.get("placeholder"), directory) or "search"
        shown = value or f"(none) ▾ {placeholder}: :select TEXT"
        lines = [Line(f"│ {field.label}{mark}: {shown}", "form")]
    elif etype in SELECT_TYPES or etype == "multi_static_select":
        names = " / ".join(option_text(o, directory) for o in _options(field.element)[:6])
        lines = [Line(f"│ {field.label}{mark}: {value or '(none)'} ▾ ({names})", "form")]
    elif "\n" in value:
        lines = [Line(f"│ {field.label}{mark}:", "form")]
        lines += [Line(f"│ {INDENT}{part}", "form") for part in value.split("\n")]
    else:
        lines = [Line(f"│ {field.label}{mark}: {value or '(empty)'}", "form")]
    if field.hint:
        lines += [Line(f"│ {INDENT}{part}", "context") for part in field.hint.split("\n")]
    error = view.errors.get(field.block_id)
    if error:
        lines.append(Line(f"│ {INDENT}⚠ {error}", "error"))
    return lines


def render_form(view: View, renderer: BlockRenderer, *, depth: int = 1) -> list[Line]:
    """The modal ``view`` as a form (see the module docstring). ``depth``: its place on the user's stack."""
    directory = renderer.directory
    title = plain_text(view.title, directory) or "Modal"
    where = f"modal of {renderer.user(view.user)}" + (f", view {depth} of the stack" if depth > 1 else "")
    lines = [Line(f"┌ {title}  ({where})", "header")]
    inputs = {f.block_id: f for f in form_inputs(view, directory)}
    for block in view.blocks:
        field = inputs.get(str(block.get("block_id", "")))
        if block.get("type") == "input" and field is not None:
            lines += _field_lines(view, field, renderer)
        else:
            lines += [
                Line(f"│ {line.text}", line.style)
                for line in renderer.block(block, ("view", view.id, ""))
            ]
    unknown = {k: v for k, v in view.errors.items() if k not in inputs}
    for block_id, message in unknown.items():
        lines.append(Line(f"│ ⚠ {block_id}: {message}", "error"))
    submit = plain_text(view.submit, directory)
    close = plain_text(view.close, directory) or "Cancel"
    footer = (f":submit “{submit}” · " if submit else "") + f":cancel “{close}”"
    lines.append(Line(f"└ {footer}", "header"))
    return lines
