"""Where a model folder may be written (check_model_target) and what proves a folder is a model (is_model_folder).

Every refusal is an SlmError with exit code 2 that names the path, and leaves the tree byte-identical
(tests/fs_snapshot.py, inodes included, so not even a replacement by an identical copy passes).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
import tomli_w

from slmtui.core import paths
from slmtui.core.errors import SlmError
from slmtui.core.model_folder import META, WEIGHTS, is_model_folder
from slmtui.core.model_target import check_model_target, target_path
from tests.fs_snapshot import assert_unchanged, snapshot


def refused(path: Path, *fragments: str, replace_model: bool = False, corpus: Path | None = None,
            watch: Path | None = None) -> str:
    """check_model_target refuses ``path`` with a one-line message holding ``fragments``; nothing changed."""
    root = watch or path.parent
    before = snapshot(root)
    with pytest.raises(SlmError) as e:
        check_model_target(path, replace_model=replace_model, corpus=corpus)
    assert e.value.exit_code == 2
    message = str(e.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    assert_unchanged(before, snapshot(root))
    return message


def test_new_and_empty_folders_may_be_used(tmp_path: Path) -> None:
    assert check_model_target(tmp_path / "new", replace_model=False) == tmp_path / "new"
    assert check_model_target(tmp_path / "a" / "b" / "new", replace_model=False) == tmp_path / "a" / "b" / "new"
    (tmp_path / "empty").mkdir()
    assert check_model_target(tmp_path / "empty", replace_model=False) == tmp_path / "empty"


def test_a_model_folder_is_replaced_only_when_asked(tiny_model_dir: Path) -> None:
    message = refused(tiny_model_dir, "already holds a model", "ask", replace_model=False)
    assert str(tiny_model_dir) in message
    assert check_model_target(tiny_model_dir, replace_model=True) == tiny_model_dir


def test_a_folder_of_notes_is_never_replaced(tmp_path: Path) -> None:
    notes = tmp_path / "out"
    (notes / "sub").mkdir(parents=True)
    (notes / "notes.txt").write_text("notes\n")
    (notes / "sub" / "thesis.md").write_text("thesis\n")
    for replace_model in (False, True):  # --resume or --force does not make notes a model
        refused(notes, "is not empty and is not a model folder", replace_model=replace_model)


@pytest.mark.parametrize("damage", ["no weights", "weights is a folder", "bad toml", "no model table",
                                    "toml is a link", "weights is a link", "only model.toml"])
def test_a_model_folder_must_be_proven(damage: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    """One file name proves nothing: model.toml must parse with its tables, beside real weights."""
    folder = tiny_model_dir
    if damage == "no weights":
        (folder / WEIGHTS).unlink()
    elif damage == "weights is a folder":
        (folder / WEIGHTS).unlink()
        (folder / WEIGHTS).mkdir()
    elif damage == "bad toml":
        (folder / META).write_text("format = [")
    elif damage == "no model table":
        meta = tomllib.loads((folder / META).read_text())
        del meta["model"]
        (folder / META).write_text(tomli_w.dumps(meta))
    elif damage == "toml is a link":
        real = tmp_path / "elsewhere.toml"
        (folder / META).rename(real)
        (folder / META).symlink_to(real)
        (folder / WEIGHTS).unlink()
        (folder / WEIGHTS).symlink_to(real)
    elif damage == "weights is a link":
        real = tmp_path / "weights.bin"
        (folder / WEIGHTS).rename(real)
        (folder / WEIGHTS).symlink_to(real)
    elif damage == "only model.toml":
        for p in folder.iterdir():
            if p.name != META:
                p.unlink()
    assert not is_model_folder(folder)
    refused(folder, "is not a model folder", replace_model=True)


def test_a_file_fifo_or_device_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "thesis.txt").write_text("my thesis\n")
    refused(tmp_path / "thesis.txt", "is a file", replace_model=True)
    os.mkfifo(tmp_path / "pipe")
    refused(tmp_path / "pipe", "is a FIFO", replace_model=True)
    refused(Path("/dev/null"), "is a device", replace_model=True, watch=tmp_path)


def test_a_path_below_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "thesis.txt").write_text("my thesis\n")
    refused(tmp_path / "thesis.txt" / "model", "is not a folder", watch=tmp_path)


def test_a_link_is_refused_even_to_a_model_folder(tiny_model_dir: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tiny_model_dir)
    refused(link, "symbolic link", str(tiny_model_dir), replace_model=True)
    (tmp_path / "empty").mkdir()
    (tmp_path / "to-empty").symlink_to(tmp_path / "empty")
    refused(tmp_path / "to-empty", "symbolic link")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    refused(tmp_path / "dangling", "symbolic link")


def test_target_path_keeps_a_link_at_the_end(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    assert target_path(tmp_path / "alias") == tmp_path / "alias"  # the link itself, to be refused
    assert target_path(tmp_path / "alias" / "m") == tmp_path / "real" / "m"  # folders above: resolved


@pytest.mark.parametrize("which", ["home", "data", "models", "stories.db", "config", "config.toml", "cache"])
def test_the_users_data_and_what_holds_it_are_never_targets(which: str, slmtui_home: Path,
                                                             tiny_model_dir: Path) -> None:
    (paths.stories_db()).write_bytes(b"SQLite format 3\x00")
    paths.config_dir().mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text("[sampling]\ntemperature = 0.8\n")
    paths.cache_dir().mkdir(parents=True, exist_ok=True)
    target = {"home": slmtui_home, "data": paths.data_dir(), "models": paths.models_dir(),
              "stories.db": paths.stories_db(), "config": paths.config_dir(), "config.toml": paths.config_file(),
              "cache": paths.cache_dir()}[which]
    refused(target, "never written there", replace_model=True, watch=slmtui_home)


def test_an_empty_models_folder_or_a_data_folder_not_made_yet_is_still_refused(slmtui_home: Path) -> None:
    refused(paths.data_dir(), "is slmtui's data folder", watch=slmtui_home)  # does not exist yet
    paths.models_dir().mkdir(parents=True)
    refused(paths.models_dir(), "is the models folder", watch=slmtui_home)  # exists, empty
    refused(Path("/"), "holds", watch=slmtui_home)


def test_the_corpus_is_never_a_target(tmp_path: Path) -> None:
    books = tmp_path / "books"
    books.mkdir()
    (books / "a.txt").write_text("Once upon a time.\n")
    refused(books, "is the corpus", corpus=books, replace_model=True)
    refused(books / "models" / "m", "inside the corpus", corpus=books, watch=tmp_path)
    refused(tmp_path, "holds the corpus", corpus=books, watch=tmp_path)
    refused(books / "a.txt", "is the corpus", corpus=books / "a.txt", watch=tmp_path)
    refused(tmp_path, "holds the corpus", corpus=books / "a.txt", watch=tmp_path)
    assert check_model_target(tmp_path / "model", replace_model=False, corpus=books) == tmp_path / "model"
