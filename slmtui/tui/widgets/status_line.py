"""One line under the story: the model, its speed, how full its context is, and what it is doing."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Label


class StatusLine(Horizontal):
    """model · tokens/s · tokens in context / context length · state. The screen sets the attributes."""

    model_name: reactive[str] = reactive("no model")
    """The model's name (its folder's name)."""
    tokens_per_second: reactive[float | None] = reactive(None)
    """The speed of the current or last continuation; None before the first."""
    context_used: reactive[int] = reactive(0)
    """Tokens the model sees now: memory plus the story's window."""
    context_length: reactive[int] = reactive(0)
    """The model's block size; 0 while no model is loaded."""
    state: reactive[str] = reactive("loading model…")
    """"loading model…", "ready", "writing…", "stopped", or what went wrong."""

    def compose(self) -> ComposeResult:
        yield Label(id="status-model")
        yield Label(id="status-speed")
        yield Label(id="status-context")
        yield Label(id="status-state")

    _ready = False

    def on_mount(self) -> None:
        self._ready = True  # is_mounted is still False here, and the labels need their first text
        for name in ("model_name", "tokens_per_second", "context_used", "state"):
            getattr(self, f"watch_{name}")()

    def watch_model_name(self) -> None:
        if self._ready:
            self.query_one("#status-model", Label).update(self.model_name)

    def watch_tokens_per_second(self) -> None:
        if self._ready:
            rate = self.tokens_per_second
            self.query_one("#status-speed", Label).update("– tok/s" if rate is None else f"{rate:,.1f} tok/s")

    def watch_context_used(self) -> None:
        if self._ready:
            length = self.context_length or "–"
            self.query_one("#status-context", Label).update(f"ctx {self.context_used}/{length}")

    watch_context_length = watch_context_used

    def watch_state(self) -> None:
        if self._ready:
            label = self.query_one("#status-state", Label)
            label.update(self.state)
            label.set_class(self.state == "writing…", "-busy")
            label.set_class(self.state.startswith(("error", "no model")), "-error")
