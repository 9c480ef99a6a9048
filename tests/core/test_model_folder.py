"""One model folder's format: model.toml read without the weights, what a resumable run is, and a swap that a crash
cut between its two renames finished. (Damage of every kind, found on loading, is tests/engine/test_model_io.py.)"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from slmtui.core.model_folder import RESUMABLE_STOPS, TRAIN_STATE, WEIGHTS, read_model_info


def test_a_swap_interrupted_between_renames_is_recovered(tiny_model_dir: Path) -> None:
    # A crash after "move the old folder aside" and before "move the new one in".
    aside = tiny_model_dir.parent / f".{tiny_model_dir.name}.old-abc123"
    tiny_model_dir.rename(aside)
    assert read_model_info(tiny_model_dir).path == tiny_model_dir
    assert not aside.exists() and (tiny_model_dir / WEIGHTS).is_file()


def test_resumable_runs_and_linked_folders(tiny_model_dir: Path) -> None:
    info = read_model_info(tiny_model_dir)
    assert not info.resumable and not info.linked
    (tiny_model_dir / TRAIN_STATE).write_bytes(b"")
    for stopped, resumable in [*((s, True) for s in RESUMABLE_STOPS), ("max_steps", False), ("early_stop", False)]:
        assert dataclasses.replace(info, training={"stopped": stopped}).resumable is resumable, stopped


def test_a_time_budget_that_ran_its_schedule_is_finished_not_resumable(tiny_model_dir: Path) -> None:
    """Issue 24 item 6: a fine-tune given ten minutes plans its schedule to fit them and ends with
    ``stopped = "time_limit"``; it is done, not "stopped early". The trainer says so in ``resumable``; older
    records are read from their train_config (no fixed steps or passes: the budget was the horizon)."""
    info = read_model_info(tiny_model_dir)
    (tiny_model_dir / TRAIN_STATE).write_bytes(b"")
    timed = {"max_steps": None, "epochs": None, "time_limit_s": 600.0}
    assert not dataclasses.replace(info, training={"stopped": "time_limit", "resumable": False}).resumable
    assert dataclasses.replace(info, training={"stopped": "time_limit", "resumable": True}).resumable
    assert not dataclasses.replace(info, training={"stopped": "time_limit", "train_config": timed}).resumable
    fixed = {**timed, "max_steps": 5000}
    assert dataclasses.replace(info, training={"stopped": "time_limit", "train_config": fixed}).resumable
