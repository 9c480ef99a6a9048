"""One continuation being written: the thread-side loop and the buffer the UI drains once a frame.

The worker thread runs ``StreamJob.run``: it pulls events from the engine as fast as the engine makes them,
appends them to a buffer under a lock, and saves the new text to the story store every ``save_every``
seconds (and once at the end). The UI thread calls ``take()`` on a timer (30 times a second) and gets
everything since the last call in one batch, so drawing never falls behind the engine and never blocks it.
No Textual in here: the job is tested on its own (tests/writing/test_stream.py).

A job is one generation of one or more streams (the "choices" setting: N candidates from one batched engine
call); each event is tagged with its stream, and stream i fills passage ``passage_ids[i]``. The tokens are saved
with the text (packed, one JSON line each), so token view works on a passage reopened later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Protocol

from slmtui.core.errors import SlmError
from slmtui.core.sampling import Sampling
from slmtui.core.sampling_record import sampling_record
from slmtui.core.token_events import Alternative, TokenEvent
from slmtui.stories.tokens import pack_token, unpack_tokens

SAVE_EVERY_S = 0.5
"""How often streamed text is committed: a kill -9 loses at most this much (plus one frame) of text."""


@dataclass(frozen=True)
class TokenMark:
    """A token the model wrote, located in its passage's text: what token view shades and offers alternatives for."""

    start: int
    """Offset of the token's text in the passage's text."""
    end: int
    token_id: int
    prob: float
    alternatives: tuple[Alternative, ...]

    def packed(self) -> str:
        """This token as stories.db keeps it (one JSON line)."""
        return pack_token(self.start, self.end, self.token_id, self.prob,
                          [(a.token_id, a.text, a.prob) for a in self.alternatives])


def marks_from_store(packed: str) -> list[TokenMark]:
    """The token marks kept with a passage (``Passage.tokens``): token view on a passage of an earlier session."""
    return [TokenMark(s, e, t, p, tuple(Alternative(*a) for a in alts)) for s, e, t, p, alts in unpack_tokens(packed)]


class Streamer(Protocol):
    """What a job streams from: ``Generator``, or ``RemoteGenerator`` (the same, in a child process)."""

    def stream(self, prompt: str | list[int], sampling: Callable[[], Sampling], *, n: int = 1,
               memory: str | list[int] = "", should_stop: Callable[[], bool] | None = None,
               page: str | None = None) -> Iterator[TokenEvent]: ...


class TextSink(Protocol):
    """Where the streamed text is saved: ``StoryStore`` is one."""

    def append_texts(self, chunks: dict[int, tuple[str, str]]) -> None: ...

    def set_samplings(self, records: dict[int, dict[str, object]]) -> None: ...


@dataclass(frozen=True)
class StreamToken:
    """One token of one stream, as the worker hands it to the UI: which stream, the engine's event, its mark."""

    stream: int
    event: TokenEvent
    mark: TokenMark


