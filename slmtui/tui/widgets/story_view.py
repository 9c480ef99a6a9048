"""The story as one flowing text: the user's passages and the model's told apart by style.

``StoryText`` draws the text (one ``Content`` with spans: who wrote what, the part of the story outside the
model's window dimmed, and in token view each generated token shaded by its probability). ``StoryView`` is
the scrolling frame around it: it follows the stream while the reader is at the bottom and stays put when
they scroll back to read.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content, Span
from textual.message import Message
from textual.reactive import reactive, var
from textual.style import Style
from textual.widget import Widget

from slmtui.engine.generate import Alternative

PROB_BUCKETS = 5
"""Token view shades: story-text--p0 (unlikely) .. story-text--p4 (near certain), styled in app.tcss."""


@dataclass(frozen=True)
class Shown:
    """One passage as it is drawn."""

    passage_id: int
    author: str
    """"user" or "model"."""
    text: str


@dataclass(frozen=True)
class TokenMark:
    """A token the model wrote in this session, located in its passage's text."""

    start: int
    """Offset of the token's text in the passage's text."""
    end: int
    token_id: int
    prob: float
    alternatives: tuple[Alternative, ...]


def prob_bucket(prob: float) -> int:
    return min(PROB_BUCKETS - 1, int(prob * PROB_BUCKETS))


def printable(text: str) -> str:
    """Control characters (an untrained model writes them) would garble a terminal: show them as U+FFFD.
    One character for one character, so offsets into the text stay valid."""
    return "".join(c if c >= " " or c in "\n\t" else "\ufffd" for c in text) if not text.isprintable() else text


