"""What the writing session hands out: the model it writes with, and what one frame of generation streamed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from slmtui.writing.context import Window
from slmtui.writing.stream import Streamer, TokenMark

if TYPE_CHECKING:  # types only: the app imports this before torch, which the model's loading worker brings
    from slmtui.engine.generate import Generator
    from slmtui.engine.remote import RemoteGenerator
    from slmtui.engine.tokenizer import Tokenizer


@dataclass(frozen=True)
class ActiveModel:
    """The loaded model the session writes with."""

    generator: Generator
    """The model in this process: its tokenizer and context size serve the session; it writes while no child
    process can (``streamer``)."""
    name: str
    remote: RemoteGenerator | None = None
    """The same model in a child process, started in the background (the app's): generation runs there once it
    is ready, so decoding and drawing do not share one GIL (engine/remote.py)."""

    def streamer(self) -> Streamer:
        """What the next generation streams from: the child when it is ready; this process while the child
        starts or when it cannot. A child that stopped after it was ready gets a fresh one for next time."""
        remote = self.remote
        if remote is None:
            return self.generator
        if remote.ready:
            return remote
        if remote.restartable:
            remote.start()
        return self.generator

    @property
    def mode(self) -> str:
        """Where the next generation runs: "process" (the child) or "in-process"."""
        return "process" if self.remote is not None and self.remote.ready else "in-process"

    def close(self) -> None:
        """End the child process, if any (the app closes, or another model replaces this one)."""
        if self.remote is not None:
            self.remote.close()

    @property
    def tokenizer(self) -> Tokenizer:
        return self.generator.tokenizer

    @property
    def block_size(self) -> int:
        return self.generator.model.config.block_size


@dataclass(frozen=True)
class Streamed:
    """What one stream wrote since the last poll."""

    index: int
    """Which stream of the generation (0 when there is one)."""
    passage_id: int
    text: str
    marks: tuple[TokenMark, ...]


@dataclass(frozen=True)
class Progress:
    """One frame's worth of generation: ``WritingSession.poll``'s answer."""

    streamed: tuple[Streamed, ...]
    window: Window | None
    """What the model saw for the last token drawn (None before any)."""
    tokens_per_second: float
    finished: bool
    error: str | None = None
