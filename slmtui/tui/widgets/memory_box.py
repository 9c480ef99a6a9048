"""Memory and author's note: short texts the model sees beside the story (as story front ends keep them).

The memory heads the model's window; the author's note sits a few lines before its end (writing/context.py).
Both are the same box with another title: ``NoteBox`` is ``MemoryBox`` with its own words and text id."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import TextArea


class MemoryBox(Vertical):
    """A small text area; posts ``MemoryBox.Changed`` when the user leaves it with different text."""

    TITLE = "Memory"
    SUBTITLE = "always in the model's view"
    TEXT_ID = "memory-text"

    @dataclass
    class Changed(Message):
        """The text changed (posted on leaving the box, not on every key)."""

        box: MemoryBox
        text: str

        @property
        def control(self) -> MemoryBox:
            return self.box

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._saved = ""

    def compose(self) -> ComposeResult:
        yield TextArea(id=self.TEXT_ID, soft_wrap=True, show_line_numbers=False, compact=True)

    def on_mount(self) -> None:
        self.border_title = self.TITLE
        self.border_subtitle = self.SUBTITLE

    @property
    def text(self) -> str:
        return self.query_one(f"#{self.TEXT_ID}", TextArea).text

    @text.setter
    def text(self, value: str) -> None:
        """Set by the screen (a story opened): no Changed message."""
        self._saved = value
        self.query_one(f"#{self.TEXT_ID}", TextArea).load_text(value)

    def on_descendant_blur(self) -> None:
        self.commit()

    def commit(self) -> None:
        if self.text != self._saved:
            self._saved = self.text
            self.post_message(self.Changed(self, self.text))


class NoteBox(MemoryBox):
    """The author's note: steers the next words from a few lines before the end of the model's window."""

    TITLE = "Author's note"
    SUBTITLE = "a few lines before the end"
    TEXT_ID = "note-text"
