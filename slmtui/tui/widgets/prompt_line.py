"""Where the user writes: Enter sends; an empty Enter asks the model to go on."""

from __future__ import annotations

from textual.widgets import Input

PLACEHOLDER = "Write the next lines · Enter sends · empty Enter continues · Esc stops"


class PromptLine(Input):
    """A one-line Input; the screen handles ``Input.Submitted`` (empty value: continue the story)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder=PLACEHOLDER, id=id, select_on_focus=False)