@dataclass(eq=False)
class StreamJob:
    """One generation: ``len(passage_ids)`` continuations of ``prompt`` written at once (one batched engine
    call), stream i into passage ``passage_ids[i]``."""

    passage_ids: tuple[int, ...]
    prompt: str | list[int]
    """The story's text, or its tokens when an author's note is woven in (writing/context.py)."""
    memory: str | list[int] = ""
    """What the model reads at the head of every window: text, or the context builder's prefix (memory and lore
    tokens: writing/context.py)."""
    seed: int = 0
    """The seed used when the panel's sampling has none, so the passage's settings replay it exactly (stream i
    draws with seed + i)."""
    starts: tuple[int, ...] = ()
    """Length of each passage's text before the stream (a branch from a token starts with some): where the
    token marks begin. Empty: all 0."""
    page: str | None = None
    """The text the passages follow, for the banned phrases (the engine's ``stream(page=...)``): the prompt
    may hold more (an author's note woven in)."""
    first_token: int = 0
    """How many tokens each passage holds before the stream's (a branch from a token keeps some): where the
    sampling record counts the stream's tokens from."""
    started: float = field(default_factory=time.perf_counter)
    produced: int = 0
    """Tokens the engine has made so far, all streams together (the UI may not have drawn them all yet)."""
    produced_by: list[int] = field(default_factory=list)
    """Tokens made per stream."""
    samplings: list[Sampling] = field(default_factory=list)
    """The sampling each produced token was drawn with, in order (tests read it; so could a status line): the
    event's own when it carries one (a child process reads the panel's changes a few tokens late)."""
    runs: list[list[tuple[int, dict[str, object]]]] = field(default_factory=list)
    """Per stream, the settings its tokens were drawn with: (first token, ``to_dict`` with the stream's seed),
    one entry per change. Saved as each passage's sampling record (core/sampling_record.py)."""
    stopped_at: int | None = None
    """``produced`` when the user asked to stop: at most one token per stream may follow it."""
    done: bool = False
    error: str | None = None
    save_error: SlmError | None = None
    """Why the store refused the streamed text (a full disk, the story deleted in another window): the stream
    stopped at once, and the text it had is in ``unsaved``."""
    unsaved: dict[int, tuple[str, str]] = field(default_factory=dict)
    """Passage id -> (text, packed tokens) the store did not take: the session keeps it and saves it later."""
    finished: threading.Event = field(default_factory=threading.Event)
    """Set when the worker is done and every token is saved: stopping waits on it."""
    cancelled: threading.Event = field(default_factory=threading.Event)
    """Set by ``cancel``; the engine checks it between tokens."""
    _pending: list[StreamToken] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _resolved: tuple[Sampling | None, Sampling | None] = (None, None)

    def __post_init__(self) -> None:
        self.produced_by = [0] * self.n
        self.runs = [[] for _ in range(self.n)]
        if not self.starts:
            self.starts = (0,) * self.n

    @property
    def n(self) -> int:
        return len(self.passage_ids)

    @property
    def passage_id(self) -> int:
        """The first (with one stream, the only) passage written."""
        return self.passage_ids[0]

    def resolve(self, sampling: Sampling) -> Sampling:
        """The panel's sampling with this job's seed filled in when the panel leaves it to chance."""
        if sampling.seed is not None:
            return sampling
        base, resolved = self._resolved
        if base is not sampling or resolved is None:  # cached by identity: replace() once per panel change
            resolved = replace(sampling, seed=self.seed)
            self._resolved = (sampling, resolved)
        return resolved

    def run(
        self,
        generator: Streamer,
        sink: TextSink,
        sampling: Callable[[], Sampling],
        should_stop: Callable[[], bool] | None = None,
        *,
        save_every: float = SAVE_EVERY_S,
    ) -> None:
        """Stream until the length is reached, ``cancel()`` or ``should_stop()``; called on the worker thread.

        ``sampling`` is called before every token, so a change in the panel applies to the very next one.
        Text and tokens are saved together, every ``save_every`` seconds, for all streams in one commit.
        """
        current: list[Sampling] = [Sampling()]
        cancelled = self.cancelled.is_set

        def stop() -> bool:
            return cancelled() or (should_stop is not None and should_stop())

        def source() -> Sampling:
            s = self.resolve(sampling())
            current[0] = s
            return s

        offsets = list(self.starts)
        unsaved: dict[int, tuple[list[str], list[str]]] = {}
        changed: set[int] = set()  # the streams whose sampling record is not saved yet
        drawn_with: list[tuple[Sampling, int] | None] = [None] * self.n  # the last (sampling, seed) recorded
        last_save = time.monotonic()
        kwargs = {"page": self.page} if self.page is not None else {}
        events = generator.stream(self.prompt, source, n=self.n, memory=self.memory, should_stop=stop, **kwargs)

        def record(i: int, s: Sampling, seed: int) -> None:
            """Note the settings of stream i's next token when they differ from its last token's."""
            last = drawn_with[i]
            if last is not None and last[0] is s and last[1] == seed:
                return  # the same object: the usual case, checked without building a dict
            drawn_with[i] = (s, seed)
            values = {**s.to_dict(), "seed": seed}
            runs = self.runs[i]
            if not runs or runs[-1][1] != values:
                runs.append((self.first_token + self.produced_by[i], values))
                changed.add(i)

        def save() -> None:
            # A refused save stops the stream (nothing more would reach the disk) and keeps the text in memory:
            # a write that fails is said, never swallowed (issue 23).
            if unsaved:
                chunks = {self.passage_ids[i]: ("".join(t), "".join(k)) for i, (t, k) in unsaved.items()}
                unsaved.clear()
                if self.save_error is None:
                    try:
                        sink.append_texts(chunks)
                        chunks = {}
                    except SlmError as e:
                        self.save_error = e
                        self.cancelled.set()
                for pid, (text, packed) in chunks.items():
                    old_text, old_packed = self.unsaved.get(pid, ("", ""))
                    self.unsaved[pid] = (old_text + text, old_packed + packed)
            if changed and self.save_error is None:  # after the text: a refused record loses no text
                try:
                    sink.set_samplings({self.passage_ids[i]: sampling_record(self.runs[i]) for i in sorted(changed)})
                    changed.clear()
                except SlmError as e:
                    self.save_error = e
                    self.cancelled.set()

        try:
            for event in events:
                i = event.stream
                start = offsets[i]
                offsets[i] = start + len(event.text)
                mark = TokenMark(start, offsets[i], event.token_id, event.prob, event.alternatives)
                drawn = event.sampling if event.sampling is not None else current[0]
                record(i, drawn, event.seed)
                with self._lock:
                    self._pending.append(StreamToken(i, event, mark))
                    self.samplings.append(drawn)
                    self.produced += 1
                    self.produced_by[i] += 1
                texts, packed = unsaved.setdefault(i, ([], []))
                texts.append(event.text)
                packed.append(mark.packed())
                now = time.monotonic()
                if now - last_save >= save_every:
                    save()
                    last_save = now
                if stop() or self.save_error is not None:  # stop now rather than after the engine's next token
                    break
        finally:
            try:
                close = getattr(events, "close", None)  # a generator: ends the engine's loop (and its cache) now
                if close is not None:
                    close()
            finally:
                try:
                    save()
                finally:  # whatever happened, the job ends: "writing…" never outlives its worker
                    self.done = True
                    self.finished.set()

    def cancel(self) -> None:
        """Ask the worker to stop after the token it is computing (UI thread)."""
        if self.stopped_at is None:
            self.stopped_at = self.produced
        self.cancelled.set()

    def take(self) -> list[StreamToken]:
        """Everything streamed since the last call (UI thread)."""
        with self._lock:
            events, self._pending = self._pending, []
        return events

    @property
    def tokens_per_second(self) -> float:
        """All streams together."""
        elapsed = time.perf_counter() - self.started
        return self.produced / elapsed if elapsed > 0 else 0.0
