"""The sampling panel: one field per setting, each with its label, bounds and hint from the one table
(slmtui/core/sampling.py: ``SETTING_FIELDS``), and named presets.

The panel owns no generation state: it holds the current frozen ``Sampling`` and, on every valid change,
swaps in a new one (``dataclasses.replace``) and posts ``SamplingPanel.Changed``. The screen keeps that
object where the generation worker reads it before every token, so a change applies to the very next one.
An invalid value shows its error and leaves the sampling as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import var
from textual.widgets import Collapsible, Input, Label, Select, Static

from slmtui.core.errors import SlmError
from slmtui.core.sampling import BUILTIN_PRESETS, PRESET_FIELDS, SETTING_FIELDS, Sampling, SamplingField
from slmtui.core.sampling_lists import format_bias, format_list, parse_bias, parse_list
from slmtui.tui.messages import ChoicesChosen, PresetSaved
from slmtui.writing import MAX_CHOICES
from slmtui.tui.modals import AskScreen

CHOICES_HINT = f"1–{MAX_CHOICES} continuations written side by side · pick one with 1..N · 1 = one at a time"


def format_value(value: object) -> str:
    """A value as its box shows it; a list as ``a, b`` (``core.sampling_lists.format_list``), a bias ``word=X``."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return format_list([format_bias(v) if isinstance(v, tuple) else v for v in value])
    return str(value)


def parse_value(field: SamplingField, text: str) -> object:
    """The field's text as a value, or SlmError in words (its bounds are Sampling's to check)."""
    if field.many:  # a list, comma between; a bias TEXT=X (its bounds are checked here, in the same words)
        items = parse_list(text)
        return tuple(parse_bias(item) for item in items) if field.pairs else items
    text = text.strip()
    if not text:
        if field.optional:
            return None
        raise SlmError(f"{field.label} needs a value")
    try:
        return field.kind(text)
    except ValueError:
        kind = "a whole number" if field.kind is int else "a number"
        raise SlmError(f"{field.label} must be {kind}, not {text!r}") from None


def rules_title(s: Sampling) -> str:
    """The rules fold's title: which of DRY, XTC, bans and biases are on, so a folded panel still says."""
    on = []
    if s.dry_multiplier:
        on.append(f"dry {s.dry_multiplier:g}")
    if s.xtc_probability:
        on.append(f"xtc {s.xtc_probability:g}")
    if s.banned_phrases:
        on.append(f"{len(s.banned_phrases)} banned")
    if s.logit_bias:
        on.append(f"{len(s.logit_bias)} biased")
    return "rules: " + (" · ".join(on) if on else "DRY, XTC, bans off")


def apply_preset(sampling: Sampling, values: dict[str, Any]) -> Sampling:
    """``sampling`` with a preset's values; SlmError if they are out of range."""
    return replace(sampling, **values)


