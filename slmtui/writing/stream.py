"""One continuation being written: the thread-side loop and the buffer the UI drains once a frame.

The worker thread runs ``StreamJob.run``: it pulls events from the engine as fast as the engine makes them,
appends them to a buffer under a lock, and saves the new text to the story store every ``save_every``
seconds (and once at the end). The UI thread calls ``take()`` on a timer (30 times a second) and gets
everything since the last call in one batch, so drawing never falls behind the engine and never blocks it.
No Textual in here: the job is tested on its own (tests/writing/test_stream.py).

A job is one stream, tagged with its ``index`` among the streams of one generation (0 when there is one), so
that several candidates written at once each fill their own passage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from slmtui.engine.generate import Alternative, Generator, TokenEvent
from slmtui.engine.sampling import Sampling

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


class TextSink(Protocol):
    """Where the streamed text is saved: ``StoryStore`` is one."""

    def append_text(self, passage_id: int, text: str) -> None: ...


@dataclass(eq=False)
class StreamJob:
    """A continuation of ``prompt`` written into passage ``passage_id``."""

    passage_id: int
    prompt: str
    memory: str = ""
    index: int = 0
    """Which stream of its generation this is (0 when there is one)."""
    seed: int = 0
    """The seed used when the panel's sampling has none, so the passage's settings replay it exactly."""
    started: float = field(default_factory=time.perf_counter)
    produced: int = 0
    """Tokens the engine has made so far (the UI may not have drawn them all yet)."""
    samplings: list[Sampling] = field(default_factory=list)
    """The sampling each produced token was drawn with, in order (tests read it; so could a status line)."""
    stopped_at: int | None = None
    """``produced`` when the user asked to stop: at most one token may follow it."""
    done: bool = False
    error: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)
    """Set when the worker is done and every token is saved: stopping waits on it."""
    cancelled: threading.Event = field(default_factory=threading.Event)
    """Set by ``cancel``; the engine checks it between tokens."""
    _pending: list[TokenEvent] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _resolved: tuple[Sampling | None, Sampling | None] = (None, None)

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
        generator: Generator,
        sink: TextSink,
        sampling: Callable[[], Sampling],
        should_stop: Callable[[], bool] | None = None,
        *,
        save_every: float = SAVE_EVERY_S,
    ) -> None:
        """Stream until the length is reached, ``cancel()`` or ``should_stop()``; called on the worker thread.

        ``sampling`` is called before every token, so a change in the panel applies to the very next one.
        """
        current: list[Sampling] = []
        cancelled = self.cancelled.is_set

        def stop() -> bool:
            return cancelled() or (should_stop is not None and should_stop())

        def source() -> Sampling:
            s = self.resolve(sampling())
            current[:] = [s]
            return s

        unsaved: list[str] = []
        last_save = time.monotonic()
        events = generator.stream(self.prompt, source, memory=self.memory, should_stop=stop)
        try:
            for event in events:
                with self._lock:
                    self._pending.append(event)
                    self.samplings.append(current[0])
                    self.produced += 1
                if event.text:
                    unsaved.append(event.text)
                now = time.monotonic()
                if unsaved and now - last_save >= save_every:
                    sink.append_text(self.passage_id, "".join(unsaved))
                    unsaved.clear()
                    last_save = now
                if stop():  # stop now rather than after the engine reads this token
                    break
        finally:
            close = getattr(events, "close", None)  # a generator: ends the engine's loop (and its cache) now
            if close is not None:
                close()
            if unsaved:
                sink.append_text(self.passage_id, "".join(unsaved))
            self.done = True
            self.finished.set()

    def cancel(self) -> None:
        """Ask the worker to stop after the token it is computing (UI thread)."""
        if self.stopped_at is None:
            self.stopped_at = self.produced
        self.cancelled.set()

    def take(self) -> list[TokenEvent]:
        """Everything streamed since the last call (UI thread)."""
        with self._lock:
            events, self._pending = self._pending, []
        return events

    @property
    def tokens_per_second(self) -> float:
        elapsed = time.perf_counter() - self.started
        return self.produced / elapsed if elapsed > 0 else 0.0
