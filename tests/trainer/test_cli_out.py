"""slm-train never destroys what it did not write: where --out, --name, --init-from and --resume may save.

Each refused case exits 2 with one line on stderr and no traceback, and every file that existed before
(under SLMTUI_HOME and the test's folder: corpus, notes, models, stories.db, config.toml) is byte-identical
afterwards, inodes included (tests/fs_snapshot.py). The refusals come before the corpus is read, so these
runs take milliseconds; the few that train use the tiny preset for two steps.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from slmtui.core import paths
from slmtui.core.errors import SlmError
from slmtui.engine.model_io import load_model_dir
from tests.fs_snapshot import assert_unchanged, snapshot
from trainer.cli import main
from trainer.config import PRESETS, preset
from trainer.events import Event, StepEvent
from trainer.loop import RunSpec, train

from excerpts import book_excerpt

REPO = Path(__file__).resolve().parents[2]


def run_train(argv: list[str]) -> tuple[int, str, str]:
    """``trainer.cli.main`` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def assert_refused(code: int, err: str, fragment: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("slm-train: error: ") and fragment in lines[0], lines[0]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corp"
    folder.mkdir()
    (folder / "willows.txt").write_text(book_excerpt("grahame-wind-in-the-willows.txt", 12_000), encoding="utf-8")
    return folder


@pytest.fixture
def user_data(tiny_model_dir: Path) -> Path:
    """A user's data as it would be: a model, stories.db, config.toml with a comment, a notes folder."""
    paths.stories_db().write_bytes(b"SQLite format 3\x00" + bytes(range(256)))
    paths.config_dir().mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text("# my settings\n[sampling]\ntemperature = 0.7\n")
    shutil.copytree(tiny_model_dir, paths.models_dir() / "mine")
    return tiny_model_dir


def _notes(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("notes\n")
    (folder / "sub" / "thesis.md").write_text("thesis\n")
    return folder


# case: (arguments after --corpus CORPUS --preset tiny --max-steps 10, given tmp_path and the corpus), words
CASES: dict[str, tuple[Callable[[Path, Path], list[str]], str]] = {
    "out is a folder of notes": (lambda t, c: ["--out", str(_notes(t / "out"))], "is not empty and is not a model folder"),
    "out is the corpus": (lambda t, c: ["--out", str(c)], "is the corpus"),
    "out is inside the corpus": (lambda t, c: ["--out", str(c / "models" / "m")], "inside the corpus"),
    "out holds the corpus": (lambda t, c: ["--out", str(t)], "holds the corpus"),
    "out is the models folder": (lambda t, c: ["--out", str(paths.models_dir())], "is the models folder"),
    "out is the data folder": (lambda t, c: ["--out", str(paths.data_dir())], "is slmtui's data folder"),
    "out is SLMTUI_HOME": (lambda t, c: ["--out", os.environ["SLMTUI_HOME"]], "holds slmtui's data folder"),
    "out is the config folder": (lambda t, c: ["--out", str(paths.config_dir())], "is slmtui's config folder"),
    "out is stories.db": (lambda t, c: ["--out", str(paths.stories_db())], "is stories.db"),
    "out is a file": (lambda t, c: ["--out", str(_file(t / "somefile.txt"))], "is a file"),
    "out is a FIFO": (lambda t, c: ["--out", str(_fifo(t / "pipe"))], "is a FIFO"),
    "out is a device": (lambda t, c: ["--out", "/dev/null"], "is a device"),
    "out is a link to an empty folder": (lambda t, c: ["--out", str(_link(t / "link", t / "empty"))], "symbolic link"),
    "out is a model folder": (lambda t, c: ["--out", str(paths.models_dir() / "tiny")], "already holds a model"),
    "name is a model": (lambda t, c: ["--name", "tiny"], "already holds a model"),
    "name is a folder of notes": (lambda t, c: ["--name", _notes(paths.models_dir() / "notes").name],
                                  "is not empty and is not a model folder"),
    "init-from onto an existing name": (lambda t, c: ["--init-from", "tiny", "--name", "mine"], "already holds a model"),
    "init-from onto itself": (lambda t, c: ["--init-from", "tiny", "--name", "tiny"], "always writes a new folder"),
    "init-from onto an existing out": (lambda t, c: ["--init-from", "tiny", "--out", str(paths.models_dir() / "mine")],
                                       "already holds a model"),
    "init-from onto notes": (lambda t, c: ["--init-from", "tiny", "--out", str(_notes(t / "out"))], "not a model folder"),
    "resume a folder of notes": (lambda t, c: ["--resume", "--out", str(_notes(t / "out"))], "not a model folder"),
    "resume the data folder": (lambda t, c: ["--resume", "--out", str(paths.data_dir())], "is slmtui's data folder"),
    "resume through a link": (lambda t, c: ["--resume", "--out", str(_link(t / "link", paths.models_dir() / "tiny"))],
                              "symbolic link"),
}


def _file(path: Path) -> Path:
    path.write_text("my thesis, chapter 1\n")
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _link(link: Path, target: Path) -> Path:
    target.mkdir(exist_ok=True)
    link.symlink_to(target)
    return link


@pytest.mark.parametrize("case", list(CASES))
def test_a_place_that_is_not_a_model_folder_to_replace_is_refused_untouched(
    case: str, tmp_path: Path, corpus: Path, user_data: Path, slmtui_home: Path
) -> None:
    make_args, words = CASES[case]
    args = make_args(tmp_path, corpus)
    before = {root: snapshot(root) for root in (tmp_path, slmtui_home)}
    code, stdout, err = run_train(["--corpus", str(corpus), "--preset", "tiny", "--max-steps", "10",
                                   "--progress", "none", *args])
    assert_refused(code, err, words)
    assert stdout == ""
    for root, snap in before.items():
        assert_unchanged(snap, snapshot(root))
    assert not paths.cache_dir().exists()  # refused before the corpus was read or tokenised


def test_the_issues_reproduction_in_a_real_process(tmp_path: Path, corpus: Path) -> None:
    """`slm-train --preset tiny --max-steps 10 --progress none --corpus corp --out out` beside notes."""
    _notes(tmp_path / "out")
    before = snapshot(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "trainer", "--preset", "tiny", "--max-steps", "10", "--progress",
                           "none", "--corpus", "corp", "--out", "out"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert_refused(proc.returncode, proc.stderr, "is not empty and is not a model folder")
    assert str(tmp_path / "out") in proc.stderr
    assert_unchanged(before, snapshot(tmp_path))


def test_an_empty_folder_may_be_used(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run_train(["--corpus", str(corpus), "--preset", "tiny", "--max-steps", "2", "--progress", "none",
                              "--out", str(out)])
    assert code == 0, err
    assert load_model_dir(out).info.training["steps"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corp", "out"]  # nothing left beside it


def test_a_folder_filled_during_the_run_is_not_replaced_at_the_end(tmp_path: Path, corpus: Path) -> None:
    """Checked at the start (empty: fine) and again at the rename (someone's file: refused); the model
    just trained is kept beside it and the error says where."""
    out = tmp_path / "out"
    out.mkdir()

    def emit(event: Event) -> None:
        if isinstance(event, StepEvent) and event.step == 1:
            (out / "notes.txt").write_text("written during the run\n")

    spec = RunSpec(out=out, corpus=corpus, model=preset("tiny").model, train=replace(PRESETS["tiny"].train, max_steps=2),
                   tokenizer="bpe:512", preset="tiny")
    with pytest.raises(SlmError) as e:
        train(spec, emit)
    assert "is not empty and is not a model folder" in str(e.value)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "written during the run\n"
    kept = Path(str(e.value).rsplit("the new model is kept at ", 1)[1])
    assert load_model_dir(kept).info.training["steps"] == 2
