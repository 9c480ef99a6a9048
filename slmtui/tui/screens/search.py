"""Search the whole tree of a story: type, and every passage of every branch that holds the text is listed
with where it sits in the tree; Enter jumps there.

The search itself is the writing session's (writing/tree_search.py: in memory, a few milliseconds for a long
story), so it runs on each key. The dialog holds only what it shows; the writer reads the story to the passage
chosen (``dismiss`` with a ``Found``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from slmtui.tui.widgets.text_lines import printable
from slmtui.writing.tree_search import MAX_HITS, Hit, Place

HINT = "Enter jumps to the hit · ↑↓ choose · Esc closes"


@dataclass(frozen=True)
class Found:
    """The hit the user jumped to, and what they searched (the next search starts from it)."""

    query: str
    passage_id: int
    start: int
    """Where the match begins in the passage's text (negative: in the passages above it)."""
    end: int


class PlacesList(OptionList):
    """Passages, each on two lines: its text (a search's match picked out) and its place in the tree."""

    COMPONENT_CLASSES = {"places-list--match", "places-list--place", "places-list--name"}

    def row(self, text: str, place: Place, *, match: tuple[int, int] | None = None, name: str | None = None,
            extra: str = "") -> Text:
        """One entry: ``name`` (a bookmark's) and ``text`` with ``match`` picked out, then its place."""
        line = Text()
        if name is not None:
            line.append(f"★ {name}  ", self._style("name"))
        body = Text(printable(text))
        if match is not None:
            body.stylize(self._style("match"), *match)
        line.append_text(body)
        line.append("\n  " + place.describe() + extra, self._style("place"))
        return line

    def _style(self, part: str) -> Style:
        return self.get_component_rich_style(f"places-list--{part}")


class SearchScreen(ModalScreen["Found | None"]):
    """Find text anywhere in the story's tree; Enter reads the story to the passage it is in."""

    CSS_PATH = "tree.tcss"
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close"),
        Binding("down", "to_hits", "To the hits", show=False),
    ]

    def __init__(self, search: Callable[[str], list[Hit]], *, query: str = "", after: int | None = None) -> None:
        """``search``: the session's; ``query`` and ``after``: the last search and the passage it jumped to,
        so searching again with Enter goes on to the next hit."""
        super().__init__(classes="dialog-screen")
        self.search = search
        self.query_text = query
        self.after = after
        self.hits: list[Hit] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog tree-dialog"):
            yield Label("Search every branch of this story", classes="dialog-question")
            yield Input(self.query_text, placeholder="a word or a phrase", id="search-query")
            yield Label("", id="search-count")
            yield PlacesList(id="search-hits")
            yield Label(HINT, classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#search-query", Input).focus()
        self._run(self.query_text)
        hits = self.query_one(PlacesList)
        ids = [h.passage_id for h in self.hits]
        if self.after in ids and len(ids) > 1:
            hits.highlighted = (ids.index(self.after) + 1) % len(ids)

    @on(Input.Changed, "#search-query")
    def _changed(self, event: Input.Changed) -> None:
        self._run(event.value)

    def _run(self, query: str) -> None:
        self.hits = self.search(query)
        hits = self.query_one(PlacesList)
        hits.clear_options()
        hits.add_options(Option(hits.row(h.snippet, h.place, match=h.snippet_match,
                                         extra=f" · {h.matches} matches" if h.matches > 1 else ""), id=str(i))
                         for i, h in enumerate(self.hits))
        if self.hits:
            hits.highlighted = 0
        count = len(self.hits)
        if not query.split():
            said = "Type to search: every passage of every branch is searched."
        elif not count:
            said = f"“{query.strip()}” is nowhere in this story."
        else:
            many = f"the first {MAX_HITS}" if count >= MAX_HITS else str(count)
            said = f"{many} passages hold “{query.strip()}”" if count > 1 else f"1 passage holds “{query.strip()}”"
        self.query_one("#search-count", Label).update(said)

    @on(Input.Submitted, "#search-query")
    def _submitted(self) -> None:
        index = self.query_one(PlacesList).highlighted
        if index is not None and self.hits:
            self._jump(index)

    @on(OptionList.OptionSelected, "#search-hits")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self._jump(int(event.option.id or 0))

    def _jump(self, index: int) -> None:
        hit = self.hits[index]
        self.dismiss(Found(self.query_one("#search-query", Input).value, hit.passage_id, hit.start, hit.end))

    def action_to_hits(self) -> None:
        if self.hits:
            self.query_one(PlacesList).focus()
