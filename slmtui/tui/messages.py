"""What screens tell the app: typed messages, posted by a screen and handled by ``SlmApp``.

A screen never calls the app by a method's name: it posts one of these (they bubble from the screen to the app),
so renaming a handler breaks loudly in a test instead of silently turning a feature off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from slmtui.core.sampling import Sampling


@dataclass
class UseModel(Message):
    """Write with this model from now on (a model's name or folder; None: the bundled one)."""

    name: str | None


@dataclass
class SamplingChosen(Message):
    """The user changed the sampling: it becomes the starting values next time."""

    sampling: Sampling


@dataclass
class PresetSaved(Message):
    """The user saved the sampling as a named preset: keep it in config.toml."""

    name: str
    values: dict[str, Any]


@dataclass
class ColoursToggled(Message):
    """The user switched the story's probability colours on or off (f3): kept in config.toml."""

    on: bool


@dataclass
class ChoicesChosen(Message):
    """The user changed how many continuations one generation writes: kept in config.toml."""

    choices: int
