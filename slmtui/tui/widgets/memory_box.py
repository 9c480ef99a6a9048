"""Memory: a short text the model always sees ahead of the story's window (as story front ends keep one)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import TextArea


class MemoryBox(Vertical):
    """A small text area; posts ``MemoryBox.Changed`` when the user leaves it with different text."""

    @dataclass
    class Changed(Message):
        """The memory text changed (posted on leaving the box, not on every key)."""

        text: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._saved = ""

    def compose(self) -> ComposeResult:
        yield TextArea(id="memory-text", soft_wrap=True, show_line_numbers=False, compact=True)

    def on_mount(self) -> None:
        self.border_title = "Memory"
        self.border_subtitle = "always in the model's view"

    @property
    def text(self) -> str:
        return self.query_one("#memory-text", TextArea).text

    @text.setter
    def text(self, value: str) -> None:
        """Set by the screen (a story opened): no Changed message."""
        self._saved = value
        self.query_one("#memory-text", TextArea).load_text(value)

    def on_descendant_blur(self) -> None:
        self.commit()

    def commit(self) -> None:
        if self.text != self._saved:
            self._saved = self.text
            self.post_message(self.Changed(self.text))
