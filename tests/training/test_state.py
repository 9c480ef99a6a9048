"""slmtui/training/state.py: a run's request as the trainer's flags."""

from __future__ import annotations

from pathlib import Path

from slmtui.training.state import TrainRequest
from trainer.config import DEFAULT_PRESET


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
