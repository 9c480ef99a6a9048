"""The story's bookmarks in one list: each name with its passage's opening words and its place in the tree;
Enter jumps there, ``d`` forgets a mark (the passage stays). ctrl+b in the writer and ``b`` in the History
tree make them.

The marks are the writing session's: the dialog reads them and asks it to delete one; the writer does the jump
(``dismiss`` with the bookmark chosen).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from slmtui.stories.records import Bookmark
from slmtui.tui.screens.search import PlacesList
from slmtui.writing.session import WritingSession

OPENING_CHARS = 70
EMPTY = ("No bookmarks in this story yet. ctrl+b marks the passage you are on; b in the History tree (ctrl+g) "
         "marks any passage.")
HINT = "Enter jumps · d forgets the mark (the passage stays) · Esc closes"


class BookmarksScreen(ModalScreen[Bookmark | None]):
    """Every bookmark of the open story; Enter reads the story to the one chosen."""

    CSS_PATH = "tree.tcss"
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close"),
        Binding("d,delete", "forget", "Forget the mark"),
    ]

    def __init__(self, session: WritingSession) -> None:
        super().__init__(classes="dialog-screen")
        self.session = session
        self.marks: list[Bookmark] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog tree-dialog"):
            yield Label("Bookmarks", classes="dialog-question")
            yield Label(EMPTY, id="bookmarks-empty")
            yield PlacesList(id="bookmarks-list")
            yield Label(HINT, classes="dialog-hint")

    def on_mount(self) -> None:
        self._fill()
        self.query_one(PlacesList).focus()

    def _fill(self, highlight: int = 0) -> None:
        session, marks = self.session, self.query_one(PlacesList)
        self.marks = [b for b in session.bookmarks if session.passage(b.passage_id) is not None]
        marks.clear_options()
        for i, b in enumerate(self.marks):
            place = session.place(b.passage_id)
            passage = session.passage(b.passage_id)
            if place is None or passage is None:
                continue
            words = " ".join(passage.text.split()) or "(empty)"
            if len(words) > OPENING_CHARS:
                words = words[: OPENING_CHARS - 1].rsplit(" ", 1)[0] + "…"
            marks.add_option(Option(marks.row(words, place, name=b.name), id=str(i)))
        if self.marks:
            marks.highlighted = min(highlight, len(self.marks) - 1)
        self.query_one("#bookmarks-empty").display = not self.marks
        marks.display = bool(self.marks)

    @on(OptionList.OptionSelected, "#bookmarks-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.marks[int(event.option.id or 0)])

    def action_forget(self) -> None:
        index = self.query_one(PlacesList).highlighted
        if index is None or not self.marks:
            return
        mark = self.marks[index]
        self.session.delete_bookmark(mark.name)
        self.notify(f"Forgot the bookmark “{mark.name}”; its passage stays in the tree.", timeout=4)
        self._fill(index)
