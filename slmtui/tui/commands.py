"""Palette commands: every key binding of a screen, plus the actions that have no key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from textual.binding import Binding
from textual.screen import Screen


@dataclass(frozen=True)
class Command:
    """An action the command palette offers on a screen."""

    title: str
    help: str
    callback: Callable[[], object]


@runtime_checkable
class HasCommands(Protocol):
    """A screen that offers commands to the palette (the app lists them with its own)."""

    def commands(self) -> Iterator[Command]: ...


def binding_commands(screen: Screen[object]) -> Iterator[Command]:
    """One command per described binding of ``screen`` (named by its tooltip if it has one, else as the footer
    names it), its key as the help."""
    for binding in screen.BINDINGS:
        if not isinstance(binding, Binding) or not binding.description:
            continue
        key = binding.key_display or binding.key.split(",")[0]
        yield Command(binding.tooltip or binding.description, f"key: {key}", lambda action=binding.action: screen.run_action(action))
