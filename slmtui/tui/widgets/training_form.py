"""The training screen's form: which path (teach the current model your books, or train from scratch), the corpus,
the budget, and for a from-scratch run the preset and tokenizer, and the model name, as the user types them.

The form holds the fields only: it posts ``TrainingForm.Changed`` on every edit and hands them out whole
(``fields``); the screen has them sized and checked (``slmtui.training.plan.RunSetup``) and shows what comes back
in the form's own lines (``show_corpus_size``, ``show_outlook``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Select, Static

from slmtui.training.plan import FINETUNE, FINETUNE_BUDGET, SCRATCH, RunForm
from trainer.config import PRESETS, scratch_preset

BUDGET_KINDS = (("steps", "steps"), ("time (e.g. 15m)", "time"), ("epochs", "epochs"))
CORPUS_HINTS = {FINETUNE: "a folder or file of your books", SCRATCH: "the bundled novels, or a folder path"}
"""The empty corpus field's hint on each path: a fine-tune is taught the user's books, never the bundled novels."""
NAME_HINT = "named after your books"
"""The empty name field's hint while there is no name to suggest (a fine-tune before any books are chosen)."""
BUDGET_DEFAULTS = {"steps": "300", "time": "10m", "epochs": "3"}


def _preset_label(name: str) -> str:
    c = PRESETS[name].model
    return f"{name} · {c.n_layer}×{c.n_embd} · context {c.block_size}"


def _smallest_first() -> list[str]:
    """The presets as the form lists them: by their blocks' size (layers × width), the toy first."""
    return sorted(PRESETS, key=lambda name: PRESETS[name].model.n_layer * PRESETS[name].model.n_embd)


