"""What the model reads, assembled in one place, and which part of the story it sees. No Textual here.

``build_context`` is the one context builder: the app's continuations (one or N candidates), ``slmtui generate``
and the context viewer all take what the model reads from it, so they cannot disagree. The model reads

    memory · the active lore entries · the story's last tokens, the author's note woven in a few lines before the end

The engine keeps a prefix (``Decoder``'s memory: at most half the context, read at the head of every window
as it slides) and the story's tokens after it. The prefix is the memory's tokens (cut to half the context when
longer) followed by the lore block (``writing/lore.py``), fitted into what the memory leaves of that half, so
the engine's cap never cuts it: what this module says the model reads is exactly what the decoder reads.
``ModelContext.window`` is that window for the first new token; the functions below it say where the window
begins in the story's text, so the writer can dim what lies before it.

The author's note is woven into the story's tokens when a continuation starts: ``note_block(note)`` goes in
just before the story's last ``NOTE_DEPTH`` tokens (at the very start of a shorter story; in a context too small
for that, halfway into the room that memory and note leave: ``note_depth``), so the model reads it a few lines
before the point it writes from, where it steers the next words most, and the memory stays at the head. The note is in the prompt, not the story's text; as the model writes on, it stays where it was put.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from slmtui.engine.tokenizer import Tokenizer, start_ids
from slmtui.format import plural
from slmtui.stories.lorebook import LoreEntry
from slmtui.writing.lore import LoreContext, LoreSettings, build_lore
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
    lore_tokens: int = 0
    """Lore tokens between the memory and the story (``ModelContext.lore_tokens``)."""

    @property
    def used(self) -> int:
        """Tokens in the model's window now: memory, lore, note and the story's part (never more than the
        context)."""
        total = self.memory_tokens + self.lore_tokens + self.note_tokens + self.window_tokens
        return min(total, self.context_length) if self.context_length else total


NOTE_DEPTH = 48
"""How many of the story's last tokens come after the author's note (about three lines of prose)."""


def note_block(note: str) -> str:
    """The note as the model reads it: a bracketed line of its own, as story front ends write it."""
    return f"\n[{' '.join(note.split())}]\n" if note.strip() else ""


def note_depth(block_size: int, memory: int, note: int) -> int:
    """How many story tokens follow the note: ``NOTE_DEPTH``, or fewer when the window cannot hold memory,
    note and that many (a tiny model's 64 tokens), so the note is always in view when writing starts."""
    return max(0, min(NOTE_DEPTH, (block_size - memory - note) // 2))


def memory_tokens(tokenizer: Tokenizer, memory: str, block_size: int) -> int:
    """Tokens of memory the model reads (the engine keeps at most half the context for it)."""
    return min(len(tokenizer.encode(memory)) if memory else 0, block_size // 2)


def idle_window(tokenizer: Tokenizer, text: str, block_size: int, memory: int, note: int = 0,
                lore: int = 0, *, ids: Sequence[int] | None = None) -> Window:
    """What the model would see if it went on from ``text`` now (``memory``, ``lore``, ``note``: their tokens,
    which take room in the window; ``ids``: ``text``'s tokens when the caller has them, as a context does)."""
    if ids is None:
        ids = tokenizer.encode(text) if text else []
    prefix = memory + lore
    window = min(len(ids), max(0, block_size - prefix - note))
    unseen = len(ids) - window
    return Window(len(ids), window, len(tokenizer.decode(list(ids[:unseen]))) if unseen > 0 else 0,
                  memory, min(note, max(0, block_size - prefix)), block_size, lore)


class StreamWindow:
    """What the model saw for each token of one continuation (the window slides as the story grows)."""

    def __init__(self, tokenizer: Tokenizer, prompt: str, *, passage_start: int, first_mark: int,
                 block_size: int, memory: int = 0, note: int = 0, lore: int = 0) -> None:
        """``prompt``: the story up to and including the passage's text so far; ``passage_start``: where the
        passage begins in the story's text; ``first_mark``: how many token marks the passage already has;
        ``block_size``: the model's context; ``memory`` and ``lore``: their tokens at the window's head; ``note``:
        the author's note's tokens woven into what the engine reads (they are in its window)."""
        self.tokenizer = tokenizer
        self.block_size = block_size
        self.memory = memory
        self.lore = lore
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
        seen = min(window_tokens + 1, max(1, self.block_size - self.memory - self.lore)) - self.note
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
        return Window(total, total - unseen, self._cache[1], self.memory, self.note, self.block_size,
                      self.lore)


PartKind = Literal["memory", "lore", "story", "note"]


@dataclass(frozen=True)
class Part:
    """One piece of what the model reads, in reading order: its kind, a label for people, its tokens."""

    kind: PartKind
    label: str
    """'memory', 'lore "Ann"', 'story', "author's note"."""
    ids: tuple[int, ...]
    text: str
    """The tokens decoded: what the model reads, as text."""
    why: str = ""
    """For a lore entry: what brought it in ('key "Ann" in the story')."""

    @property
    def n_tokens(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class ModelContext:
    """What the model reads for the next token of a continuation of ``story`` (``build_context``).

    ``prompt`` and ``prefix`` are what the engine is given (``Generator.stream(prompt, memory=prefix)``);
    everything else says what they hold, for the meter, the viewer and ``generate --show-context``."""

    block_size: int
    memory_ids: tuple[int, ...]
    """The memory's tokens as the model reads them: cut to half the context when longer, and a line break
    after them when lore follows a memory that does not end in one."""
    memory_cut: int
    """Memory tokens left out (beyond half the context)."""
    lore: LoreContext
    story_ids: tuple[int, ...]
    """The story's own tokens, all of them."""
    note_ids: tuple[int, ...]
    """The author's note's tokens (``note_block``), empty without a note."""
    note_at: int
    """Where the note goes in ``story_ids``: that many story tokens come before it."""
    start_ids: tuple[int, ...] = field(default=())
    """What the engine reads for an empty story (one <|endoftext|>); empty when the story has tokens."""

    @property
    def prefix(self) -> list[int]:
        """The engine's ``memory``: the tokens at the head of every window (memory, then lore)."""
        return [*self.memory_ids, *self.lore.ids]

    @property
    def prompt(self) -> list[int]:
        """The tokens the engine continues: the story with the note woven in."""
        return [*self.story_ids[: self.note_at], *self.note_ids, *self.story_ids[self.note_at:]]

    @property
    def room(self) -> int:
        """Tokens of the window left for the story and the note after the prefix."""
        return self.block_size - len(self.prefix)

    @property
    def seen(self) -> list[int]:
        """The prompt's tokens the model reads (its last ``room``; the start token for an empty story)."""
        ids = self.prompt or list(self.start_ids)
        return ids[-self.room:] if self.room > 0 else []

    @property
    def window(self) -> list[int]:
        """Exactly the tokens the model reads before it writes the first new one (``Decoder.window``)."""
        return self.prefix + self.seen

    @property
    def story_seen(self) -> int:
        """How many of the story's last tokens are in the window (the note not counted)."""
        return max(0, min(len(self.story_ids), self.room - len(self.note_ids)))

    @property
    def lore_tokens(self) -> int:
        return self.lore.n_tokens

    def parts(self, tokenizer: Tokenizer) -> list[Part]:
        """The window, part by part in reading order: memory, each lore entry, the story's tail (split where
        the note is woven in), the note. Their tokens joined are ``window``."""
        out: list[Part] = []
        if self.memory_ids:
            out.append(Part("memory", "memory", self.memory_ids, tokenizer.decode(self.memory_ids)))
        for e in self.lore.inserted:
            out.append(Part("lore", f"lore \u201c{e.entry.title}\u201d", e.tokens, tokenizer.decode(e.tokens),
                            e.trigger.describe()))
        seen = self.seen
        if not self.prompt:
            if seen:
                out.append(Part("story", "story (empty: the start of a text)", tuple(seen), ""))
            return out
        hidden = len(self.prompt) - len(seen)  # prompt tokens before the window
        before = max(0, self.note_at - hidden)
        pieces: list[tuple[PartKind, str, list[int]]] = [("story", "story", seen[:before])]
        if self.note_ids:
            note_start = before
            pieces.append(("note", "author's note", seen[note_start: note_start + len(self.note_ids)]))
            pieces.append(("story", "story, after the note", seen[note_start + len(self.note_ids):]))
        for kind, label, ids in pieces:
            if ids:
                out.append(Part(kind, label, tuple(ids), tokenizer.decode(ids)))
        return out

    def cuts(self) -> list[str]:
        """What was left out of the window, and why, one line each."""
        out: list[str] = []
        if self.memory_cut:
            out.append(f"memory: its last {self.memory_cut} tokens are left out: memory fills at most half the "
                       f"context ({self.block_size // 2} tokens)")
        out.extend(f"lore {m.message} (it was active: {m.trigger.describe()})" for m in self.lore.left_out)
        out.extend(f"lore: {w}" for w in self.lore.warnings)
        hidden = len(self.story_ids) - self.story_seen
        if hidden > 0:
            out.append(f"story: its first {hidden} of {len(self.story_ids)} tokens are out of view: the window "
                       f"holds {self.story_seen} after memory, lore and the note")
        return out


def build_context(tokenizer: Tokenizer, *, story: str, block_size: int, memory: str = "", note: str = "",
                  lore: Sequence[LoreEntry] = (), lore_settings: LoreSettings | None = None) -> ModelContext:
    """The one context builder (module docstring): what the model reads to continue ``story``."""
    memory_all = tokenizer.encode(memory) if memory else []
    half = block_size // 2  # the decoder's cap on its prefix
    memory_ids = memory_all[:half]
    story_ids = tokenizer.encode(story) if story else []
    block = note_block(note)
    note_ids = tokenizer.encode(block) if block else []
    memory_read = tokenizer.decode(memory_ids) if len(memory_ids) < len(memory_all) else memory
    # Lore starts on a line of its own: after a memory that does not end in a line break, one is read between
    # them (and counted as the memory's), so "Weyford." and "Ann is..." are not read as "Weyford.Ann is...".
    sep = tokenizer.encode("\n") if memory_read and not memory_read.endswith("\n") and lore else []
    lore_ctx = build_lore(lore, tokenizer, story=story, memory=memory_read, note=note,
                          settings=lore_settings or LoreSettings(),
                          block_size=block_size, room=half - len(memory_ids) - len(sep), story_ids=story_ids)
    memory_cut = len(memory_all) - len(memory_ids)
    if lore_ctx.inserted:
        memory_ids = memory_ids + sep
    depth = note_depth(block_size, len(memory_ids) + lore_ctx.n_tokens, len(note_ids))
    note_at = max(0, len(story_ids) - depth) if note_ids else len(story_ids)
    return ModelContext(block_size, tuple(memory_ids), memory_cut, lore_ctx,
                        tuple(story_ids), tuple(note_ids), note_at,
                        () if story_ids or note_ids else tuple(start_ids(tokenizer, [])))


def context_report(ctx: ModelContext, tokenizer: Tokenizer, *, model: str = "the model") -> str:
    """The context as text, part by part with token counts, then what was left out (``generate
    --show-context``; the app's context viewer draws the same parts in colour)."""
    window = ctx.window
    lines = [f"context for {model}: {len(window)} of {ctx.block_size} tokens"]
    for part in ctx.parts(tokenizer):
        why = f" · {part.why}" if part.why else ""
        lines.append(f"── {part.label} · {plural(part.n_tokens, 'token')}{why} ──")
        lines.append(part.text if part.text.endswith("\n") else part.text + "\n")
    cuts = ctx.cuts()
    if cuts:
        lines.append("── left out ──")
        lines.extend(c + "\n" for c in cuts)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
