"""slmtui/training/process.py: the session folds the trainer's events into the run's state (recorded runs, no
trainer process; the real trainer and a fake one run from the screen in tests/tui/screens/test_training.py)."""

from __future__ import annotations

import json
from pathlib import Path

from slmtui.training.process import TrainingSession
from tests.training_runs import recorded_events


def test_state_folds_recorded_events() -> None:
    session = TrainingSession()
    for line in [*recorded_events(steps=60, done=True), "not json", '{"event": "step"}', ""]:
        session.feed_line(line)
    state = session.state
    assert state.status == "done" and state.resumable is None
    assert [s for s, _ in state.train_loss] == list(range(1, 61))
    assert [s for s, _ in state.val_loss] == [25, 50]
    assert state.sample is not None and state.sample.step == 50


def test_a_resumed_run_followed_from_its_start_gets_its_earlier_curve(tmp_path: Path) -> None:
    """Reattached (or resumed in an earlier app): the steps before the resume come from metrics.jsonl."""
    folder = tmp_path / "model"
    folder.mkdir()
    history = [line for line in recorded_events(steps=30) if '"event": "start"' not in line]
    (folder / "metrics.jsonl").write_text("\n".join(history) + "\n")
    session = TrainingSession()
    start = json.loads(recorded_events(steps=0)[0]) | {"path": str(folder), "start_step": 20}
    session.feed_line(json.dumps(start))
    assert [s for s, _ in session.state.train_loss] == list(range(1, 21))
    assert session.state.val_loss == []  # the one evaluation, at step 25, came after the resume point
