"""What the writing session hands out: the model it writes with, and what one frame of generation streamed."""

from __future__ import annotations

from dataclasses import dataclass

from slmtui.engine.generate import Generator
from slmtui.engine.tokenizer import Tokenizer
from slmtui.writing.context import Window
from slmtui.writing.stream import TokenMark


@dataclass(frozen=True)
class ActiveModel:
    """The loaded model the session writes with."""

    generator: Generator
    name: str

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
