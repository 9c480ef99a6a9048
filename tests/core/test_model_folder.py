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


# --- what killed saves leave behind (issue 23, item 9) ----------------------------------------------------------


def test_only_our_own_leftovers_are_removed(tiny_model_dir: Path) -> None:
    """A kill -9 inside the swap left a full copy of a model under .NAME.old-* / .NAME.tmp-* that nothing removed."""
    import os
    import shutil

    from slmtui.core.model_folder import remove_leftovers

    base = tiny_model_dir.parent
    old = base / ".tiny.old-abcd1234"
    tmp = base / ".tiny.tmp-efgh_567"
    fresh_tmp = base / ".tiny.tmp-justnow1"  # a save in progress in another process: too young to touch
    for copy in (old, tmp, fresh_tmp):
        shutil.copytree(tiny_model_dir, copy)
    os.utime(tmp, (0, 0))
    for f in tmp.iterdir():
        os.utime(f, (0, 0))
    not_ours = [base / ".tiny.old-notamodel", base / ".notes.old-abcd1234", base / ".tiny.old-short"]
    # not a model folder; beside no model "notes"; not our naming (mkdtemp's 8 characters)
    not_ours[0].mkdir()
    (not_ours[0] / "diary.txt").write_text("mine")
    shutil.copytree(tiny_model_dir, not_ours[1])
    shutil.copytree(tiny_model_dir, not_ours[2])
    link = base / ".tiny.old-linklink"
    link.symlink_to(tiny_model_dir)
    assert sorted(remove_leftovers(base)) == sorted([old, tmp])
    assert not old.exists() and not tmp.exists()
    assert fresh_tmp.is_dir() and link.is_symlink() and all(p.exists() for p in not_ours)
    assert (not_ours[0] / "diary.txt").read_text() == "mine" and read_model_info(tiny_model_dir).name == "tiny"


def test_listing_the_models_removes_the_leftovers(tiny_model_dir: Path) -> None:
    import shutil

    from slmtui.core.model_catalog import scan_models

    old = tiny_model_dir.parent / ".tiny.old-abcd1234"
    shutil.copytree(tiny_model_dir, old)
    scan_models()
    assert not old.exists() and tiny_model_dir.is_dir()


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