class TrainingForm(Vertical):
    """The fields that describe a run."""

    @dataclass
    class Changed(Message):
        """A field changed; ``corpus`` when it was the corpus (which must be sized again)."""

        corpus: bool

    def __init__(self, corpus: Path | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.initial_corpus = corpus
        self._suggested_preset = scratch_preset(None)
        """Shown until the corpus is sized, then the suggestion for its size."""
        self._preset_chosen = False
        """The user picked a preset: a new corpus leaves it as it is."""
        self._suggested_name: str | None = None
        """The name used while the user types none (``RunSetup.suggested_name``); None: none yet."""

    def compose(self) -> ComposeResult:
        with RadioSet(id="train-path", compact=True):
            # Short labels that fit the narrow panel; the model taught is named on its own line, which wraps.
            yield RadioButton("Teach a model your books", value=True, id="path-finetune")
            yield RadioButton("Train from scratch", id="path-scratch")
        yield Static("", id="train-parent")
        yield Label("Your books (folder or file)", classes="field-label")
        with Horizontal(classes="field-row"):
            yield Input(str(self.initial_corpus or ""), placeholder=CORPUS_HINTS[FINETUNE],
                        id="train-corpus", compact=True)
            yield Button("Browse…", id="train-browse", compact=True)
        yield Static("", id="train-corpus-size")
        with Vertical(id="finetune-fields"):
            yield Label("Budget in minutes", classes="field-label")
            yield Input(FINETUNE_BUDGET, id="train-minutes", compact=True)
        with Vertical(id="scratch-fields"):
            yield Label("Preset", classes="field-label")
            yield Select([(_preset_label(p), p) for p in _smallest_first()], value=self._suggested_preset,
                         allow_blank=False, id="train-preset", compact=True)
            yield Label("Tokenizer (gpt2 or bpe:N)", classes="field-label")
            yield Input(placeholder=PRESETS[self._suggested_preset].tokenizer, id="train-tokenizer", compact=True)
            yield Label("Budget", classes="field-label")
            with Horizontal(classes="field-row"):
                yield Select(list(BUDGET_KINDS), value="time", allow_blank=False, id="train-budget-kind",
                             compact=True)
                yield Input(BUDGET_DEFAULTS["time"], id="train-budget", compact=True)
        yield Label("Model name", classes="field-label")
        yield Input(placeholder=NAME_HINT, id="train-name", compact=True)
        yield Static("", id="train-estimate")

    def fields(self) -> RunForm:
        """Every field as typed: what ``RunSetup`` checks and plans from."""
        return RunForm(path=self.path(), corpus=self.corpus(), preset=self.preset(), tokenizer=self.tokenizer(),
                       budget_kind=self.budget_kind(), budget=self.budget(), minutes=self.minutes(),
                       name=self.model_name())

    def corpus(self) -> Path | None:
        text = self.query_one("#train-corpus", Input).value.strip()
        return Path(text).expanduser() if text and text != "bundled" else None

    def set_corpus(self, path: Path | None) -> None:
        """Put a corpus in its field (None: the bundled one); the field posts the change as typing does."""
        self.query_one("#train-corpus", Input).value = str(path) if path is not None else ""

    def focus_corpus(self) -> None:
        self.query_one("#train-corpus", Input).focus()

    def show_corpus_size(self, text: str, *, error: bool | None = None) -> None:
        """The corpus's size, or why it cannot be read (``error``; None: as the last one was)."""
        label = self.query_one("#train-corpus-size", Static)
        label.update(text)
        if error is not None:
            label.set_class(error, "-error")

    def show_outlook(self, text: str, *, error: bool) -> None:
        """What the run will cost, or what stands in its way."""
        box = self.query_one("#train-estimate", Static)
        box.update(text)
        box.set_class(error, "-error")

    def suggest_name(self, name: str | None) -> None:
        """The model name used while the user types none, shown as the field's hint (None: none yet)."""
        self._suggested_name = name
        self.query_one("#train-name", Input).placeholder = name or NAME_HINT

    def path(self) -> str:
        """FINETUNE or SCRATCH."""
        return SCRATCH if self.query_one("#path-scratch", RadioButton).value else FINETUNE

    def set_path(self, path: str) -> None:
        self.query_one(f"#path-{path}", RadioButton).value = True

    def set_parent(self, name: str) -> None:
        """Name the model a fine-tune starts from, under the first path (a long name wraps there)."""
        self.query_one("#train-parent", Static).update(f"starting from {name}")

    def suggest_preset(self, preset: str) -> None:
        """The preset for this corpus's size (``trainer.config.scratch_preset``), unless the user chose one."""
        self._suggested_preset = preset
        if not self._preset_chosen:
            self.query_one("#train-preset", Select).value = preset

    def preset(self) -> str:
        return str(self.query_one("#train-preset", Select).value)

    def tokenizer(self) -> str:
        return self.query_one("#train-tokenizer", Input).value

    def budget_kind(self) -> str:
        return str(self.query_one("#train-budget-kind", Select).value)

    def budget(self) -> str:
        return self.query_one("#train-budget", Input).value

    def minutes(self) -> str:
        return self.query_one("#train-minutes", Input).value

    def model_name(self) -> str:
        typed = self.query_one("#train-name", Input).value.strip()
        return typed or self._suggested_name or ""

    @on(Input.Changed, "#train-corpus")
    def _corpus_changed(self) -> None:
        self.post_message(self.Changed(corpus=True))

    @on(RadioSet.Changed, "#train-path")
    def _path_changed(self) -> None:
        self.set_class(self.path() == SCRATCH, "-scratch")
        self.query_one("#train-corpus", Input).placeholder = CORPUS_HINTS[self.path()]
        self.post_message(self.Changed(corpus=False))

    @on(Select.Changed, "#train-preset")
    def _preset_changed(self, event: Select.Changed) -> None:
        if event.value != self._suggested_preset:
            self._preset_chosen = True
        chosen = PRESETS.get(str(event.value))
        self.query_one("#train-tokenizer", Input).placeholder = chosen.tokenizer if chosen else ""
        self.post_message(self.Changed(corpus=False))

    @on(Select.Changed, "#train-budget-kind")
    def _budget_kind_changed(self, event: Select.Changed) -> None:
        self.query_one("#train-budget", Input).value = BUDGET_DEFAULTS.get(str(event.value), "")
        self.post_message(self.Changed(corpus=False))

    @on(Input.Changed, "#train-tokenizer, #train-budget, #train-name, #train-minutes")
    def _field_changed(self) -> None:
        self.post_message(self.Changed(corpus=False))
