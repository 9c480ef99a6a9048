"""Which part of the story the model sees: a bar over the whole story, the window lit at its end."""

from __future__ import annotations

from textual.content import Content, Span
from textual.reactive import reactive
from textual.widget import Widget

from slmtui.format import plural
from slmtui.writing.context import Window


class ContextMeter(Widget):
    """``[░░░░████]`` sees the last 52 of 310 tokens + 12 memory + 30 lore + 9 note. Drawn from the session's
    ``Window``, the one the status line's ``ctx`` reads too, so the two never disagree."""

    COMPONENT_CLASSES = {"context-meter--seen", "context-meter--unseen", "context-meter--memory"}

    window: reactive[Window | None] = reactive(None)
    """What the model sees now (None: no model loaded)."""

    def render(self) -> Content:
        window = self.window
        if window is None or not window.context_length:
            return Content("context: no model loaded")
        total, seen = window.story_tokens, min(window.window_tokens, window.story_tokens)
        memory, lore, note = window.memory_tokens, window.lore_tokens, window.note_tokens
        if total == 0:
            words = f"empty story · {plural(window.context_length, 'token')} of context"
        elif seen >= total:
            words = f"model sees all {plural(total, 'token')}" if total > 1 else "model sees the 1 token"
        else:
            words = f"model sees the last {seen} of {plural(total, 'token')}"
        if memory:
            words += f" + {memory} memory"
        if lore:
            words += f" + {lore} lore"
        if note:
            words += f" + {note} note"
        if len(words) + 12 > self.size.width:  # narrow: the numbers only
            words = (("empty story" if total == 0 else f"sees {seen}/{total}") + (f" +{memory} mem" if memory else "")
                     + (f" +{lore} lore" if lore else "") + (f" +{note} note" if note else ""))
        bar_width = max(4, min(40, self.size.width - len(words) - 3))
        memory_cells = 0
        if memory:
            memory_cells = max(1, round(bar_width * memory / window.context_length / 4))
        story_cells = bar_width - memory_cells
        if total == 0:
            seen_cells = 0  # nothing to see yet
        elif seen >= total:
            seen_cells = story_cells
        else:
            seen_cells = max(1, round(story_cells * seen / total))
        unseen_cells = story_cells - seen_cells
        bar = "▪" * memory_cells + "░" * unseen_cells + "█" * seen_cells
        style = self.get_visual_style
        spans = [
            Span(0, memory_cells, style("context-meter--memory", partial=True)),
            Span(memory_cells, memory_cells + unseen_cells, style("context-meter--unseen", partial=True)),
            Span(memory_cells + unseen_cells, bar_width, style("context-meter--seen", partial=True)),
        ]
        return Content(bar + "  " + words, spans=spans)
