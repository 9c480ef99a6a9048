"""Which lore entries enter the model's context, in what order, and what they cost: Textual-free.

An entry (``slmtui/stories/lorebook.py``) is **active** when it is enabled and either always on, or one of its
keys occurs in the scanned story tail, in the memory, in the author's note, or in the text of an active entry
that was put in the context (cascading). Active entries are then **fitted** into a token budget.

Activation and fitting run as one breadth-first pass, round by round:

- round 0: the always-on entries, then the entries a key of which is in the story tail, the memory or the note;
- round r + 1: the entries a key of which is in the text of an entry *put in* during round r;
- within a round, entries go in the lorebook's order; each one that fits the budget goes in, one that does not
  is left out (a smaller one after it may still fit), and an entry left out names nothing, so what it would
  have cascaded to does not come in through it.

So every entry put in was triggered by text the model reads, and the report can say by which. The pass ends
after ``max_rounds`` cascade rounds, or sooner when a round adds nothing: no entry is looked at twice, so a
cycle of entries naming each other ends too, after at most as many rounds as there are entries.

The priority (who gets the budget first) is: always on, then named by the story, memory or note, then
cascaded, nearest first, because the writer switched always-on entries on to have them, and an entry named in
what the model reads matters more than one named in another entry. Within that, the lorebook's own order: it is
the writer's, it stays put as the story grows (a trigger's position moves with every word; an order that
followed it would swap entries in and out as the writer types), and it lets the writer decide.

The entries put in are *read* in the lorebook's order, whatever round brought them: the lore block changes only
when an entry comes in or leaves, never because the same entries were triggered another way. Each is its text,
stripped, and one line break, so entries never run together and the story's tail starts on a line of its own.
Their token ids are what the budget counted (``LoreContext.ids``); with a tokenizer that splits at line breaks
(GPT-2's pattern, the default model's) encoding ``LoreContext.text`` gives the same ids.

The scan depth counts the story's last tokens, not the model's window: the window depends on how much lore came
in, and what comes in must not depend on itself.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from slmtui.core.errors import SlmError
from slmtui.stories.lorebook import LoreEntry, LoreKey, show


class TokenCodec(Protocol):
    """What lore needs of a tokenizer (``slmtui.engine.tokenizer.Tokenizer`` is one)."""

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Iterable[int]) -> str: ...


@dataclass(frozen=True)
class LoreLimit:
    """A lore setting's bounds, both included, and why they are there (said when a value is refused)."""

    low: float
    high: float
    why: str


@dataclass(frozen=True)
class LoreSettings:
    """How lore is found and how much room it gets; the bounds are in ``LORE_LIMITS``, checked when built.

    Defaults are sized for the default model (a 256-token context)."""

    scan_depth: int = 256
    """How many of the story's last tokens are searched for keys: about a page of prose, and the default model's
    whole context, so a name mentioned on the page being written brings its entry in even once it has
    scrolled out of the model's view (bringing it back into view is what lore is for)."""
    budget_share: float = 0.25
    """The share of the context lore may fill (64 tokens of the default model's 256: two or three short
    entries), leaving the rest to memory, the note and the story itself."""
    max_rounds: int = 3
    """Cascade rounds after the first: 0 switches cascading off; 3 follows a chain a character -> her town ->
    its ruler -> his castle, and stops a long chain from filling the budget with things far from the page."""

    def __post_init__(self) -> None:
        for name, limit in LORE_LIMITS.items():
            value = getattr(self, name)
            share = name == "budget_share"
            if isinstance(value, bool) or not isinstance(value, (int, float) if share else int):
                raise SlmError(f"lore setting {name} is {value!r}, not {'a number' if share else 'a whole number'}")
            if not limit.low <= value <= limit.high:
                raise SlmError(f"lore setting {name} is {value}; it runs {_num(limit.low)} to {_num(limit.high)} "
                               f"({limit.why})")

    def budget(self, block_size: int) -> int:
        """The lore budget in tokens for a model whose context holds ``block_size`` tokens."""
        return int(block_size * self.budget_share)


LORE_LIMITS: dict[str, LoreLimit] = {
    "scan_depth": LoreLimit(0, 4096, "0 searches only memory and the note; past 4096 tokens (16 pages) the search "
                                 "costs more than a keystroke may and finds names long gone from the page"),
    "budget_share": LoreLimit(0.0, 0.5, "the engine keeps at most half the context for memory; lore beyond half would "
                                    "leave too little story for the model to continue"),
    "max_rounds": LoreLimit(0, 16, "a chain of more than 16 entries, each named in the one before, is no longer "
                                 "about the page being written"),
}
"""Every lore setting's bounds and why, in one place (the settings file and the app's form read these)."""


