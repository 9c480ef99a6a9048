"""Which part of the story the model sees: the arithmetic behind the context meter and the dimmed text.

The engine reads memory, then the story's last tokens (``Decoder``: memory capped at half the context,
the window sliding once it is full). These functions say where that window begins in the story's text, so
the writer can dim what lies before it. No Textual here.

The author's note is woven into the story's tokens when a continuation starts: ``note_block(note)`` goes in
just before the story's last ``NOTE_DEPTH`` tokens (at the very start of a shorter story; in a context too small
for that, halfway into the room that memory and note leave: ``note_depth``), so the model reads it a few lines
before the point it writes from, where it steers the next words most, and the memory stays at the head. The note is in the prompt, not the story's text; as the model writes on, it stays where it was put.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from slmtui.engine.tokenizer import Tokenizer
from slmtui.writing.stream import TokenMark


@dataclass(frozen=True)
class Window:
    """What the model sees: the one source of the context meter and the status line's ``ctx`` figure."""

    story_tokens: int
    """Tokens in the whole story."""
    window_tokens: int
    """How many of them, the last ones, the model sees."""
    start: int
    """Offset in the story's text where the seen part begins."""
    memory_tokens: int = 0
    """Memory tokens at the head of the window (as the engine keeps them: at most half the context)."""
    note_tokens: int = 0
    """Author's note tokens woven in a few lines before the end."""
    context_length: int = 0
    """The model's block size."""

    @property
    def used(self) -> int:
        """Tokens in the model's window now: memory, note and the story's part (never more than the context)."""
        total = self.memory_tokens + self.note_tokens + self.window_tokens
        return min(total, self.context_length) if self.context_length else total


NOTE_DEPTH = 48
"""How many of the story's last tokens come after the author's note (about three lines of prose)."""


def note_block(note: str) -> str:
    """The note as the model reads it: a bracketed line of its own, as story front ends write it."""
    return f"\n[{' '.join(note.split())}]\n" if note.strip() else ""


def note_tokens(tokenizer: Tokenizer, note: str) -> int:
    block = note_block(note)
    return len(tokenizer.encode(block)) if block else 0


def note_depth(block_size: int, memory: int, note: int) -> int:
    """How many story tokens follow the note: ``NOTE_DEPTH``, or fewer when the window cannot hold memory,
    note and that many (a tiny model's 64 tokens), so the note is always in view when writing starts."""
    return max(0, min(NOTE_DEPTH, (block_size - memory - note) // 2))


def prompt_with_note(tokenizer: Tokenizer, text: str, note: str, *, depth: int = NOTE_DEPTH) -> str | list[int]:
    """What the engine is given to continue ``text``: the text itself without a note, else its tokens with the
    note's tokens inserted ``depth`` tokens before the end."""
    block = note_block(note)
    if not block:
        return text
    ids = tokenizer.encode(text) if text else []
    cut = max(0, len(ids) - depth)
    return ids[:cut] + tokenizer.encode(block) + ids[cut:]


def memory_tokens(tokenizer: Tokenizer, memory: str, block_size: int) -> int:
    """Tokens of memory the model reads (the engine keeps at most half the context for it)."""
    return min(len(tokenizer.encode(memory)) if memory else 0, block_size // 2)


def idle_window(tokenizer: Tokenizer, text: str, block_size: int, memory: int, note: int = 0) -> Window:
    """What the model would see if it went on from ``text`` now (``note``: author's note tokens, which take
    room in the window)."""
    ids = tokenizer.encode(text) if text else []
    window = min(len(ids), max(0, block_size - memory - note))
    unseen = len(ids) - window
    return Window(len(ids), window, len(tokenizer.decode(ids[:unseen])) if unseen > 0 else 0,
                  memory, min(note, max(0, block_size - memory)), block_size)


class StreamWindow:
    """What the model saw for each token of one continuation (the window slides as the story grows)."""

    def __init__(self, tokenizer: Tokenizer, prompt: str, *, passage_start: int, first_mark: int,
                 block_size: int, memory: int = 0, note: int = 0) -> None:
        """``prompt``: the story up to and including the passage's text so far; ``passage_start``: where the
        passage begins in the story's text; ``first_mark``: how many token marks the passage already has;
        ``block_size``: the model's context; ``memory``: the memory's tokens at the window's head; ``note``:
        the author's note's tokens woven into what the engine reads (they are in its window)."""
        self.tokenizer = tokenizer
        self.block_size = block_size
        self.memory = memory
        self.note = note
        self.prompt_ids = tokenizer.encode(prompt)
        # An empty prompt is read as one <|endoftext|> token: it counts, but has no text.
        self.prompt_tokens = len(self.prompt_ids) or 1
        self.passage_start = passage_start
        self.first_mark = first_mark
        self._cache: tuple[int, int] = (-1, 0)

    def at(self, produced: int, window_tokens: int, marks: Sequence[TokenMark]) -> Window:
        """The window after ``produced`` new tokens, the last drawn from ``window_tokens`` story tokens
        (``TokenEvent.window_tokens``: the tokens before it, the note's among them). The newest token is
        counted as seen, the model reads it next, but never past the context: a full window slides before
        the next token (the engine's Decoder), so it is never more than the room memory leaves."""
        total = self.prompt_tokens + produced
        seen = min(window_tokens + 1, max(1, self.block_size - self.memory)) - self.note
        unseen = max(0, total - max(0, seen))
        if self._cache[0] != unseen:  # the window moves once every quarter context: keep its start
            if unseen <= 0:
                start = 0
            elif unseen <= self.prompt_tokens:
                start = len(self.tokenizer.decode(self.prompt_ids[:unseen]))
            else:
                k = self.first_mark + unseen - self.prompt_tokens - 1  # the last new token out of view
                start = self.passage_start + (marks[k].end if 0 <= k < len(marks) else 0)
            self._cache = (unseen, start)
        return Window(total, total - unseen, self._cache[1], self.memory, self.note, self.block_size)
