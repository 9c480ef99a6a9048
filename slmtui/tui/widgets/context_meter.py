"""Which part of the story the model sees: a bar over the whole story, the window lit at its end."""

from __future__ import annotations

from textual.content import Content, Span
from textual.reactive import reactive
from textual.widget import Widget


class ContextMeter(Widget):
    """``[░░░░████]`` sees the last 52 of 310 tokens + 12 memory + 30 lore + 9 note. The screen sets the numbers
    (the lore's from the session's context: ``ModelContext.lore_tokens``)."""

    COMPONENT_CLASSES = {"context-meter--seen", "context-meter--unseen", "context-meter--memory"}

    story_tokens: reactive[int] = reactive(0)
    """Tokens in the whole story."""
    window_tokens: reactive[int] = reactive(0)
    """How many of the story's last tokens the model sees."""
    memory_tokens: reactive[int] = reactive(0)
    """Memory tokens, always seen, ahead of the window."""
    lore_tokens: reactive[int] = reactive(0)
    """Lore tokens the model reads next, between memory and the window."""
    note_tokens: reactive[int] = reactive(0)
    """Author's note tokens, seen a few lines before the end of the window."""
    context_length: reactive[int] = reactive(0)
    """The model's block size (0: no model yet)."""

    def render(self) -> Content:
        total, seen, memory = self.story_tokens, min(self.window_tokens, self.story_tokens), self.memory_tokens
        if not self.context_length:
            return Content("context: no model loaded")
        if total == 0:
            words = f"empty story · {self.context_length} tokens of context"
        elif seen >= total:
            words = f"model sees all {total} tokens"
        else:
            words = f"model sees the last {seen} of {total} tokens"
        note = self.note_tokens
        lore = self.lore_tokens
        if memory:
            words += f" + {memory} memory"
        if lore:
            words += f" + {lore} lore"
        if note:
            words += f" + {note} note"
        if len(words) + 12 > self.size.width:  # narrow: the numbers only
            words = (f"sees {seen}/{total}" + (f" +{memory} mem" if memory else "") + (f" +{lore} lore" if lore else "")
                     + (f" +{note} note" if note else ""))
        bar_width = max(4, min(40, self.size.width - len(words) - 3))
        memory_cells = 0
        if memory:
            memory_cells = max(1, round(bar_width * memory / self.context_length / 4))
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