def _num(x: float) -> str:
    return f"{x:g}"


Source = Literal["always", "story", "memory", "note", "entry"]


@dataclass(frozen=True)
class Trigger:
    """Why an entry is active: always on, or ``key`` found at ``start:end`` of a source's text.

    ``start``/``end`` are offsets in the whole story's text (``source == "story"``), in the memory, in the
    note, or in the text of the entry ``entry`` (its index in the lorebook, ``source == "entry"``)."""

    source: Source
    key: str = ""
    start: int = 0
    end: int = 0
    entry: int | None = None
    entry_title: str = ""

    def describe(self) -> str:
        """For people: 'always on', 'key "Ann" in the story', 'key "mill" in entry "Ann"'."""
        if self.source == "always":
            return "always on"
        where = {"story": "the story", "memory": "the memory", "note": "the author's note"}.get(self.source)
        return f"key {show(self.key)} in {where or 'entry ' + show(self.entry_title)}"


@dataclass(frozen=True)
class Active:
    """An active entry, before fitting: ``index`` in the lorebook, the entry, its trigger and its round."""

    index: int
    entry: LoreEntry
    trigger: Trigger
    round: int


@dataclass(frozen=True)
class Inserted:
    """An entry put in the context: ``tokens`` are exactly the ids the model reads for it."""

    index: int
    entry: LoreEntry
    trigger: Trigger
    round: int
    tokens: tuple[int, ...]

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)


LeftOutReason = Literal["budget", "empty"]


@dataclass(frozen=True)
class LeftOut:
    """An active entry that did not go in: no room (``budget``) or nothing to read (``empty``).

    ``tokens``: what it would have cost; ``room``: what was left of the budget when its turn came."""

    index: int
    entry: LoreEntry
    trigger: Trigger
    round: int
    reason: LeftOutReason
    tokens: int
    room: int

    @property
    def message(self) -> str:
        name = show(self.entry.title)
        if self.reason == "empty":
            return f"{name} left out: its text is empty"
        return f"{name} left out: it needs {self.tokens} tokens and {self.room} of the lore budget were left"


@dataclass(frozen=True)
class LoreContext:
    """What lore adds to the context: the entries put in (in reading order), those left out (in the order
    they were turned away), the budget, and warnings (a regex key that ran out of time and was skipped)."""

    inserted: tuple[Inserted, ...]
    left_out: tuple[LeftOut, ...]
    budget: int
    warnings: tuple[str, ...] = ()

    @property
    def ids(self) -> list[int]:
        """The lore block's token ids, as the model reads them (between memory and the story's tail)."""
        return [t for e in self.inserted for t in e.tokens]

    @property
    def text(self) -> str:
        """The lore block's text (what a context viewer shows)."""
        return "".join(entry_block(e.entry) for e in self.inserted)

    @property
    def n_tokens(self) -> int:
        return sum(e.n_tokens for e in self.inserted)


def entry_block(entry: LoreEntry) -> str:
    """An entry as the model reads it: its text without surrounding white space, on a line of its own."""
    text = entry.text.strip()
    return text + "\n" if text else ""


def scan_start(codec: TokenCodec, story: str, depth: int, *, ids: Sequence[int] | None = None) -> int:
    """Where, in ``story``'s text, its last ``depth`` tokens begin (0 when it is shorter): the text from there
    on is what activation searches. ``ids``: the story's tokens as the engine reads them, when the caller
    has them already (they must be ``codec.encode(story)``; passing them saves encoding again).

    Computed the way the writer's dimmed text is (``writing/context.py``): the length of the decoded tokens
    before the cut, so a character split between tokens at the cut belongs to the part not searched."""
    if depth <= 0:
        return len(story)
    tokens = list(codec.encode(story)) if ids is None else list(ids)
    cut = len(tokens) - depth
    return len(codec.decode(tokens[:cut])) if cut > 0 else 0


