"""The stories screen: every saved story, to open, rename, delete (after asking), start or export."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import DataTable, Footer, Header, Label, Static

from slmtui.core.errors import SlmError
from slmtui.format import ago
from slmtui.stories.records import EXPORT_FORMATS, Story
from slmtui.stories.store import StoryStore
from slmtui.stories.export import export_story
from slmtui.tui.commands import Command, binding_commands
from slmtui.tui.modals import AskScreen, ConfirmScreen
from slmtui.tui.widgets.text_lines import printable

PREVIEW_CHARS = 1200
TITLE_CHARS = 32


class StoriesScreen(Screen["StoriesScreen.Choice | None"]):
    """All stories, the one touched last first. Dismisses with the story to open, or None to go back."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("enter", "open", "Open", priority=True),
        Binding("n", "new", "New"),
        Binding("r", "rename", "Rename"),
        Binding("d,delete", "delete", "Delete"),
        Binding("m", "export('md')", "Markdown"),
        Binding("t", "export('txt')", "Text"),
    ]

    @dataclass(frozen=True)
    class Choice:
        """Open this story (None: a new, empty one)."""

        story_id: int | None

    def __init__(self, store: StoryStore, *, current: int | None = None) -> None:
        super().__init__()
        self.store = store
        self.current = current
        self.stories: list[Story] = []

    def compose(self) -> ComposeResult:
        yield Header(icon="✎")
        with Horizontal(id="stories-body"):
            with Vertical(id="stories-list"):
                yield DataTable(id="stories-table", cursor_type="row", zebra_stripes=True)
                yield Label("", id="stories-empty")
            yield Static("", id="stories-preview")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "stories"
        table = self.query_one(DataTable)
        table.add_column("Title", key="title")
        table.add_column("Words", key="words")
        table.add_column("Updated", key="updated")
        table.add_column("Model", key="model")
        self.reload()
        table.focus()

    def reload(self, *, select: int | None = None) -> None:
        table = self.query_one(DataTable)
        keep = select if select is not None else self.selected_id() or self.current
        self.stories = self.store.list_stories()
        table.clear()
        for story in self.stories:
            words = len(self.store.story_text(story.id).split())
            marker = "● " if story.id == self.current else "  "
            title = story.title if len(story.title) <= TITLE_CHARS else story.title[: TITLE_CHARS - 1] + "…"
            table.add_row(marker + title, str(words), ago(story.updated), story.model or "–", key=str(story.id))
        empty = self.query_one("#stories-empty", Label)
        empty.update("No stories yet: press n to start one." if not self.stories else "")
        empty.display = not self.stories
        if not self.stories:
            self.query_one("#stories-preview", Static).update("")
        ids = [s.id for s in self.stories]
        if keep in ids:
            table.move_cursor(row=ids.index(keep))

    def selected_id(self) -> int | None:
        table = self.query_one(DataTable)
        if not self.stories or table.cursor_row is None or not 0 <= table.cursor_row < len(self.stories):
            return None
        return self.stories[table.cursor_row].id

    def selected(self) -> Story | None:
        sid = self.selected_id()
        return next((s for s in self.stories if s.id == sid), None)

    # --- actions -----------------------------------------------------------------------------------------------

    def action_back(self) -> None:
        self.dismiss(None)

    def action_open(self) -> None:
        story = self.selected()
        if story is not None:
            self.dismiss(self.Choice(story.id))

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        story = self.selected()
        preview = self.query_one("#stories-preview", Static)
        if story is None:
            preview.update("")
            return
        text = self.store.story_text(story.id)
        if len(text) > PREVIEW_CHARS:  # the end of the story: where the writer picks it up
            text = "…" + text[-PREVIEW_CHARS:]
        preview.update(Content(printable(text) or "(empty)"))
        preview.border_title = story.title
        preview.border_subtitle = f"memory: {story.memory[:30]}…" if len(story.memory) > 30 else (
            f"memory: {story.memory}" if story.memory else "")

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_new(self) -> None:
        self.dismiss(self.Choice(None))

    def action_rename(self) -> None:
        story = self.selected()
        if story is None:
            return

        def renamed(title: str | None) -> None:
            if title is not None:
                self.store.rename_story(story.id, title)
                self.reload(select=story.id)

        self.app.push_screen(
            AskScreen("Rename the story (empty: its opening words)", value=story.title if story.title_is_set else "",
                      placeholder=story.title),
            renamed,
        )

    def action_delete(self) -> None:
        story = self.selected()
        if story is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.store.delete_story(story.id)
                self.notify(f"Deleted “{story.title}”.", timeout=4)
                self.reload()

        self.app.push_screen(
            ConfirmScreen(f"Delete “{story.title}” and every branch of it? This cannot be undone.",
                          yes="Delete", danger=True),
            answered,
        )

    def action_export(self, fmt: str) -> None:
        story = self.selected()
        if story is None:
            return
        try:
            path = export_story(self.store, story.id, fmt)
        except SlmError as e:
            self.notify(str(e), title="Export failed", severity="error", timeout=10)
            return
        self.notify(f"Exported as {EXPORT_FORMATS[fmt]} to {path}", title="Export", timeout=8)

    def commands(self) -> Iterator[Command]:
        yield from binding_commands(self)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("open", "rename", "delete", "export") and not self.stories:
            return None
        return True
