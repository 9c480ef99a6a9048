"""slmtui/tui/widgets/run_view.py: the live view drawn from a recorded run (no trainer process)."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.widgets import ProgressBar

from slmtui.training.process import TrainingSession
from slmtui.tui.widgets.run_view import RunView
from slmtui.tui.widgets.training import Stat

from tests.training_runs import recorded_events

pytestmark = pytest.mark.anyio


class ViewHost(App[None]):
    def compose(self) -> ComposeResult:
        yield RunView()


async def test_the_bar_is_full_when_the_run_is_done() -> None:
    """Issue 24 item 9: a ten-minute fine-tune ends by its time at step 294 of the 300 its pace planned: the bar
    said 98% beside "Done"."""
    session = TrainingSession()
    for line in recorded_events(steps=294, max_steps=300, done=True, reason="time_limit"):
        session.feed_line(line)
    app = ViewHost()
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(RunView)
        view.draw(session.state)
        await pilot.pause()
        assert app.query_one(ProgressBar).percentage == 1.0
        assert app.query_one("#stat-step", Stat).value == "294 / 300"
