"""slm-train's preflight and its saves (trainer/preflight.py, engine/model_io.py; issue 23, item 4).

What would fail at the save, after the training, is refused before the first step in one line: a name too
long for the temporary names, a folder the run may not write, a disk without room for a save, a context too
short to evaluate. What cannot be foreseen (the disk filling during the run, the folder turning read-only) is
one line with exit 1 at the save, and the last good save stays loadable. Full disks are injected ENOSPC/EROFS at
the save's write calls (safetensors' save_file), read-only folders a refused ``os.access`` (the tests run as
root, for whom chmod changes nothing).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
from pathlib import Path

import pytest

from slmtui.core import paths
from slmtui.core.model_folder import TRAIN_STATE
from slmtui.engine import model_io
from slmtui.engine.model_io import load_model_dir
from trainer import preflight
from trainer.cli import main
from trainer.train_state import ResumeState
from tests.fs_snapshot import changes, snapshot

from excerpts import book_excerpt


def run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, err.getvalue()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "books" / "willows.txt"
    path.parent.mkdir()
    path.write_text(book_excerpt("grahame-wind-in-the-willows.txt", 24_000), encoding="utf-8")
    return path


def args(corpus: Path, *more: str, steps: int = 2) -> list[str]:
    return ["--corpus", str(corpus), "--preset", "tiny", "--max-steps", str(steps), "--progress", "none", *more]


def one_line(err: str, *words: str) -> str:
    lines = err.splitlines()
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("slm-train: error: "), lines[0]
    for w in words:
        assert w.lower() in lines[0].lower(), lines[0]
    return lines[0]


def test_a_name_too_long_for_the_save_is_refused_before_the_first_step(corpus: Path) -> None:
    before = snapshot(Path(os.environ["SLMTUI_HOME"]))
    code, err = run(args(corpus, "--name", "n" * 300))  # before: trained, then ENAMETOOLONG at the save
    assert code == 2
    one_line(err, "300 bytes long", "at most 241 bytes")
    assert not changes(before, snapshot(Path(os.environ["SLMTUI_HOME"])))
    code, err = run(args(corpus, "--name", "n" * 242))  # 255 with ".NAME.old-XXXXXXXX" is one byte too many
    assert code == 2 and "at most 241" in err


def test_a_folder_the_run_may_not_write_is_refused_up_front(corpus: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight.os, "access", lambda path, mode: False)  # chmod 555, as a user other than root
    code, err = run(args(corpus, "--out", str(tmp_path / "out")))
    assert code == 1
    one_line(err, f"cannot save the model to {tmp_path / 'out'}", "is not writable")
    assert not (tmp_path / "out").exists()


def test_a_disk_without_room_for_one_save_is_refused_up_front(corpus: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    real = preflight.shutil.disk_usage
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda p: real(p)._replace(free=4096))
    code, err = run(args(corpus, "--out", str(tmp_path / "out")))
    assert code == 1
    one_line(err, "not enough space to save the model", "MiB is free")
    assert not (tmp_path / "out").exists()


def test_block_size_1_is_refused_before_the_first_step(corpus: Path, tmp_path: Path) -> None:
    code, err = run(args(corpus, "--out", str(tmp_path / "out"), "--block-size", "1"))  # before: died at the eval
    assert code == 2
    one_line(err, "--block-size 1 is too short", "at least 2 tokens")


def fail_saves(monkeypatch: pytest.MonkeyPatch, error: int, *, after: int = 0) -> None:
    """Every save after the first ``after`` fails at its first write, as a full (or read-only) disk does."""
    real, calls = model_io.save_file, [0]

    def save_file(*a: object, **k: object) -> None:
        calls[0] += 1
        if calls[0] > after:
            raise OSError(error, os.strerror(error))
        real(*a, **k)

    monkeypatch.setattr(model_io, "save_file", save_file)


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_save_that_fails_mid_run_is_one_line_and_the_last_good_save_stays(
        corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int) -> None:
    out = tmp_path / "out"
    fail_saves(monkeypatch, error, after=1)  # the step-2 save lands, the final one (step 4) finds the disk full
    code, err = run(args(corpus, "--out", str(out), "--eval-interval", "2", steps=4))
    assert code == 1
    one_line(err, f"cannot save the model to {out}: {os.strerror(error)}", "the last good save (step 2) is kept")
    assert ResumeState.load(out).step == 2 and load_model_dir(out).model is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["books", "out"], "no half-written temporary folder"


def test_a_resume_whose_save_fails_keeps_the_state_it_resumed(corpus: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    assert run(args(corpus, "--out", str(out), steps=2))[0] == 0
    saved = (out / TRAIN_STATE).read_bytes()
    fail_saves(monkeypatch, errno.ENOSPC)
    code, err = run(["--resume", "--out", str(out), "--max-steps", "3", "--progress", "none"])
    assert code == 1
    # Running past the planned end moves a cosine's rate, and the resume says so on a line of its own first.
    warning, error = err.splitlines()
    assert warning.startswith("warning: the new horizon (3 steps, was 2)"), err
    one_line(error, "No space left on device", "the last good save (step 2) is kept")
    assert (out / TRAIN_STATE).read_bytes() == saved


def test_the_first_save_failing_says_nothing_was_saved(corpus: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fail_saves(monkeypatch, errno.ENOSPC)
    code, err = run(args(corpus, "--out", str(tmp_path / "out")))
    assert code == 1
    one_line(err, "No space left on device", "nothing of this run was saved")
    assert not (tmp_path / "out").exists()


def test_the_token_cache_on_a_full_disk_is_skipped_not_fatal(corpus: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from trainer import data

    def full(path: Path, payload: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(data, "write_bytes_atomic", full)
    code, err = run(args(corpus, "--out", str(tmp_path / "out")))
    assert code == 0, err
    assert not list(paths.cache_dir().rglob("meta.json"))


def test_name_default_says_it_hides_the_bundled_default(corpus: Path) -> None:
    """Before: a user model named "default" silently took the bundled one's place (issue 23, item 9)."""
    code, err = run(args(corpus, "--name", "default"))
    assert code == 0, err
    assert "warning: a model named 'default' hides the bundled default" in err
    assert (paths.models_dir() / "default").is_dir()
