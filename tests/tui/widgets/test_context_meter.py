"""The context meter: what the model sees, in words that fit, from the session's one Window."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from slmtui.tui.widgets.context_meter import ContextMeter
from slmtui.writing.context import Window

pytestmark = pytest.mark.anyio


class MeterApp(App[None]):
    CSS = "ContextMeter { width: 30; height: 1; }"

    def compose(self) -> ComposeResult:
        yield ContextMeter()


@pytest.mark.parametrize(("window", "words"), [
    (Window(story_tokens=0, window_tokens=0, start=0, memory_tokens=12, context_length=256), "empty story +12 mem"),
    (Window(story_tokens=310, window_tokens=52, start=900, context_length=256), "sees 52/310"),
])
async def test_a_narrow_meter_keeps_the_numbers_only(window: Window, words: str) -> None:
    """Where the words do not fit, the short form; on an empty story it read "sees 0/0" while ctx read 0/256."""
    app = MeterApp()
    async with app.run_test(size=(40, 3)) as pilot:
        meter = app.query_one(ContextMeter)
        meter.window = window
        await pilot.pause()
        text = str(meter.render())
        assert text.endswith(words), text
