"""Where the user writes: several paragraphs, pasted text; one key sends, another breaks the line.

Both keys are bindings with ids (``send``, ``newline``), so the footer names them and config.toml's ``[keys]``
rebinds them like any other (``send = "ctrl+enter"``, ``newline = "enter"``). Sending an empty box asks the
model to go on.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

PLACEHOLDER = "Write on · Enter sends · ctrl+j new line · empty Enter continues · Esc stops"


class PromptBox(TextArea):
    """A few lines of TextArea; posts ``PromptBox.Submitted`` with the text (empty: continue the story)."""

    BINDINGS = [
        # priority: checked before TextArea's own Enter, which would insert a newline.
        Binding("enter", "send", "Send", id="send", priority=True),
        Binding("ctrl+j,shift+enter", "newline", "New line", id="newline", key_display="ctrl+j"),
    ]

    @dataclass
    class Submitted(Message):
        """The user sent the box's text (it is cleared)."""

        prompt: PromptBox
        value: str

        @property
        def control(self) -> PromptBox:
            return self.prompt

    YIELDS = frozenset({"undo", "redo", "select_line", "select_all"})
    """TextArea's actions whose keys (ctrl+z, ctrl+y, f6, f7) are the writer's and the app's here: the story's
    undo and redo, the models screen."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # False lets the key go on up to the screen's and the app's bindings.
        return False if action in self.YIELDS else super().check_action(action, parameters)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, show_line_numbers=False, compact=True, placeholder=PLACEHOLDER,
                         tab_behavior="focus")

    @property
    def value(self) -> str:
        return self.text

    @value.setter
    def value(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)

    def action_send(self) -> None:
        text = self.text
        self.load_text("")
        self.post_message(self.Submitted(self, text))

    def action_newline(self) -> None:
        self.insert("\n")
