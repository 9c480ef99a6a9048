"""The lorebook screen: the open story's lore entries, to add, edit, switch off, reorder and delete by keyboard,
and to import or export as a lore JSON file (a world reused across stories).

The entries are the writing session's (``WritingSession.lore``): every change is one ``session.set_lore`` call,
saved with the story as it happens, and the table is redrawn from the session. Beside each entry the table says
whether the model reads it next and why (the session's context: the one context builder), so the writer sees
at once which entries a key of the page brings in and what they cost.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    Checkbox,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    Static,
    TextArea,
)

from slmtui.core.errors import SlmError
from slmtui.stories.export import exports_dir, slug
from slmtui.stories.lore_json import read_lore_file, write_lore_file
from slmtui.stories.lorebook import Lorebook, LoreEntry, show
from slmtui.tui.commands import Command, binding_commands
from slmtui.tui.modals import AskScreen, ConfirmScreen
from slmtui.tui.widgets.text_lines import printable
from slmtui.writing.lore import Trigger
from slmtui.writing.session import Change, WritingSession

KEYS_CHARS = 24
"""How much of an entry's keys the table shows (the details below show them all)."""


def split_keys(line: str) -> tuple[str, ...]:
    """The keys typed on one line, separated by commas: a ``/regex/`` key may hold commas of its own
    (``/a{1,3}/``), so a piece that opens a regex runs on to the piece that closes it."""
    keys: list[str] = []
    pending: str | None = None
    for piece in line.split(","):
        if pending is not None:
            pending += "," + piece
            if _closes_regex(pending):
                keys.append(pending.strip())
                pending = None
            continue
        if piece.strip().startswith("/") and not _closes_regex(piece):
            pending = piece
        elif piece.strip():
            keys.append(piece.strip())
    if pending is not None:
        keys.append(pending.strip())
    return tuple(keys)


def short_trigger(trigger: Trigger) -> str:
    """What brought an entry in, short enough for a table cell: 'always on', '"Ann" in the story'."""
    if trigger.source == "always":
        return "always on"
    where = {"story": "the story", "memory": "memory", "note": "the note"}.get(trigger.source)
    return f"{show(trigger.key, 20)} in {where or show(trigger.entry_title, 20)}"


def _closes_regex(text: str) -> bool:
    t = text.strip()
    return len(t) > 1 and t.startswith("/") and t.rstrip("imsIMS").endswith("/") and len(t.rstrip("imsIMS")) > 1


