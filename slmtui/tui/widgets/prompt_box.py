"""Where the user writes: several paragraphs, pasted text; one key sends, another breaks the line.

Both keys are bindings with ids (``send``, ``newline``), so the footer names them and config.toml's ``[keys]``
rebinds them like any other (``send = "ctrl+enter"``, ``newline = "enter"``). Sending an empty box asks the
model to go on.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.binding import Binding, BindingsMap
from textual.message import Message
from textual.widgets import TextArea

PLACEHOLDER = "Write on · Enter sends · ctrl+j new line · empty Enter continues · Esc stops"


class PromptBox(TextArea):
    """A few lines of TextArea; posts ``PromptBox.Submitted`` with the text (empty: continue the story)."""

    BINDINGS = [
        # Not priority bindings: the app runs those as a key arrives, while the characters typed just before it
        # still wait in this widget's queue, so a fast typist's (or a paste's) Enter sent the box half-filled.
        # ``_on_key`` runs them in turn instead, before TextArea's own Enter (a newline) can.
        Binding("enter", "send", "Send", id="send"),
        Binding("ctrl+j,shift+enter", "newline", "New line", id="newline", key_display="ctrl+j"),
    ]
    OWN_KEYS = frozenset({"send", "newline"})
    """Binding ids whose keys this box handles itself, in the order the keys came (whatever keys config.toml gives)."""

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
        self._keyed: tuple[object, BindingsMap] | None = None

    @property
    def value(self) -> str:
        return self.text

    @value.setter
    def value(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)

    def _own_bindings(self) -> BindingsMap:
        """This box's bindings with the user's keymap (config.toml's [keys]) applied, as the screen applies it."""
        keymap = self.app._keymap  # Textual keeps the keymap there and applies it to copies when keys arrive
        if self._keyed is None or self._keyed[0] is not keymap:
            bindings = self._bindings.copy()
            if keymap:
                bindings.apply_keymap(keymap)
            self._keyed = (keymap, bindings)
        return self._keyed[1]

    async def _on_key(self, event: events.Key) -> None:
        for binding in self._own_bindings().key_to_bindings.get(event.key, ()):
            if binding.id in self.OWN_KEYS:
                event.stop()
                event.prevent_default()
                await self.run_action(binding.action)
                return
        await super()._on_key(event)

    def action_send(self) -> None:
        text = self.text
        self.load_text("")
        self.post_message(self.Submitted(self, text))

    def action_newline(self) -> None:
        self.insert("\n")