class _Searcher:
    """Finds keys in texts; a regex key that runs out of time is skipped from then on and reported once.
    Regex searches share ``TOTAL_REGEX_S``, so even a lorebook of nothing but slow keys ends quickly."""

    TOTAL_REGEX_S = 1.0

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self._dead: set[str] = set()
        self._regex_time = 0.0

    def find(self, entry: LoreEntry, key: LoreKey, text: str, pos: int = 0, *,
             last: bool = False) -> tuple[int, int] | None:
        """The key's first match in ``text`` from ``pos`` on (``last``: its last), or None."""
        if key.written in self._dead:
            return None
        if not key.is_regex:
            return _pick(key.spans(text, pos), last)
        if self._regex_time >= self.TOTAL_REGEX_S:
            self._skip(entry, key, f"the regex keys had used their {self.TOTAL_REGEX_S:g} s")
            return None
        t0 = time.perf_counter()
        try:
            return _pick(key.spans(text, pos), last)
        except TimeoutError:
            self._skip(entry, key, "it took too long to search")
            return None
        finally:
            self._regex_time += time.perf_counter() - t0

    def _skip(self, entry: LoreEntry, key: LoreKey, why: str) -> None:
        self._dead.add(key.written)
        self.warnings.append(f"entry {show(entry.title)}: key {show(key.written)} was skipped: {why}")

    def first(self, entry: LoreEntry, text: str, pos: int = 0, *, last: bool = False) -> tuple[str, int, int] | None:
        """The entry's key found in ``text`` from ``pos`` on, as (key, start, end): the earliest match (``last``:
        the latest), ties going to the key written first; None when no key occurs."""
        best: tuple[str, int, int] | None = None
        for key in entry.compiled_keys:
            span = self.find(entry, key, text, pos, last=last)
            if span and (best is None or (span[0] > best[1] if last else span[0] < best[1])):
                best = (key.written, *span)
        return best

    def first_in(self, entry: LoreEntry, texts: Sequence[str]) -> tuple[int, str, int, int] | None:
        """The entry's key in the first of ``texts`` that holds one, as (which text, key, start, end): the
        earliest match in that text, ties going to the key written first; None when none holds one.

        Word keys search all the texts at once, joined by NUL: a word key holds no NUL (lorebook.py refuses
        control characters) and its pattern is literal characters, white space and word boundaries, so it
        finds exactly what it would in each text alone, with one search instead of one per text (a cascade
        round searches every entry not yet in, in every text that just came in). Regex keys, whose anchors
        and dots would see the joins, search each text alone."""
        starts: list[int] = []
        offset = 0
        for t in texts:
            starts.append(offset)
            offset += len(t) + 1
        joined = "\0".join(texts)
        best: tuple[int, str, int, int] | None = None
        for key in entry.compiled_keys:
            hit: tuple[int, str, int, int] | None = None
            if key.is_regex:
                for n, t in enumerate(texts[: best[0] + 1] if best else texts):
                    span = self.find(entry, key, t)
                    if span:
                        hit = (n, key.written, *span)
                        break
            else:
                span = self.find(entry, key, joined)
                if span:
                    n = bisect_right(starts, span[0]) - 1
                    hit = (n, key.written, span[0] - starts[n], span[1] - starts[n])
            if hit and (best is None or (hit[0], hit[2]) < (best[0], best[2])):
                best = hit
        return best


    def every(self, entry: LoreEntry, key: LoreKey, text: str, pos: int = 0) -> list[tuple[int, int]]:
        """Every match of the key in ``text`` from ``pos`` on ([] for a key skipped for its time)."""
        spans: list[tuple[int, int]] = []
        span = self.find(entry, key, text, pos)
        while span:  # one search per match keeps each regex search under the timeout on its own
            spans.append(span)
            span = self.find(entry, key, text, span[1])
        return spans


def key_spans(inserted: Sequence[Inserted], story: str, start: int = 0) -> list[tuple[int, int, int]]:
    """Where the keys of the entries put in occur in the story from ``start`` on (the scanned tail, or the part
    on screen), as (start, end, entry index) sorted by position: what a story view marks quietly. Overlapping
    matches are all listed; a regex key that runs out of time is left unmarked."""
    search = _Searcher()
    found = [(s, e, item.index) for item in inserted for key in item.entry.compiled_keys
             for s, e in search.every(item.entry, key, story, start)]
    return sorted(set(found))


def _pick(spans: Iterator[tuple[int, int]], last: bool) -> tuple[int, int] | None:
    if not last:
        return next(spans, None)
    found = None
    for found in spans:
        pass
    return found


def _direct_trigger(search: _Searcher, entry: LoreEntry, story: str, story_start: int, memory: str,
                    note: str) -> Trigger | None:
    """Round 0: always on, else the key nearest the end of the scanned story (the latest mention is nearest
    the words being written), else the first in the memory, else in the note."""
    if entry.always:
        return Trigger("always")
    found = search.first(entry, story, story_start, last=True)
    if found:
        return Trigger("story", *found)
    for source, text in (("memory", memory), ("note", note)):
        found = search.first(entry, text)
        if found:
            return Trigger(source, *found)  # type: ignore[arg-type]
    return None