class StoryText(Widget):
    """The text of the story, drawn as one ``Content``. Selectable and copyable like any Textual text."""

    COMPONENT_CLASSES = {
        "story-text--user",
        "story-text--model",
        "story-text--outside",
        "story-text--cursor",
        "story-text--placeholder",
        *(f"story-text--p{i}" for i in range(PROB_BUCKETS)),
    }

    token_view: reactive[bool] = reactive(False)
    """Shade each generated token by its probability, and let the reader pick an alternative."""
    cursor: reactive[int | None] = reactive(None)
    """Index into ``token_positions()`` of the token under the cursor, in token view."""
    window_start: reactive[int] = reactive(0)
    """Offset in the whole text where the model's window begins: the text before it is dimmed."""
    placeholder: reactive[str] = reactive("")
    """Shown when the story is empty."""

    class TokenClicked(Message):
        """A token was clicked in token view."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.passages: list[Shown] = []
        self.tokens: dict[int, list[TokenMark]] = {}
        self._positions: list[tuple[int, int]] | None = None
        self._content: Content | None = None

    # --- state -------------------------------------------------------------------------------------------------

    def set_story(self, passages: list[Shown], tokens: dict[int, list[TokenMark]]) -> None:
        self.passages = list(passages)
        self.tokens = tokens
        self._changed()

    def append(self, passage_id: int, text: str) -> None:
        """Add streamed text to the end of ``passage_id`` (the last passage shown)."""
        if self.passages and self.passages[-1].passage_id == passage_id:
            last = self.passages[-1]
            self.passages[-1] = Shown(last.passage_id, last.author, last.text + text)
            self._changed()

    def text_of(self, passage_id: int) -> str | None:
        return next((p.text for p in self.passages if p.passage_id == passage_id), None)

    @property
    def full_text(self) -> str:
        return "".join(p.text for p in self.passages)

    def token_positions(self) -> list[tuple[int, int]]:
        """(passage index, token index) of every token the reader can pick in token view, in story order."""
        if self._positions is None:
            self._positions = [
                (i, j)
                for i, p in enumerate(self.passages)
                for j in range(len(self.tokens.get(p.passage_id, ())))
            ]
        return self._positions

    def token_at(self, index: int) -> tuple[Shown, int, TokenMark] | None:
        positions = self.token_positions()
        if not 0 <= index < len(positions):
            return None
        i, j = positions[index]
        passage = self.passages[i]
        return passage, j, self.tokens[passage.passage_id][j]

    def _changed(self) -> None:
        self._positions = None
        self._content = None
        self.refresh(layout=True)

    def watch_token_view(self) -> None:
        self._changed()

    def watch_cursor(self) -> None:
        self._content = None
        self.refresh()

    def watch_window_start(self) -> None:
        self._content = None
        self.refresh()

    def watch_placeholder(self) -> None:
        self._changed()

    def notify_style_update(self) -> None:
        self._content = None  # the theme or the CSS changed: the spans' styles must be looked up again
        super().notify_style_update()

    # --- drawing -----------------------------------------------------------------------------------------------

    def render(self) -> Content:
        if self._content is None:
            self._content = self._build()
        return self._content

    def _build(self) -> Content:
        text = printable(self.full_text)
        if not text:
            return Content(self.placeholder, spans=[Span(0, len(self.placeholder), self.get_visual_style("story-text--placeholder", partial=True))])
        style = self.get_visual_style
        author_style = {a: style(f"story-text--{a}", partial=True) for a in ("user", "model")}
        spans: list[Span] = []
        offset = 0
        starts: list[int] = []
        for p in self.passages:
            starts.append(offset)
            end = offset + len(p.text)
            if end > offset:
                spans.append(Span(offset, end, author_style.get(p.author, author_style["model"])))
            offset = end
        if 0 < self.window_start <= len(text):
            spans.append(Span(0, self.window_start, style("story-text--outside", partial=True)))
        if self.token_view:
            # Not partial: Textual drops an opaque background from a partial style, and these are backgrounds.
            shades = [style(f"story-text--p{i}") for i in range(PROB_BUCKETS)]
            cursor_style = style("story-text--cursor")
            for n, (i, j) in enumerate(self.token_positions()):
                mark = self.tokens[self.passages[i].passage_id][j]
                a, b = starts[i] + mark.start, starts[i] + max(mark.end, mark.start)
                if b <= a:
                    continue
                spans.append(Span(a, b, shades[prob_bucket(mark.prob)] + Style.from_meta({"@click": f"pick({n})"})))
                if n == self.cursor:
                    spans.append(Span(a, b, cursor_style))
        return Content(text, spans=spans)

    def action_pick(self, index: int) -> None:
        self.cursor = index
        self.post_message(self.TokenClicked(index))


class StoryView(VerticalScroll, can_focus=True):
    """The scrolling frame of the story; the token cursor's keys while token view is on."""

    BINDINGS = [
        Binding("left", "move_token(-1)", "Previous token", show=False),
        Binding("right", "move_token(1)", "Next token", show=False),
        Binding("enter", "choose_token", "Alternatives", show=False),
    ]

    follow: var[bool] = var(True)
    """Keep the end of the story in view as text streams in; off while the reader has scrolled back."""

    @dataclass
    class TokenChosen(Message):
        """The reader asked for the alternatives of a token (Enter or a click in token view)."""

        passage_id: int
        token_index: int
        """Index of the token among its passage's tokens."""
        mark: TokenMark

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.story_text = StoryText(id="story-text")

    def compose(self):  # type: ignore[no-untyped-def]
        yield self.story_text

    # --- what the screen calls -------------------------------------------------------------------------------

    def show(self, passages: list[Shown], tokens: dict[int, list[TokenMark]]) -> None:
        """Show a whole story (opened, undone, branch switched): jump to its end."""
        self.story_text.set_story(passages, tokens)
        if self.story_text.cursor is not None and self.story_text.cursor >= len(self.story_text.token_positions()):
            self.story_text.cursor = None
        self.follow = True
        self.scroll_end(animate=False, immediate=False)

    def append(self, passage_id: int, text: str) -> None:
        """Streamed text: follow it if the reader is at the end, else leave the view where it is."""
        self.story_text.append(passage_id, text)
        if self.follow:
            self.scroll_end(animate=False, immediate=False)

    @property
    def token_view(self) -> bool:
        return self.story_text.token_view

    @token_view.setter
    def token_view(self, on: bool) -> None:
        self.story_text.token_view = on
        if on and self.story_text.cursor is None and self.story_text.token_positions():
            self.story_text.cursor = len(self.story_text.token_positions()) - 1

    # --- scrolling ---------------------------------------------------------------------------------------------

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        # Growing text never moves scroll_y up, so a move up is the reader scrolling back; reaching the
        # end again (by scrolling or the End key) turns following back on.
        if new < old and new < self.max_scroll_y:
            self.follow = False
        elif new >= self.max_scroll_y:
            self.follow = True

    # --- token cursor ------------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("move_token", "choose_token"):
            return self.token_view and bool(self.story_text.token_positions())
        return True

    def action_move_token(self, step: int) -> None:
        positions = self.story_text.token_positions()
        cursor = self.story_text.cursor
        cursor = len(positions) - 1 if cursor is None else max(0, min(len(positions) - 1, cursor + step))
        self.story_text.cursor = cursor
        self._scroll_to_cursor()

    def action_choose_token(self) -> None:
        cursor = self.story_text.cursor
        if cursor is not None:
            self._choose(cursor)

    def on_story_text_token_clicked(self, event: StoryText.TokenClicked) -> None:
        event.stop()
        self._choose(event.index)

    def _choose(self, index: int) -> None:
        found = self.story_text.token_at(index)
        if found is not None:
            passage, j, mark = found
            self.post_message(self.TokenChosen(passage.passage_id, j, mark))

    def _scroll_to_cursor(self) -> None:
        """Bring the cursor's token into view (its line estimated from its place in the text)."""
        found = self.story_text.token_at(self.story_text.cursor or 0)
        if found is None:
            return
        passage, _, mark = found
        offset = 0
        for p in self.story_text.passages:
            if p.passage_id == passage.passage_id:
                break
            offset += len(p.text)
        total = max(1, len(self.story_text.full_text))
        y = int(self.virtual_size.height * (offset + mark.start) / total)
        if not self.scrollable_content_region.height:
            return
        if not self.scroll_y <= y < self.scroll_y + self.scrollable_content_region.height:
            self.follow = False
            self.scroll_to(y=max(0, y - self.scrollable_content_region.height // 2), animate=False)
