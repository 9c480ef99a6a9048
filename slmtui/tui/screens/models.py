"""ModelsScreen: every model the app can write with; make one active, rename, delete, add a folder.

Models are folders (slmtui.core.model_folder). The list is the user's models folder, then the bundled ones they do
not shadow. A folder elsewhere is added as a symbolic link in the models folder, so every part of slmtui (the
writer, ``slmtui generate --model NAME``, ``slm-train --init-from NAME``) finds it by name and deleting it removes
the link only, never the user's folder. Renames are one ``os.replace``; a deletion first renames the folder to
a hidden name (gone from the list at once, atomically), then removes it.

The folder operations are ``slmtui.core.model_catalog``'s (the CLI may use them too). The active model lives in the
app: this screen posts ``UseModel`` and the app remembers it in config.toml and loads it into the writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from rich.markup import escape

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static

from slmtui.core.errors import SlmError
from slmtui.core.model_catalog import DEFAULT_MODEL, add_model_folder, delete_model, list_models, rename_model
from slmtui.core.model_folder import ModelInfo
from slmtui.format import corpus, created, model_details, number, params, parent_name
from slmtui.tui.commands import Command, binding_commands
from slmtui.tui.messages import UseModel
from slmtui.tui.modals import AskScreen, ConfirmScreen

Lister = Callable[[], list[ModelInfo]]

COLUMNS = (("", "mark"), ("Model", "name"), ("Params", "params"), ("Bits/byte", "bpb"), ("From", "parent"),
           ("Created", "created"), ("Corpus", "corpus"))
"""The table: what tells models apart first, so 80 columns show it whole; the corpus, whose folder name may be
long, last (the table scrolls sideways, and the details below say it in full). The held-out score is bits per
byte, the figure ``slmtui models`` and the trainer compare models by; the validation loss, the vocabulary and the
context are in the details."""


def describe_model(info: ModelInfo, *, active: bool) -> str:
    """The details panel: the model's name and place, then everything model.toml says (``format.model_details``)."""
    where = ("bundled with slmtui" if info.bundled else
             f"linked from {info.path.resolve()}" if info.linked else "in your models folder")
    head = f"[b]{escape(info.name)}[/b]{'  [reverse] active [/reverse]' if active else ''} · {escape(where)}"
    return "\n".join([head, *(escape(line) for line in model_details(info))])


