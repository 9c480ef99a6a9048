"""The story view: wrapping into line offsets, streaming appends, and copying selected text."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.geometry import Offset
from textual.selection import Selection

from slmtui.tui.widgets.story_view import Shown, StoryView
from slmtui.tui.widgets.text_lines import printable, wrap_offsets

pytestmark = pytest.mark.anyio

TEXT = "The lamp had gone out in the night.\n\nAnd the sea was grey and still, as it always was."


def test_wrap_offsets_cover_the_text() -> None:
    lines = wrap_offsets(TEXT, 0, 12)
    assert all(len(TEXT[a:b]) <= 12 for a, b in lines)
    assert [TEXT[a:b] for a, b in lines][:3] == ["The lamp had", "gone out in", "the night."]
    assert TEXT[lines[3][0] : lines[3][1]] == "", "a blank line between paragraphs"
    # Only the spaces where lines were broken, and the newlines, are left out.
    rest = list(TEXT)
    for a, b in lines:
        rest[a:b] = [""] * (b - a)
    assert set("".join(rest)) <= {" ", "\n"}


def test_printable_keeps_offsets() -> None:
    assert printable("a\x07b\tc\n") == "a\ufffdb c\n"


class ViewApp(App[None]):
    def compose(self) -> ComposeResult:
        yield StoryView(id="story")


async def test_append_rewraps_like_a_fresh_wrap_and_selection_copies_the_text() -> None:
    app = ViewApp()
    async with app.run_test(size=(24, 10)) as pilot:
        view = app.query_one(StoryView)
        view.show([Shown(1, "user", "The lamp had gone out"), Shown(2, "model", "")], {})
        await pilot.pause()
        for piece in (" in the", " night.\n", "\nAnd the sea", " was grey and still."):
            view.append(2, piece)
        await pilot.pause()
        width = view.scrollable_content_region.width
        assert view._lines == wrap_offsets(view.full_text, 0, width)
        assert view.full_text == "The lamp had gone out in the night.\n\nAnd the sea was grey and still."
        # From "lamp" on line 0 to column 8 of line 1: the text as written, a space (not a newline) at the
        # soft line break.
        text = view.full_text
        lines = view._lines
        assert lines[1][0] > lines[0][1], "the first line is broken at a space"
        selected = view.get_selection(Selection(Offset(4, 0), Offset(8, 1)))
        assert selected is not None
        assert selected[0] == text[4 : lines[1][0] + 8]
        assert selected[0].startswith("lamp") and "\n" not in selected[0]
        everything = view.get_selection(Selection(None, None))
        assert everything is not None and everything[0] == text


async def test_a_long_paragraph_streamed_in_small_pieces_wraps_like_a_fresh_wrap() -> None:
    """append re-wraps from the line before the last, not the paragraph's start: the lines must not differ."""
    import random

    rng = random.Random(3)
    words = ["a", "lamp", "extraordinarily", "sea", "grey,", "still.", "x" * 30, "and", "—", "night"]
    app = ViewApp()
    async with app.run_test(size=(24, 10)) as pilot:
        view = app.query_one(StoryView)
        view.show([Shown(1, "model", "")], {})
        await pilot.pause()
        text = ""
        for _ in range(300):
            piece = rng.choice(words)
            piece = (" " if rng.random() < 0.8 else "") + piece + ("\n" if rng.random() < 0.02 else "")
            for part in (piece[: len(piece) // 2], piece[len(piece) // 2:]):  # tokens cut words in two
                view.append(1, part)
                text += part
        width = view.scrollable_content_region.width
        assert view.full_text == text and view._lines == wrap_offsets(text, 0, width)
