"""slmtui/tui/widgets/training_text.py: what the training screen says of a run, from a recorded one."""

from __future__ import annotations

from slmtui.training.process import TrainingSession
from slmtui.tui.widgets.training_text import describe_status
from tests.training_runs import recorded_events


def test_a_finished_run_says_where_its_model_was_saved() -> None:
    session = TrainingSession()
    for line in recorded_events(steps=60, done=True):
        session.feed_line(line)
    assert "Done (max steps): my-novels saved at step 60" in describe_status(session.state).plain