class ModelsScreen(Screen[None]):
    """The models, one a row; the highlighted one's details below."""

    CSS_PATH = "models.tcss"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("enter", "use", "Use", priority=True),
        Binding("r", "rename", "Rename"),
        Binding("d,delete", "delete", "Delete"),
        Binding("a", "add", "Add folder"),
    ]

    def __init__(self, *, active: str | None = None, busy: Callable[[], Path | None] | None = None,
                 lister: Lister = list_models) -> None:
        """``active``: the model in use (a name or a folder; None: the bundled default). ``busy``: the folder a
        training run writes now (not to be renamed or deleted under it). ``lister``: tests pass fixed models."""
        super().__init__()
        self.active = active
        self.busy = busy or (lambda: None)
        self.lister = lister
        self.models: list[ModelInfo] = []

    def compose(self) -> ComposeResult:
        yield Header(icon="✎")
        yield DataTable(id="models-table", cursor_type="row", zebra_stripes=True)
        yield Label("", id="models-empty")
        yield Static("", id="models-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "models"
        table = self.query_one(DataTable)
        for label, key in COLUMNS:
            table.add_column(label, key=key)
        table.focus()
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    @work(thread=True, exclusive=True, group="models-list")
    def reload(self, select: str | None = None) -> None:
        """Read every model.toml off the UI thread (a slow disk or many models must not freeze it)."""
        models = self.lister()
        self.app.call_from_thread(self._show_if_open, models, select)

    def _show_if_open(self, models: list[ModelInfo], select: str | None) -> None:
        try:
            self._show(models, select)
        except NoMatches:  # the screen is closing and its widgets are going (they go before its workers stop)
            pass

    def is_active(self, info: ModelInfo) -> bool:
        active = self.active
        if active is None:
            return info.bundled and info.name == DEFAULT_MODEL
        if active == info.name:
            return True
        try:
            return Path(active).expanduser().resolve() == info.path.resolve()
        except OSError:
            return False

    def _show(self, models: list[ModelInfo], select: str | None) -> None:
        table = self.query_one(DataTable)
        keep = select or (self.selected().name if self.selected() else None)
        self.models = models
        table.clear()
        for info in models:
            t = info.training
            mark = "●" if self.is_active(info) else ""
            name = info.name + (" (bundled)" if info.bundled else " ↗" if info.linked else "")
            table.add_row(mark, name, params(info.n_params), number(t.get("val_bpb")), parent_name(info) or "–",
                          created(t.get("created")), corpus(t.get("corpus")), key=str(info.path))
        empty = self.query_one("#models-empty", Label)
        empty.update("No models yet: train one (f5), or add a model folder (a).")
        empty.display = not models
        names = [m.name for m in models]
        if keep in names:
            table.move_cursor(row=names.index(keep))
        self._show_detail()

    def selected(self) -> ModelInfo | None:
        table = self.query_one(DataTable)
        row = table.cursor_row
        if not self.models or row is None or not 0 <= row < len(self.models):
            return None
        return self.models[row]

    @on(DataTable.RowHighlighted)
    def _show_detail(self) -> None:
        info = self.selected()
        detail = self.query_one("#models-detail", Static)
        detail.update(describe_model(info, active=self.is_active(info)) if info else "")

    # ------------------------------------------------------------------ actions

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_use(self) -> None:
        info = self.selected()
        if info is None:
            return
        self.active = info.name
        self.post_message(UseModel(info.name))
        self.notify(f"Writing with “{info.name}” from now on.", timeout=4)
        self.reload(select=info.name)

    def _refuse(self, info: ModelInfo, doing: str) -> bool:
        if info.bundled:
            self.notify(f"The bundled model cannot be {doing}.", severity="warning")
            return True
        busy = self.busy()
        if busy is not None and busy.resolve() == info.path.resolve():
            self.notify(f"“{info.name}” is being trained: stop the run first.", severity="warning")
            return True
        return False

    def action_rename(self) -> None:
        info = self.selected()
        if info is None or self._refuse(info, "renamed"):
            return

        def named(name: str | None) -> None:
            name = (name or "").strip()
            if not name or name == info.name:
                return
            try:
                target = rename_model(info, name)
            except SlmError as e:
                self.notify(str(e), title="Not renamed", severity="warning")
                return
            if self.is_active(info) and self.active is not None:
                self.active = target.name
                self.post_message(UseModel(target.name))
            self.reload(select=target.name)

        self.app.push_screen(AskScreen(f"New name for “{info.name}”:", value=info.name), named)

    def action_delete(self) -> None:
        info = self.selected()
        if info is None or self._refuse(info, "deleted"):
            return
        what = (f"the link to {info.path.resolve()} (the folder itself is kept)" if info.linked
                else f"its folder {info.path}")
        question = f"Delete the model “{info.name}”? This removes {what}."

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            was_active = self.is_active(info) and self.active is not None
            try:
                delete_model(info)
            except SlmError as e:
                self.notify(str(e), title="Not deleted", severity="error")
                return
            self.notify(f"Deleted “{info.name}”.", timeout=4)
            if was_active:
                self.active = None
                self.post_message(UseModel(None))
            self.reload()

        self.app.push_screen(ConfirmScreen(question, yes="Delete", danger=True), answered)

    def action_add(self) -> None:
        def given(text: str | None) -> None:
            text = (text or "").strip()
            if not text:
                return
            try:
                link = add_model_folder(Path(text))
            except SlmError as e:
                self.notify(str(e), title="Not added", severity="warning")
                return
            self.notify(f"Added “{link.name}”.", timeout=4)
            self.reload(select=link.name)

        self.app.push_screen(AskScreen("Path of a model folder (one holding model.toml):",
                                       placeholder="~/models/my-model"), given)

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_use()

    def commands(self) -> Iterator[Command]:
        yield from binding_commands(self)