class SamplingPanel(Vertical):
    """Sampling fields, a preset picker and a hint line."""

    sampling: var[Sampling] = var(Sampling)
    """The settings in force. The screen sets it (a story opened, a preset saved); the panel swaps it on edits."""
    user_presets: var[dict[str, dict[str, Any]]] = var(dict)
    """The user's presets from config.toml: name -> some of the sampling values."""
    choices: var[int] = var(1)
    """How many continuations one generation writes side by side (not a ``Sampling`` value: the session's)."""

    @dataclass
    class Changed(Message):
        """The user changed a setting: ``sampling`` is the new object to use from the next token on."""

        panel: SamplingPanel
        sampling: Sampling

    def compose(self) -> ComposeResult:
        with Horizontal(classes="sampling-row"):
            yield Label("preset", classes="sampling-label")
            yield Select[str]([], prompt="custom", compact=True, id="sampling-preset")
        for field in SETTING_FIELDS:
            if not field.group:
                yield from self._row(field)
        with Collapsible(title=rules_title(self.sampling), collapsed=True, id="sampling-rules"):
            for field in SETTING_FIELDS:
                if field.group == "rules":
                    yield from self._row(field)
        with Horizontal(classes="sampling-row"):
            yield Label("choices", classes="sampling-label")
            yield Input(str(self.choices), compact=True, id="sampling-choices", classes="sampling-choices",
                        tooltip=CHOICES_HINT, select_on_focus=True)
        yield Static("Enter applies · Tab moves", id="sampling-hint")

    def _row(self, field: SamplingField) -> ComposeResult:
        with Horizontal(classes="sampling-row"):
            yield Label(field.label, classes="sampling-label")
            yield Input(
                format_value(getattr(self.sampling, field.name)),
                compact=True,
                id=f"sampling-{field.name}",
                classes="sampling-input",
                tooltip=field.panel_hint,
                select_on_focus=True,
            )

    def on_mount(self) -> None:
        self.border_title = "Sampling"
        self._refresh_presets()

    # --- attributes down ---------------------------------------------------------------------------------------

    def watch_sampling(self, sampling: Sampling) -> None:
        if not self.is_mounted:
            return
        for field in SETTING_FIELDS:
            box = self.query_one(f"#sampling-{field.name}", Input)
            box.value = format_value(getattr(sampling, field.name))
            box.remove_class("-invalid")
        self.query_one("#sampling-rules", Collapsible).title = rules_title(sampling)
        self._show_matching_preset()

    def watch_choices(self, n: int) -> None:
        if self.is_mounted:
            self.query_one("#sampling-choices", Input).value = str(n)

    def watch_user_presets(self) -> None:
        if self.is_mounted:
            self._refresh_presets()

    def all_presets(self) -> dict[str, dict[str, Any]]:
        return {**BUILTIN_PRESETS, **self.user_presets}

    def _refresh_presets(self) -> None:
        select = self.query_one("#sampling-preset", Select)
        with self.prevent(Select.Changed):
            select.set_options([(name, name) for name in self.all_presets()])
        self._show_matching_preset()

    def _show_matching_preset(self) -> None:
        select = self.query_one("#sampling-preset", Select)
        match = next(
            (
                name
                for name, values in self.all_presets().items()
                if values and all(getattr(self.sampling, k, None) == v for k, v in values.items())
            ),
            None,
        )
        with self.prevent(Select.Changed):
            if match is None:
                select.clear()
            else:
                select.value = match

    # --- the user's edits --------------------------------------------------------------------------------------

    def _hint(self, text: str, *, error: bool = False) -> None:
        hint = self.query_one("#sampling-hint", Static)
        hint.update(text)
        hint.set_class(error, "-error")

    def _field_of(self, box: Input) -> SamplingField:
        name = (box.id or "").removeprefix("sampling-")
        return next(f for f in SETTING_FIELDS if f.name == name)

    @on(Input.Submitted, ".sampling-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.commit(event.input)

    @on(Input.Blurred, ".sampling-input")
    def _blurred(self, event: Input.Blurred) -> None:
        if not self.commit(event.input):
            # Leaving the field with a bad value: put the value in force back, the error stays on show.
            event.input.value = format_value(getattr(self.sampling, self._field_of(event.input).name))
            event.input.remove_class("-invalid")

    def on_descendant_focus(self, event: object) -> None:
        focused = self.screen.focused
        if isinstance(focused, Input) and focused.has_class("sampling-input"):
            field = self._field_of(focused)
            self._hint(f"{field.label}: {field.panel_hint}")
        elif isinstance(focused, Input) and focused.id == "sampling-choices":
            self._hint(f"choices: {CHOICES_HINT}")

    @on(Input.Submitted, "#sampling-choices")
    def _choices_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.commit_choices(event.input)

    @on(Input.Blurred, "#sampling-choices")
    def _choices_blurred(self, event: Input.Blurred) -> None:
        if not self.commit_choices(event.input):
            event.input.value = str(self.choices)
            event.input.remove_class("-invalid")

    def commit_choices(self, box: Input) -> bool:
        """Apply the choices field: True if it holds a whole number in range."""
        text = box.value.strip()
        if not text.isdigit() or not 1 <= int(text) <= MAX_CHOICES:
            box.add_class("-invalid")
            self._hint(f"✗ choices must be a whole number 1–{MAX_CHOICES} · kept {self.choices}", error=True)
            return False
        box.remove_class("-invalid")
        if int(text) != self.choices:
            self.choices = int(text)
            self._hint(f"choices = {self.choices} · from the next continuation")
            self.post_message(ChoicesChosen(self.choices))
        return True

    def commit(self, box: Input) -> bool:
        """Apply the field's text: True if the sampling now holds it (or already did)."""
        field = self._field_of(box)
        try:
            value = parse_value(field, box.value)
            if value == getattr(self.sampling, field.name):
                box.remove_class("-invalid")
                return True
            new = replace(self.sampling, **{field.name: value})
        except SlmError as e:
            box.add_class("-invalid")
            self._hint(f"✗ {e} · kept {format_value(getattr(self.sampling, field.name)) or 'blank'}", error=True)
            return False
        box.remove_class("-invalid")
        self._hint(f"{field.label} = {format_value(value) or 'random'} · applies to the next token")
        self._swap(new)
        return True

    @on(Select.Changed, "#sampling-preset")
    def _preset_chosen(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is Select.NULL:
            return
        self.use_preset(str(event.value))

    def use_preset(self, name: str) -> None:
        try:
            new = apply_preset(self.sampling, self.all_presets()[name])
        except (KeyError, SlmError) as e:
            self._hint(f"✗ preset {name!r}: {e}", error=True)
            return
        self._hint(f"preset {name}")
        self._swap(new)

    def ask_preset_name(self) -> None:
        """Save the settings in force as a preset of the user's: asks its name, then posts ``PresetSaved``."""

        def named(name: str | None) -> None:
            name = (name or "").strip()
            if not name:
                return
            if name in BUILTIN_PRESETS:
                self.notify(f"“{name}” is a built-in preset; choose another name.", severity="warning")
                return
            values = {k: getattr(self.sampling, k) for k in PRESET_FIELDS}
            self.user_presets = {**self.user_presets, name: values}
            self.post_message(PresetSaved(name, values))
            self.notify(f"Preset “{name}” saved to config.toml.", timeout=4)

        self.app.push_screen(AskScreen("Save the sampling settings as a preset named:", placeholder="e.g. dreamy"), named)

    def _swap(self, new: Sampling) -> None:
        self.sampling = new
        self.post_message(self.Changed(self, new))