class LoreEntryScreen(ModalScreen[LoreEntry | None]):
    """One entry's fields; ctrl+s saves, Escape cancels. An entry that breaks a rule (a blank title, a regex
    that does not compile or would match everything) is not saved: the dialog says why and stays open."""

    CSS_PATH = "lorebook.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+s", "save", "Save"), Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, entry: LoreEntry | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.entry = entry

    def compose(self) -> ComposeResult:
        e = self.entry
        with Vertical(classes="dialog", id="lore-entry"):
            yield Label("Edit the lore entry" if e else "A new lore entry", classes="dialog-question")
            yield Label("Title", classes="lore-field")
            yield Input(e.title if e else "", placeholder="e.g. Ann", id="lore-title", compact=True)
            yield Label("Keys, by commas (whole words, any case; /regex/ for a pattern)", classes="lore-field")
            yield Input(", ".join(e.keys) if e else "", placeholder="e.g. Ann, the miller's daughter",
                        id="lore-keys", compact=True)
            yield Label("Text the model reads while the entry is active", classes="lore-field")
            yield TextArea(e.text if e else "", id="lore-text", soft_wrap=True, compact=True,
                           placeholder="e.g. Ann is the miller's daughter, quick and proud.")
            with Horizontal(id="lore-switches"):
                yield Checkbox("enabled", e.enabled if e else True, id="lore-enabled", compact=True)
                yield Checkbox("always on (keys or not)", e.always if e else False, id="lore-always",
                               compact=True)
            yield Label("", id="lore-problem")
            yield Label("ctrl+s saves · Esc cancels · Tab moves between fields", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#lore-title", Input).focus()

    def action_save(self) -> None:
        title = self.query_one("#lore-title", Input).value.strip()
        try:
            entry = LoreEntry(title=title, keys=split_keys(self.query_one("#lore-keys", Input).value),
                              text=self.query_one("#lore-text", TextArea).text,
                              enabled=self.query_one("#lore-enabled", Checkbox).value,
                              always=self.query_one("#lore-always", Checkbox).value,
                              extra=self.entry.extra if self.entry else {})
        except SlmError as e:
            self.query_one("#lore-problem", Label).update(printable(e.message))
            return
        self.dismiss(entry)

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        event.stop()
        self.focus_next()


class LorebookScreen(Screen[None]):
    """The open story's lore entries (the session's), in their order; Escape goes back to writing."""

    CSS_PATH = "lorebook.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("a", "add", "Add"),
        Binding("e", "edit", "Edit"),
        Binding("space", "toggle", "On/off"),
        Binding("w", "always", "Always on"),
        Binding("d,delete", "delete", "Delete"),
        Binding("shift+up", "move(-1)", "Move up", show=False),
        Binding("shift+down", "move(1)", "Move down", show=False),
        Binding("i", "import", "Import"),
        Binding("x", "export", "Export"),
    ]

    def __init__(self, session: WritingSession) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        yield Header(icon="✎")
        with Vertical(id="lore-body"):
            yield DataTable(id="lore-table", cursor_type="row", zebra_stripes=True)
            yield Label("", id="lore-empty")
            yield Static("", id="lore-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.session.listeners.append(self._changed)
        self.reload()
        self.query_one(DataTable).focus()

    def on_unmount(self) -> None:
        if self._changed in self.session.listeners:
            self.session.listeners.remove(self._changed)

    def _changed(self, change: Change) -> None:
        if change in ("memory", "story", "model"):
            self.reload()

    @property
    def entries(self) -> tuple[LoreEntry, ...]:
        return self.session.lore.entries

    def reload(self, *, select: int | None = None) -> None:
        """Redraw the table from the session: each entry, and whether the model reads it next and why."""
        story = self.session.story
        self.sub_title = f"lorebook · {story.title if story else 'new story'}"
        table = self.query_one(DataTable)
        row = table.cursor_row if select is None else select
        ctx = self.session.context()
        inserted = {e.index: e for e in ctx.lore.inserted} if ctx else {}
        left_out = {e.index: e for e in ctx.lore.left_out} if ctx else {}
        table.clear(columns=True)  # the columns too: their widths follow the rows they held
        for label, key in (("", "state"), ("Title", "title"), ("Keys", "keys"), ("Tokens", "tokens"),
                           ("Next context", "now")):
            table.add_column(label, key=key)
        for i, entry in enumerate(self.entries):
            state = "off" if not entry.enabled else "always" if entry.always else "on"
            keys = ", ".join(entry.keys) or "–"
            if len(keys) > KEYS_CHARS:
                keys = keys[: KEYS_CHARS - 1] + "…"
            if i in inserted:
                tokens, now = str(inserted[i].n_tokens), "in · " + short_trigger(inserted[i].trigger)
            elif i in left_out:
                tokens, now = str(left_out[i].tokens), "out · " + (
                    "no room" if left_out[i].reason == "budget" else "empty text")
            else:
                tokens, now = "", "–" if entry.enabled else "switched off"
            table.add_row(state, printable(entry.title), printable(keys), tokens, printable(now), key=str(i))
        empty = self.query_one("#lore-empty", Label)
        empty.update("No lore yet: press a to add an entry, or i to import a lore file." if not self.entries else "")
        empty.display = not self.entries
        table.display = bool(self.entries)  # an empty table above the hint would only push it down
        if self.entries and self.focused is None:
            table.focus()
        if self.entries:
            table.move_cursor(row=max(0, min(row, len(self.entries) - 1)))
        self._draw_detail()
        self.query_one("#lore-detail", Static).border_title = (
            f"{ctx.lore_tokens} of {ctx.lore.budget} lore tokens in the next context" if ctx and self.entries else "")

    def selected(self) -> int | None:
        table = self.query_one(DataTable)
        if not self.entries or table.cursor_row is None or not 0 <= table.cursor_row < len(self.entries):
            return None
        return table.cursor_row

    def _draw_detail(self) -> None:
        i = self.selected()
        detail = self.query_one("#lore-detail", Static)
        if i is None:
            detail.update("")
            return
        e = self.entries[i]
        keys = " · ".join(e.keys) if e.keys else "(none: it comes in only when always on)"
        detail.update(printable(f"{e.title}\nkeys: {keys}\n\n{e.text}"))

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self) -> None:
        self._draw_detail()

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_edit()

    # --- changes: each is one session.set_lore, saved with the story --------------------------------------------

    def _save(self, entries: list[LoreEntry], *, select: int | None = None) -> bool:
        try:
            self.session.set_lore(Lorebook(tuple(entries), self.session.lore.extra))
        except SlmError as e:
            self.notify(e.message, title="Lorebook", severity="error", timeout=8)
            return False
        self.reload(select=select)
        return True

    def action_back(self) -> None:
        self.dismiss(None)

    def action_add(self) -> None:
        def added(entry: LoreEntry | None) -> None:
            if entry is not None:
                self._save([*self.entries, entry], select=len(self.entries))

        self.app.push_screen(LoreEntryScreen(), added)

    def action_edit(self) -> None:
        i = self.selected()
        if i is None:
            return

        def edited(entry: LoreEntry | None) -> None:
            if entry is not None:
                entries = list(self.entries)
                entries[i] = entry
                self._save(entries, select=i)

        self.app.push_screen(LoreEntryScreen(self.entries[i]), edited)

    def _switch(self, name: str) -> None:
        i = self.selected()
        if i is None:
            return
        entries = list(self.entries)
        entries[i] = replace(entries[i], **{name: not getattr(entries[i], name)})
        self._save(entries, select=i)

    def action_toggle(self) -> None:
        self._switch("enabled")

    def action_always(self) -> None:
        self._switch("always")

    def action_move(self, step: int) -> None:
        """Move the entry up or down: the order decides who gets the budget first and the reading order."""
        i = self.selected()
        if i is None or not 0 <= i + step < len(self.entries):
            return
        entries = list(self.entries)
        entries[i], entries[i + step] = entries[i + step], entries[i]
        self._save(entries, select=i + step)

    def action_delete(self) -> None:
        i = self.selected()
        if i is None:
            return
        entry = self.entries[i]

        def answered(yes: bool | None) -> None:
            if yes:
                self._save([e for j, e in enumerate(self.entries) if j != i], select=i)

        self.app.push_screen(ConfirmScreen(f"Delete the lore entry “{printable(entry.title)}”?", yes="Delete",
                                           danger=True), answered)

    def action_import(self) -> None:
        def chosen(path: str | None) -> None:
            if path and path.strip():
                self.import_file(Path(path.strip()))

        self.app.push_screen(AskScreen("Import a lore file (.json): its entries are added after these",
                                       placeholder="e.g. ~/worlds/weyford.json"), chosen)

    def import_file(self, path: Path) -> bool:
        """Add the entries of a lore file after the story's own; a bad file changes nothing and says why."""
        try:
            book = read_lore_file(path)
        except SlmError as e:
            self.notify(e.message, title="Not imported", severity="error", timeout=10)
            return False
        n = len(self.entries)
        if self._save([*self.entries, *book.entries], select=n):
            self.notify(f"{len(book.entries)} lore entr{'y' if len(book.entries) == 1 else 'ies'} imported from "
                        f"{path}", timeout=5)
            return True
        return False

    def action_export(self) -> None:
        title = self.session.story.title if self.session.story else "lore"
        suggested = exports_dir() / f"{slug(title)}-lore.json"

        def chosen(path: str | None) -> None:
            if path and path.strip():
                self.export_file(Path(path.strip()).expanduser())

        self.app.push_screen(AskScreen("Export the lorebook as a lore file (.json):", value=str(suggested)), chosen)

    def export_file(self, path: Path, *, replace_file: bool = False) -> None:
        """Write the lorebook as a lore file; an existing file is replaced only after asking."""
        if path.exists() and not replace_file:
            def answered(yes: bool | None) -> None:
                if yes:
                    self.export_file(path, replace_file=True)

            self.app.push_screen(ConfirmScreen(f"{path} exists. Replace it?", yes="Replace", danger=True), answered)
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            written = write_lore_file(path, self.session.lore, replace=replace_file)
        except (SlmError, OSError) as e:
            self.notify(str(e), title="Not exported", severity="error", timeout=10)
            return
        self.notify(f"{len(self.entries)} lore entries written to {written}", title="Export", timeout=6)

    def commands(self) -> Iterator[Command]:
        """This screen's keys, for the command palette."""
        yield from binding_commands(self)
