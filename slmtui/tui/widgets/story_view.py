"""The story as one flowing text: the user's passages and the model's told apart by style.

A line-based ``ScrollView`` (as Textual's ``Log``): the text is wrapped once into line offsets, streamed text
re-wraps only its last paragraph, and each frame draws only the lines in view, styled as they are drawn (who
wrote what, the part outside the model's window dimmed, token shades). So the cost of a frame does not grow
with the story, and no frame changes the screen's layout. It follows the stream while the reader is at the
bottom and stays put when they scroll back. Text can be selected with the mouse and copied.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from textual.binding import Binding
from textual.content import Content, Span
from textual.geometry import Offset, Size
from textual.message import Message
from textual.reactive import reactive, var
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip
from textual.style import Style

from slmtui.core.token_events import Alternative
from slmtui.tui.widgets.text_lines import printable, wrap_offsets
from slmtui.writing.stream import TokenMark

LINE_CACHE = 1024
"""Rendered lines kept per view (a screenful is ~50)."""
PROB_BUCKETS = 5
"""Token view shades: story-view--p0 (unlikely) .. story-view--p4 (near certain), styled in app.tcss."""
WARM_BELOW = 0.01
"""Probability colouring: a token the model gave less than this is drawn warm (story-view--warm) ..."""
HOT_BELOW = 0.002
"""... and under this, hot (story-view--hot). Of the bundled model's own tokens at the default sampling (20
continuations of 120 tokens, seeds 0-19; AMD EPYC, shared), 7% fall under 1% (about one a sentence: where the
story turned), 17% under 2%, 34% under 5%, none under 0.2%: top-k and top-p cut those, so hot marks what
only wilder sampling or a branch from the token view writes."""


@dataclass(frozen=True)
class Shown:
    """One passage as it is drawn."""

    passage_id: int
    author: str
    """"user" or "model"."""
    text: str


def prob_bucket(prob: float) -> int:
    return min(PROB_BUCKETS - 1, int(prob * PROB_BUCKETS))


class StoryView(ScrollView, can_focus=True):
    """The story's text; the token cursor's keys while token view is on."""

    COMPONENT_CLASSES = {
        "story-view--user",
        "story-view--model",
        "story-view--outside",
        "story-view--cursor",
        "story-view--placeholder",
        "story-view--lore-key",
        *(f"story-view--p{i}" for i in range(PROB_BUCKETS)),
        "story-view--warm",
        "story-view--hot",
    }

    BINDINGS = [
        Binding("left", "move_token(-1)", "Previous token", show=False),
        Binding("right", "move_token(1)", "Next token", show=False),
        Binding("enter", "choose_token", "Alternatives", show=False),
    ]

    token_view: reactive[bool] = reactive(False)
    """Shade each generated token by its probability, and let the reader pick an alternative."""
    cursor: reactive[int | None] = reactive(None)
    """Index into ``token_positions()`` of the token under the cursor, in token view."""
    prob_colours: reactive[bool] = reactive(False)
    """Draw the tokens the model found unlikely (``WARM_BELOW``, ``HOT_BELOW``) in warmer colours, while
    reading and writing (token view, which shades every token, takes over while it is on)."""
    window_start: reactive[int] = reactive(0)
    """Offset in the whole text where the model's window begins: the text before it is dimmed."""
    placeholder: reactive[str] = reactive("")
    """Shown when the story is empty."""
    lore_spans: var[tuple[tuple[int, int], ...]] = var(())
    """(start, end) in the text of each key of a lore entry the model reads (writing/lore.key_spans), sorted:
    marked quietly, so the writer sees what brought an entry in."""
    follow: var[bool] = var(True)
    """Keep the end of the story in view as text streams in; off while the reader has scrolled back."""

    @dataclass
    class AlternativeChosen(Message):
        """The reader picked another token in place of one the model wrote (token view: Enter or a click shows
        the alternatives): rewrite the story from there."""

        passage_id: int
        token_index: int
        """Index of the token among its passage's tokens."""
        alternative: Alternative

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.passages: list[Shown] = []
        self.tokens: dict[int, list[TokenMark]] = {}
        self._text = ""
        """The whole story as drawn (``printable``): the passages' texts joined."""
        self._starts: list[int] = []
        """Where each passage begins in ``_text``."""
        self._lines: list[tuple[int, int]] = []
        self._wrap_width = 0
        self._positions: list[tuple[int, int]] | None = None
        self._marks: list[tuple[int, int, int, float]] | None = None
        """Token view: (start, end, position index, prob) of every token in ``_text``, in order."""
        self._styles: dict[str, Style] = {}
        self._line_cache: dict[tuple[object, ...], Strip] = {}
        self._lore_version = 0

    # --- the story ---------------------------------------------------------------------------------------------

    def show(self, passages: list[Shown], tokens: dict[int, list[TokenMark]]) -> None:
        """Show a whole story (opened, undone, branch switched): jump to its end."""
        self.passages = list(passages)
        self.tokens = tokens
        self._text = printable("".join(p.text for p in self.passages))
        self._line_cache = {}  # new text at the same offsets
        self._starts = []
        offset = 0
        for p in self.passages:
            self._starts.append(offset)
            offset += len(p.text)
        self._tokens_changed()
        if self.cursor is not None and self.cursor >= len(self.token_positions()):
            self.cursor = None
        self._rewrap(0)
        self.follow = True
        self._scroll_end()

    def append(self, passage_id: int, text: str) -> None:
        """Streamed text for the last passage: re-wrap its last paragraph, follow it if the reader is there."""
        if not text or not self.passages or self.passages[-1].passage_id != passage_id:
            return
        last = self.passages[-1]
        self.passages[-1] = Shown(last.passage_id, last.author, last.text + text)
        # Greedy wrapping never moves a break before the last line, so re-wrap from the line before it (not
        # from the paragraph's start: a model's paragraph can run to thousands of characters, every frame).
        start = self._text.rfind("\n") + 1
        if len(self._lines) >= 2 and self._lines[-2][0] > start:
            start = self._lines[-2][0]
        self._text += printable(text)
        self._tokens_changed()
        self._rewrap(start)
        if self.follow:
            self.scroll_end(animate=False, immediate=False)

    @property
    def full_text(self) -> str:
        return "".join(p.text for p in self.passages)

    def token_positions(self) -> list[tuple[int, int]]:
        """(passage index, token index) of every token the reader can pick in token view, in story order."""
        if self._positions is None:
            self._positions = [
                (i, j) for i, p in enumerate(self.passages) for j in range(len(self.tokens.get(p.passage_id, ())))
            ]
        return self._positions

    def token_at(self, index: int) -> tuple[Shown, int, TokenMark] | None:
        positions = self.token_positions()
        if not 0 <= index < len(positions):
            return None
        i, j = positions[index]
        passage = self.passages[i]
        return passage, j, self.tokens[passage.passage_id][j]

    def _tokens_changed(self) -> None:
        self._positions = None
        self._marks = None
        if self.token_view or self.prob_colours:  # the shades of cached lines may have changed
            self._line_cache = {}

    # --- wrapping ----------------------------------------------------------------------------------------------

    def _rewrap(self, start: int) -> None:
        """Wrap the text from offset ``start`` (a paragraph's start) on; the lines before it stand."""
        width = self.scrollable_content_region.width
        if width <= 0:
            return  # not laid out yet: on_resize wraps
        if width != self._wrap_width or not self._text:
            self._wrap_width, start = width, 0
        keep = bisect_right(self._lines, (start, -1))  # lines that begin before the paragraph
        text = self._text or self.placeholder
        before = len(self._lines)
        self._lines[keep:] = wrap_offsets(text, start, width) if text else []
        if start and len(self._lines) == before:
            self.refresh_lines(keep, before - keep)  # the common case while streaming: the last line grew
        else:
            self._resize_lines(Size(width, len(self._lines)))

    def _resize_lines(self, size: Size) -> None:
        """Set the virtual size to the lines' count. ``virtual_size`` is a layout reactive: setting it re-lays
        out and repaints the whole screen, ~8 times a second while a model streams new lines, and the main
        thread's time is the engine's (the worker waits for the GIL while it draws). While the scrollbars stay
        as they were, only this view and its scrollbar repaint."""
        old = self.virtual_size
        view = self.scrollable_content_region.height
        if self.is_mounted and old.width == size.width and (old.height > view) == (size.height > view):
            self.set_reactive(StoryView.virtual_size, size)
            if self.show_vertical_scrollbar:
                self.vertical_scrollbar.window_virtual_size = size.height
            self.refresh()
        else:
            self.virtual_size = size
            self.refresh()

    def on_resize(self) -> None:
        if self.scrollable_content_region.width != self._wrap_width:
            self._rewrap(0)
            if self.follow:
                self._scroll_end()

    def _scroll_end(self) -> None:
        """To the end, after the coming layout. Forced: on the first layout the scrollbar is not shown yet
        (the gutter is kept for it, so no second resize comes), and an unforced scroll would be refused."""
        self.scroll_end(animate=False, immediate=False, force=True)

    # --- drawing -----------------------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        self._styles = {}  # the theme or the CSS changed: look the spans' styles up again
        self._line_cache = {}
        super().notify_style_update()

    def _style(self, name: str) -> Style:
        if name not in self._styles:
            # Backgrounds need the full style: Textual drops an opaque background from a partial one.
            background = name.startswith(("p", "cursor"))
            self._styles[name] = self.get_visual_style(f"story-view--{name}", partial=not background)
        return self._styles[name]

    def _token_marks(self) -> list[tuple[int, int, int, float]]:
        if self._marks is None:
            self._marks = []
            for n, (i, j) in enumerate(self.token_positions()):
                mark = self.tokens[self.passages[i].passage_id][j]
                if mark.end > mark.start:
                    self._marks.append((self._starts[i] + mark.start, self._starts[i] + mark.end, n, mark.prob))
        return self._marks

    def _spans(self, a: int, b: int) -> list[Span]:
        """The styles of ``_text[a:b]``, as spans relative to ``a``."""
        spans: list[Span] = []
        first = max(0, bisect_right(self._starts, a) - 1)
        for i in range(first, len(self.passages)):
            start = self._starts[i]
            if start >= b:
                break
            end = start + len(self.passages[i].text)
            if end > a:
                author = "user" if self.passages[i].author == "user" else "model"
                spans.append(Span(max(start, a) - a, min(end, b) - a, self._style(author)))
        if self.window_start > a:
            spans.append(Span(0, min(self.window_start, b) - a, self._style("outside")))
        keys = self.lore_spans
        for start, end in keys[max(0, bisect_right(keys, (a, -1)) - 1):]:
            if start >= b:
                break
            if end > a:
                spans.append(Span(max(start, a) - a, min(end, b) - a, self._style("lore-key")))
        if self.prob_colours and not self.token_view:
            marks = self._token_marks()
            k = max(0, bisect_right(marks, (a, -1, -1, 0.0)) - 1)
            for start, end, _, prob in marks[k:]:
                if start >= b:
                    break
                if end > a and prob < WARM_BELOW:
                    spans.append(Span(max(start, a) - a, min(end, b) - a,
                                      self._style("hot" if prob < HOT_BELOW else "warm")))
        if self.token_view:
            marks = self._token_marks()
            k = max(0, bisect_right(marks, (a, -1, -1, 0.0)) - 1)
            for start, end, n, prob in marks[k:]:
                if start >= b:
                    break
                if end <= a:
                    continue
                s, e = max(start, a) - a, min(end, b) - a
                spans.append(Span(s, e, self._style(f"p{prob_bucket(prob)}") + Style.from_meta({"@click": f"pick({n})"})))
                if n == self.cursor:
                    spans.append(Span(s, e, self._style("cursor")))
        return spans

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        if index >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        a, b = self._lines[index]
        selection = self.text_selection
        span = selection.get_span(index) if selection is not None else None
        # A line's look depends only on its text and on what styles it: cached, so scrolling (a stream that
        # follows its end scrolls every frame) repaints old lines from the cache (as Textual's Log does).
        key = (a, b, bool(self._text), self.window_start if self.window_start > a else -1, self.token_view,
               self.cursor if self.token_view else None, self._lore_version, self.prob_colours)
        # The strip as the compositor gets it (cropped to the view, offsets for the mouse) depends only on that
        # and on the line's place and the view's width: cached too, as each Strip costs ~7 small caches to make,
        # and a stream that follows its end repaints every line of its view each frame (four views with N=4).
        placed = (key, scroll_x, width, index)  # the view's own style: notify_style_update empties the cache
        if span is None:
            done = self._line_cache.get(placed)
            if done is not None:
                return done
        strip = self._line_cache.get(key) if span is None else None
        if strip is None:
            if self._text:
                content = Content(self._text[a:b], spans=self._spans(a, b))
            else:
                content = Content(self.placeholder[a:b], spans=[Span(0, b - a, self._style("placeholder"))])
            if span is not None:
                start, end = span
                content = content.stylize(self.screen.get_visual_style("screen--selection"), start,
                                          len(content) if end == -1 else end)
            strip = Strip(content.render_segments(self.visual_style), content.cell_length)
            if span is None:
                self._cache_line(key, strip)
        strip = strip.crop_extend(scroll_x, scroll_x + width, self.rich_style).apply_offsets(scroll_x, index)
        if span is None:
            self._cache_line(placed, strip)
        return strip

    def _cache_line(self, key: tuple[object, ...], strip: Strip) -> None:
        """Keep a rendered line, dropping the oldest past ``LINE_CACHE`` entries."""
        if len(self._line_cache) >= LINE_CACHE:
            self._line_cache.pop(next(iter(self._line_cache)))
        self._line_cache[key] = strip

    # --- selection ---------------------------------------------------------------------------------------------

    def _offset_of(self, x: int, y: int) -> int:
        if y >= len(self._lines):
            return len(self._text)
        a, b = self._lines[y]
        return min(a + x, b)

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        """The story's own text under the selection: soft line breaks are not copied as newlines."""
        text = self.full_text
        if not text:
            return None
        a = 0 if selection.start is None else self._offset_of(selection.start.x, selection.start.y)
        b = len(text) if selection.end is None else self._offset_of(selection.end.x, selection.end.y)
        return text[a:b], "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()

    # --- reactives ---------------------------------------------------------------------------------------------

    def watch_token_view(self, on: bool) -> None:
        if on and self.cursor is None and self.token_positions():
            self.cursor = len(self.token_positions()) - 1
        self.refresh()

    def watch_prob_colours(self) -> None:
        self._line_cache = {}
        self.refresh()

    def watch_cursor(self) -> None:
        self.refresh()

    def watch_window_start(self, old: int, new: int) -> None:
        first, last = self._line_of(min(old, new)), self._line_of(max(old, new))
        self.refresh_lines(first, last - first + 1)  # only the lines the dimming moved over

    def watch_lore_spans(self) -> None:
        self._lore_version += 1  # the marks are part of a cached line's look
        self.refresh()

    def watch_placeholder(self) -> None:
        self._line_cache = {}
        if not self._text:
            self._rewrap(0)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        # Growing text never moves scroll_y up, so a move up is the reader scrolling back; reaching the
        # end again (by scrolling or the End key) turns following back on.
        if new < old and new < self.max_scroll_y:
            self.follow = False
        elif new >= self.max_scroll_y:
            self.follow = True

    # --- token cursor ------------------------------------------------------------------------------------------

    def toggle_token_view(self) -> bool:
        """Turn token view on (focused here, with a word on what to do) or off; returns whether it is on."""
        self.token_view = not self.token_view
        if self.token_view:
            self.focus()
            if not self.token_positions():
                self.notify("Token view shades the tokens the model writes from now on; none to show yet.", timeout=4)
            else:
                self.notify("Token view: ←/→ move between tokens, Enter shows the alternatives.", timeout=4)
        return self.token_view

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("move_token", "choose_token"):
            return self.token_view and bool(self.token_positions())
        return True

    def action_move_token(self, step: int) -> None:
        positions = self.token_positions()
        cursor = self.cursor
        self.cursor = len(positions) - 1 if cursor is None else max(0, min(len(positions) - 1, cursor + step))
        self._scroll_to_cursor()

    def action_choose_token(self) -> None:
        if self.cursor is not None:
            self._choose(self.cursor)

    def action_pick(self, index: int) -> None:
        """A click on a token in token view."""
        self.cursor = index
        self._choose(index)

    def _choose(self, index: int) -> None:
        """Show the token's alternatives; the one picked goes up as ``AlternativeChosen``."""
        from slmtui.tui.modals import AlternativesScreen  # here: the dialogs import this module

        found = self.token_at(index)
        if found is None:
            return
        passage, j, mark = found

        def picked(alt: Alternative | None) -> None:
            if alt is not None:
                self.post_message(self.AlternativeChosen(passage.passage_id, j, alt))

        self.app.push_screen(AlternativesScreen(passage.text[mark.start : mark.end], mark.prob, mark.alternatives),
                             picked)

    def _line_of(self, offset: int) -> int:
        """The wrapped line holding ``offset`` in the text."""
        return max(0, bisect_right(self._lines, (offset, len(self._text) + 1)) - 1)

    def show_range(self, start: int, end: int) -> None:
        """Scroll ``_text[start:end]`` (a search's match) into view and select it, so it stands out and
        ctrl+c copies it."""
        if not 0 <= start < end <= len(self._text):
            return
        first, last = self._line_of(start), self._line_of(end - 1)
        height = self.scrollable_content_region.height
        self.follow = False
        # After the layout that a new path's length brings: before it, the scroll is clamped to the old one.
        target = max(0, first - height // 3)
        self.call_after_refresh(lambda: self.scroll_to(y=target, animate=False, immediate=True))
        self.screen.selections = {self: Selection(Offset(start - self._lines[first][0], first),
                                                  Offset(end - self._lines[last][0], last))}

    def passage_start(self, passage_id: int) -> int | None:
        """Where a passage shown begins in the text."""
        for shown, start in zip(self.passages, self._starts):
            if shown.passage_id == passage_id:
                return start
        return None

    def _scroll_to_cursor(self) -> None:
        found = self.token_at(self.cursor or 0)
        if found is None:
            return
        passage, _, mark = found
        offset = self._starts[self.passages.index(passage)] + mark.start
        line = self._line_of(offset)
        height = self.scrollable_content_region.height
        if not self.scroll_y <= line < self.scroll_y + height:
            self.follow = False
            self.scroll_to(y=max(0, line - height // 2), animate=False)