def _spread(entries: Sequence[LoreEntry], *, story: str, story_start: int, memory: str, note: str,
            max_rounds: int, admit: Callable[[Active], bool]) -> list[str]:
    """The breadth-first pass (module docstring): ``admit`` decides, in priority order, whether each active
    entry goes in; only those it lets in cascade. Returns the searcher's warnings."""
    search = _Searcher()
    decided: set[int] = set()
    frontier: list[tuple[int, Trigger]] = []
    for i, entry in enumerate(entries):
        if entry.enabled:
            trigger = _direct_trigger(search, entry, story, story_start, memory, note)
            if trigger:
                frontier.append((i, trigger))
    frontier.sort(key=lambda it: (it[1].source != "always", it[0]))
    round_ = 0
    while frontier:
        decided.update(i for i, _ in frontier)
        put_in = [i for i, trigger in frontier if admit(Active(i, entries[i], trigger, round_))]
        round_ += 1
        if round_ > max_rounds:
            break
        sources = [entries[i].text for i in put_in]
        found: dict[int, Trigger] = {}
        for j, entry in enumerate(entries):
            if j in decided or not entry.enabled or not put_in:
                continue
            hit = search.first_in(entry, sources)
            if hit:
                n, key, s, e = hit
                found[j] = Trigger("entry", key, s, e, entry=put_in[n], entry_title=entries[put_in[n]].title)
        frontier = sorted(found.items())
    return search.warnings


def activate(entries: Sequence[LoreEntry], *, story: str = "", story_start: int = 0, memory: str = "",
             note: str = "", max_rounds: int = LoreSettings.max_rounds) -> tuple[list[Active], list[str]]:
    """Every active entry with no budget, in priority order, and the warnings. ``story`` is the whole story's
    text and ``story_start`` where the scanned tail begins (``scan_start``): matches are searched from there,
    the text before it only decides whether a match there starts a word."""
    active: list[Active] = []

    def admit(a: Active) -> bool:
        active.append(a)
        return True

    warnings = _spread(entries, story=story, story_start=story_start, memory=memory, note=note,
                       max_rounds=max_rounds, admit=admit)
    return active, warnings


def fit_lore(entries: Sequence[LoreEntry], codec: TokenCodec, *, budget: int, story: str = "",
             story_start: int = 0, memory: str = "", note: str = "",
             max_rounds: int = LoreSettings.max_rounds) -> LoreContext:
    """Activation and fitting in one pass (module docstring), within ``budget`` tokens counted with ``codec``
    (the model's own tokenizer). Arguments as for ``activate``."""
    inserted: list[Inserted] = []
    left_out: list[LeftOut] = []
    room = max(0, budget)

    def admit(a: Active) -> bool:
        nonlocal room
        block = entry_block(a.entry)
        if not block:
            left_out.append(LeftOut(a.index, a.entry, a.trigger, a.round, "empty", 0, room))
            return False
        tokens = tuple(codec.encode(block))
        if len(tokens) > room:
            left_out.append(LeftOut(a.index, a.entry, a.trigger, a.round, "budget", len(tokens), room))
            return False
        room -= len(tokens)
        inserted.append(Inserted(a.index, a.entry, a.trigger, a.round, tokens))
        return True

    warnings = _spread(entries, story=story, story_start=story_start, memory=memory, note=note,
                       max_rounds=max_rounds, admit=admit)
    inserted.sort(key=lambda e: e.index)
    return LoreContext(tuple(inserted), tuple(left_out), max(0, budget), tuple(warnings))


def build_lore(entries: Sequence[LoreEntry], codec: TokenCodec, *, story: str, memory: str = "", note: str = "",
               settings: LoreSettings = LoreSettings(), block_size: int, room: int | None = None,
               story_ids: Sequence[int] | None = None) -> LoreContext:
    """The one call for the context builder: scan the story's last ``settings.scan_depth`` tokens, activate,
    and fit within ``settings.budget(block_size)`` tokens, or ``room`` when that is smaller (what memory and
    the note leave of the context). ``memory`` and ``note`` are searched as given: pass them as the model reads
    them (the engine keeps at most half the context of memory). ``story_ids``: the story's tokens when the
    caller has them already (``scan_start``)."""
    budget = settings.budget(block_size)
    if room is not None:
        budget = min(budget, max(0, room))
    start = scan_start(codec, story, settings.scan_depth, ids=story_ids)
    return fit_lore(entries, codec, budget=budget, story=story, story_start=start, memory=memory, note=note,
                    max_rounds=settings.max_rounds)
