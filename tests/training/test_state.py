"""slmtui/training/state.py: a run's request as the trainer's flags."""

from __future__ import annotations

from pathlib import Path

from slmtui.training.state import RunState, TrainRequest
from trainer.config import DEFAULT_PRESET
from trainer.events import from_json

from tests.training_runs import recorded_events


def test_request_becomes_the_trainer_flags(tmp_path: Path) -> None:
    new = TrainRequest(corpus=tmp_path, preset="tiny", tokenizer="bpe:300", name="mine", max_steps=30)
    assert new.argv() == ["--preset", "tiny", "--corpus", str(tmp_path), "--tokenizer", "bpe:300", "--name", "mine",
                          "--max-steps", "30", "--progress", "jsonl"]
    assert TrainRequest(time_limit_s=900).argv() == ["--preset", DEFAULT_PRESET, "--time-limit", "900s", "--progress", "jsonl"]
    assert TrainRequest(resume=tmp_path / "m").argv() == ["--resume", "--out", str(tmp_path / "m"), "--progress", "jsonl"]


def test_the_request_asks_for_init_from_without_a_preset(tmp_path: Path) -> None:
    request = TrainRequest(corpus=tmp_path, init_from="default", name="mine", time_limit_s=600, tokenizer="bpe:9")
    assert request.argv() == ["--init-from", "default", "--corpus", str(tmp_path), "--name", "mine",
                              "--time-limit", "600s", "--progress", "jsonl"]


def _state(**kwargs: object) -> RunState:
    state = RunState()
    for line in recorded_events(**kwargs):  # type: ignore[arg-type]
        state.apply(from_json(line))
    return state


def test_a_finished_run_is_whole_though_it_ended_before_its_planned_last_step() -> None:
    """Issue 24 item 9: a time budget (or early stopping) ends a run at step 294 of the 300 planned; "Done" beside
    a bar at 98% is a contradiction. The step count still says where it ended."""
    done = _state(steps=294, max_steps=300, done=True, reason="time_limit")
    assert done.status == "done" and done.fraction == 1.0 and done.steps == (294, 300)
    running = _state(steps=120, max_steps=300)
    assert running.fraction == 0.4 and running.steps == (120, 300)
    assert RunState().fraction == 0.0 and RunState(status="starting").fraction is None
