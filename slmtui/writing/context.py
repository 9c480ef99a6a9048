"""Which part of the story the model sees: the arithmetic behind the context meter and the dimmed text.

The engine reads memory, then the story's last tokens (``Decoder``: memory capped at half the context,
the window sliding once it is full). These functions say where that window begins in the story's text, so
the writer can dim what lies before it. No Textual here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from slmtui.engine.tokenizer import Tokenizer
from slmtui.writing.stream import TokenMark


@dataclass(frozen=True)
class Window:
    story_tokens: int
    """Tokens in the whole story."""
    window_tokens: int
    """How many of them, the last ones, the model sees."""
    start: int
    """Offset in the story's text where the seen part begins."""


def memory_tokens(tokenizer: Tokenizer, memory: str, block_size: int) -> int:
    """Tokens of memory the model reads (the engine keeps at most half the context for it)."""
    return min(len(tokenizer.encode(memory)) if memory else 0, block_size // 2)


def idle_window(tokenizer: Tokenizer, text: str, block_size: int, memory: int) -> Window:
    """What the model would see if it went on from ``text`` now."""
    ids = tokenizer.encode(text) if text else []
    window = min(len(ids), block_size - memory)
    unseen = len(ids) - window
    return Window(len(ids), window, len(tokenizer.decode(ids[:unseen])) if unseen > 0 else 0)


class StreamWindow:
    """What the model saw for each token of one continuation (the window slides as the story grows)."""

    def __init__(self, tokenizer: Tokenizer, prompt: str, *, passage_start: int, first_mark: int) -> None:
        """``prompt``: the story up to and including the passage's text so far; ``passage_start``: where the
        passage begins in the story's text; ``first_mark``: how many token marks the passage already has."""
        self.tokenizer = tokenizer
        self.prompt_ids = tokenizer.encode(prompt)
        # An empty prompt is read as one <|endoftext|> token: it counts, but has no text.
        self.prompt_tokens = len(self.prompt_ids) or 1
        self.passage_start = passage_start
        self.first_mark = first_mark
        self._cache: tuple[int, int] = (-1, 0)

    def at(self, produced: int, window_tokens: int, marks: Sequence[TokenMark]) -> Window:
        """The window after ``produced`` new tokens, the last drawn from ``window_tokens`` story tokens
        (``TokenEvent.window_tokens``: the tokens before it). The newest token is counted as seen: the
        model reads it next."""
        total = self.prompt_tokens + produced
        unseen = max(0, total - 1 - window_tokens)
        if self._cache[0] != unseen:  # the window moves once every quarter context: keep its start
            if unseen <= 0:
                start = 0
            elif unseen <= self.prompt_tokens:
                start = len(self.tokenizer.decode(self.prompt_ids[:unseen]))
            else:
                k = self.first_mark + unseen - self.prompt_tokens - 1  # the last new token out of view
                start = self.passage_start + (marks[k].end if 0 <= k < len(marks) else 0)
            self._cache = (unseen, start)
        return Window(total, total - unseen, self._cache[1])
