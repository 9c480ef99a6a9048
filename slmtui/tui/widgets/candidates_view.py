"""N continuations written at once, side by side: columns when the screen is wide, one at a time when it is not.

Each candidate is a ``StoryView`` of its one passage (the same line-based drawing as the story, so streaming
four at once costs four appends a frame), titled with its number and the mean probability of its tokens, so
the reader sees which one the model liked. 1..N picks one, arrows move between them and Enter picks the one
marked; PageUp/PageDown scroll the marked one, so every candidate can be read whole before it is picked. The
view posts ``Picked`` and the screen tells the session.

Below ``COLUMNS_FROM`` the marked candidate takes all the room and the others fold to one line each (their
number, p̄ and first words): three stacked panes at 80x24 showed two lines apiece, the ends of the candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.message import Message
from textual.reactive import reactive

from slmtui.tui.widgets.story_view import Shown, StoryView
from slmtui.writing import MAX_CHOICES
from slmtui.writing.stream import TokenMark

COLUMNS_FROM = 120
"""Screen width (cells) from which candidates stand in columns; below it they are stacked."""


class CandidatePane(StoryView, can_focus=False):
    """One candidate's text."""


class CandidatesView(Container, can_focus=True):
    """The candidates of one generation; the screen sets them with ``show`` and streams with ``append``."""

    BINDINGS = [
        *(Binding(str(i), f"pick({i - 1})", f"Pick {i}", show=False) for i in range(1, MAX_CHOICES + 1)),
        Binding("up,left", "move(-1)", "Previous", show=False),
        Binding("down,right", "move(1)", "Next", show=False),
        Binding("enter", "pick_marked", "Pick", key_display="1..N/enter", id="pick"),
        Binding("pageup", "scroll_marked(-1)", "Scroll up", show=False),
        Binding("pagedown", "scroll_marked(1)", "Scroll down", show=False),
    ]

    marked: reactive[int] = reactive(0)
    """The candidate Enter would pick."""

    @dataclass
    class Picked(Message):
        """The reader chose candidate ``index`` (0-based): it joins the story."""

        index: int

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.passage_ids: list[int] = []
        self._probs: list[float | None] = []

    def compose(self) -> ComposeResult:
        # Every pane there is room for, made once: showing N candidates hides the others, so a new generation
        # never mounts or removes a widget (no await, no relayout race with the stream's first frame).
        for i in range(MAX_CHOICES):
            yield CandidatePane(id=f"candidate-{i}")

    def show(self, passages: Sequence[tuple[int, str]], tokens: dict[int, list[TokenMark]],
             probs: Sequence[float | None]) -> None:
        """Show these candidates (passage id, text so far)."""
        ids = [pid for pid, _ in passages]
        if ids != self.passage_ids:
            self.passage_ids = ids
            self.marked = 0
        for i, pane in enumerate(self.query(CandidatePane)):
            pane.display = i < len(ids)
            if i < len(ids):
                pane.show([Shown(ids[i], "model", passages[i][1])], tokens)
        self.set_probs(probs)

    def append(self, index: int, passage_id: int, text: str) -> None:
        if index < len(self.passage_ids):
            self.query_one(f"#candidate-{index}", CandidatePane).append(passage_id, text)

    def set_probs(self, probs: Sequence[float | None]) -> None:
        self._probs = list(probs)
        self._mark()

    def watch_marked(self) -> None:
        self._mark()

    def _mark(self) -> None:
        """Mark one pane; fold the others when stacked; title each (a folded one with its first words)."""
        columns = self.has_class("-columns")
        for i, pane in enumerate(self.query(CandidatePane)):
            pane.set_class(i == self.marked, "-marked")
            folded = not columns and i != self.marked
            pane.set_class(folded, "-folded")
            if i < len(self.passage_ids):
                prob = self._probs[i] if i < len(self._probs) else None
                title = f"{i + 1}" + (f" · p̄ {prob:.2f}" if prob is not None else "")
                if folded:
                    title += " · " + (" ".join(pane.full_text.split()) or "…")
                if pane.border_title != title:  # a new title repaints the whole pane, not one line
                    pane.border_title = title

    def on_resize(self) -> None:
        columns = self.app.size.width >= COLUMNS_FROM
        if columns != self.has_class("-columns"):
            self.set_class(columns, "-columns")
            self._mark()

    def action_scroll_marked(self, pages: int) -> None:
        """Read the marked candidate on: a page up or down (it stops following its stream once scrolled up)."""
        if self.passage_ids:
            pane = self.query_one(f"#candidate-{self.marked}", CandidatePane)
            if pages < 0:
                pane.scroll_page_up(animate=False)
            else:
                pane.scroll_page_down(animate=False)

    def action_move(self, step: int) -> None:
        if self.passage_ids:
            self.marked = (self.marked + step) % len(self.passage_ids)

    def action_pick(self, index: int) -> None:
        if 0 <= index < len(self.passage_ids):
            self.post_message(self.Picked(index))

    def action_pick_marked(self) -> None:
        self.action_pick(self.marked)
