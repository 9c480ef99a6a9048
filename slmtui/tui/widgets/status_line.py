"""One line under the story: the model, its speed, how full its context is, and what it is doing.

Drawn by ``render`` into its fixed one-line box: updating it every frame while the model writes repaints this
line only (label widgets would re-lay-out the whole screen each time).
"""

from __future__ import annotations

from textual.content import Content, Span
from textual.reactive import reactive
from textual.widget import Widget

from slmtui.writing.context import Window

GAP = "   "


class StatusLine(Widget):
    """model · tokens/s · tokens in context / context length · state. The screen sets the attributes."""

    COMPONENT_CLASSES = {"status-line--model", "status-line--state", "status-line--busy", "status-line--error"}

    model_name: reactive[str] = reactive("no model")
    """The model's name (its folder's name)."""
    tokens_per_second: reactive[float | None] = reactive(None)
    """The speed of the current or last continuation; None before the first."""
    window: reactive[Window | None] = reactive(None)
    """What the model sees now (memory, note, the story's window; the context meter draws the same one);
    None while no model is loaded."""
    state: reactive[str] = reactive("loading model…")
    """"loading model…", "ready", "writing…", "stopped", or what went wrong."""
    state_kind: reactive[str] = reactive("idle")
    """How ``state`` is styled: "idle", "busy" (the model writes) or "error"."""

    @property
    def speed_text(self) -> str:
        rate = self.tokens_per_second
        return "– tok/s" if rate is None else f"{rate:,.1f} tok/s"

    @property
    def context_text(self) -> str:
        window = self.window
        return f"ctx {window.used}/{window.context_length}" if window is not None else "ctx –"

    def render(self) -> Content:
        left = GAP.join((self.model_name, self.speed_text, self.context_text))
        state = self.state
        width = self.content_region.width
        pad = max(1, width - len(left) - len(state))
        text = left + " " * pad + state
        state_class = {"busy": "busy", "error": "error"}.get(self.state_kind, "state")
        start = len(left) + pad
        return Content(text, spans=[
            Span(0, len(self.model_name), self.get_visual_style("status-line--model", partial=True)),
            Span(start, start + len(state), self.get_visual_style(f"status-line--{state_class}", partial=True)),
        ])
