"""`python -m trainer.export SRC DEST`: the shipped folder, and the same rule as training for DEST."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from slmtui.core import paths
from slmtui.core.model_folder import WEIGHTS
from slmtui.engine.model_io import load_model_dir
from tests.fs_snapshot import assert_unchanged, snapshot
from trainer.export import main

from excerpts import book_excerpt


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corp"
    folder.mkdir()
    (folder / "willows.txt").write_text(book_excerpt("grahame-wind-in-the-willows.txt", 4_000), encoding="utf-8")
    return folder


def export(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_export_writes_16_bit_weights_and_scores_them(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path,
                                                      corpus: Path, tmp_path: Path) -> None:
    dest = tmp_path / "shipped"
    code, err = export(capsys, str(tiny_model_dir), str(dest), "--corpus", str(corpus))
    assert code == 0, err
    assert all(t.dtype == torch.bfloat16 for t in load_file(str(dest / WEIGHTS)).values())
    training = load_model_dir(dest).info.training
    assert training["weights_dtype"] == "bf16" and training["val_bpb"] > 0


def test_export_onto_the_recorded_corpus_is_refused(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path,
                                                    corpus: Path, tmp_path: Path) -> None:
    """No --corpus: the one model.toml names is the one protected, before anything is loaded or scored."""
    src = tmp_path / "trained"
    shutil.copytree(tiny_model_dir, src)
    meta = src / "model.toml"
    meta.write_text(meta.read_text().replace("[training]", f"[training]\ncorpus = {str(corpus)!r}", 1))
    before = snapshot(tmp_path)
    code, err = export(capsys, str(src), str(corpus / "shipped"))
    assert code == 2 and err.splitlines() == [f"error: {corpus / 'shipped'} is inside the corpus ({corpus}): "
                                              "write the model somewhere else"]
    assert_unchanged(before, snapshot(tmp_path))


def test_export_needs_a_corpus(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path) -> None:
    code, err = export(capsys, str(tiny_model_dir), str(tmp_path / "shipped"))
    assert code == 2 and "does not name the corpus" in err and "give --corpus" in err
    assert not (tmp_path / "shipped").exists()


@pytest.mark.parametrize("case", ["existing model", "notes", "corpus", "models folder", "file"])
def test_export_refuses_a_dest_it_may_not_replace(case: str, capsys: pytest.CaptureFixture[str], tiny_model_dir: Path,
                                                  corpus: Path, tmp_path: Path, slmtui_home: Path) -> None:
    if case == "existing model":
        dest, extra, words = tmp_path / "shipped", [], "already holds a model: add --force"
        shutil.copytree(tiny_model_dir, dest)
    elif case == "notes":
        dest, extra, words = tmp_path / "notes", ["--force"], "is not empty and is not a model folder"
        dest.mkdir()
        (dest / "notes.txt").write_text("notes\n")
    elif case == "corpus":
        dest, extra, words = corpus, ["--force"], "is the corpus"
    elif case == "models folder":
        dest, extra, words = paths.models_dir(), ["--force"], "is the models folder"
    else:
        dest, extra, words = tmp_path / "thesis.txt", ["--force"], "is a file"
        dest.write_text("thesis\n")
    before = {root: snapshot(root) for root in (tmp_path, slmtui_home)}
    code, err = export(capsys, str(tiny_model_dir), str(dest), "--corpus", str(corpus), *extra)
    assert code == 2 and "Traceback" not in err
    assert len(err.splitlines()) == 1 and words in err, err
    for root, snap in before.items():
        assert_unchanged(snap, snapshot(root))


def test_export_force_replaces_a_model_folder(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path,
                                              corpus: Path, tmp_path: Path) -> None:
    dest = tmp_path / "shipped"
    shutil.copytree(tiny_model_dir, dest)
    code, err = export(capsys, str(tiny_model_dir), str(dest), "--corpus", str(corpus), "--dtype", "fp16", "--force")
    assert code == 0, err
    assert load_model_dir(dest).info.training["weights_dtype"] == "fp16"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corp", "shipped"]  # no old or temporary folder left
