"""What a stream of generated tokens is made of, torch-free: the app, the CLI and the decoding child share these.

They live in the core, not the engine, so that the app can import its screens and its writing session before
torch is loaded (the model loads in a worker: the screen is there at once)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slmtui.core.sampling import Sampling


@dataclass(frozen=True)
class Alternative:
    """One of the most likely tokens at a step: what the token view offers in place of the one drawn."""

    token_id: int
    text: str
    prob: float


@dataclass(frozen=True)
class TokenEvent:
    """One generated token, as the UI and the CLI see it."""

    index: int
    """0 for the first new token."""
    token_id: int
    text: str
    """The text this token completes: "" while a multi-byte character is still incomplete."""
    prob: float
    """The model's probability of this token (softmax at temperature 1, before any filtering)."""
    alternatives: tuple[Alternative, ...]
    """The most likely tokens at this step, most likely first (the chosen one may be among them)."""
    window_tokens: int
    """How many of the story's last tokens the model saw for this step (memory not counted)."""
    seed: int
    """The seed in force for this stream: replaying it alone with this seed reproduces the text."""
    stream: int = 0
    """Which of the continuations written at once this token belongs to (0 for the first or only one)."""
    sampling: Sampling | None = field(default=None, compare=False, repr=False)
    """The settings this token was drawn with (the panel may change them mid-stream; a child process reports
    them with each token, so the writer knows which applied)."""
