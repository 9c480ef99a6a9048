"""The user's models by name: listing (and the folders that fail to read), resolving a name or a path, and the
models folder's operations (a new name's check, rename, delete, adding a folder from elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmtui.core import paths
from slmtui.core.errors import SlmError
from slmtui.core.model_catalog import (
    add_model_folder,
    check_model_name,
    delete_model,
    list_models,
    model_folder_names,
    rename_model,
    resolve_model,
)
from slmtui.core.model_folder import ModelInfo, read_model_info
from slmtui.engine.model import GPT
from slmtui.engine.model_io import save_model_dir
from slmtui.engine.tokenizer import Tokenizer


def test_list_models(tiny_model_dir: Path, tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    save_model_dir(paths.models_dir() / "another", tiny_model, byte_tokenizer)
    (paths.models_dir() / "broken").mkdir()  # unreadable folders are skipped, not fatal
    (paths.models_dir() / ".hidden.tmp-x").mkdir()
    infos = list_models()
    names = [i.name for i in infos]
    assert names[:2] == ["another", "tiny"]
    assert "broken" not in names and ".hidden.tmp-x" not in names
    tiny = infos[names.index("tiny")]
    assert tiny.bundled is False
    assert tiny.n_params == tiny_model.num_params()
    assert tiny.training["val_bpb"] == 9.0


def test_list_models_in_an_empty_home() -> None:
    assert [m for m in list_models() if not m.bundled] == []


def test_resolve_model_by_name_and_by_path(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_model("tiny") == tiny_model_dir
    assert resolve_model(str(tiny_model_dir)) == tiny_model_dir.resolve()
    assert resolve_model(tiny_model_dir) == tiny_model_dir.resolve()
    monkeypatch.chdir(tiny_model_dir.parent)
    assert resolve_model("./tiny") == tiny_model_dir.resolve()


def test_resolve_unknown_model_lists_the_known_ones(tiny_model_dir: Path) -> None:
    with pytest.raises(SlmError, match="no model named 'nope'; models: .*tiny"):
        resolve_model("nope")
    with pytest.raises(SlmError, match="no model folder at"):
        resolve_model(str(tiny_model_dir.parent / "missing"))


def save_named(name: str, tiny_model: GPT, tokenizer: Tokenizer, base: Path | None = None) -> Path:
    return save_model_dir((base or paths.models_dir()) / name, tiny_model, tokenizer, training={"val_loss": 3.0})


def bundled_info() -> ModelInfo:
    info = read_model_info(paths.BUNDLED_MODELS_DIR / "default")
    assert info.bundled
    return info


def test_rename_refuses_a_taken_or_bad_name_and_never_the_bundled(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    a = read_model_info(save_named("a", tiny_model, byte_tokenizer))
    save_named("b", tiny_model, byte_tokenizer)
    with pytest.raises(SlmError, match="exists"):
        rename_model(a, "b")
    with pytest.raises(SlmError, match="letters"):
        rename_model(a, "../escape")
    with pytest.raises(SlmError, match="bundled"):
        rename_model(bundled_info(), "mine")
    with pytest.raises(SlmError, match="bundled"):
        delete_model(bundled_info())
    renamed = rename_model(a, "c")
    assert renamed == paths.models_dir() / "c" and read_model_info(renamed).name == "c"
    assert not (paths.models_dir() / "a").exists()


def test_a_folder_added_by_path_is_linked_and_deleting_it_keeps_the_folder(
    tmp_path: Path, tiny_model: GPT, byte_tokenizer: Tokenizer
) -> None:
    outside = save_named("elsewhere", tiny_model, byte_tokenizer, base=tmp_path)
    with pytest.raises(SlmError):
        add_model_folder(tmp_path)  # not a model folder
    link = add_model_folder(outside)
    assert link.is_symlink() and link.name == "elsewhere"
    assert add_model_folder(outside).name == "elsewhere-2"  # a second link gets its own name
    info = read_model_info(link)
    delete_model(info)
    assert not link.exists() and (outside / "model.toml").is_file()


def test_the_names_taken_and_a_new_names_check(tiny_model_dir: Path) -> None:
    (paths.models_dir() / "not-a-model").mkdir()
    (paths.models_dir() / ".tmp-half").mkdir()
    assert model_folder_names() == {"tiny", "not-a-model"}
    assert check_model_name("tiny") == "a model named “tiny” exists already"
    assert "letters, digits" in (check_model_name(".x") or "") and "letters" in (check_model_name("a b") or "")
    assert check_model_name("fresh") is None


# --- folders that cannot be read (issue 23, item 5): said in words, never a traceback ----------------------------


def test_an_unreadable_model_folder_is_listed_as_broken_with_the_reason(tiny_model_dir: Path) -> None:
    from slmtui.core.model_catalog import scan_models
    from tests.unreadable import unreadable

    with unreadable(tiny_model_dir):  # chmod 000 tiny, as its owner (not root)
        infos, broken = scan_models()
        with pytest.raises(SlmError, match=r"cannot read .*tiny.*: Permission denied"):
            read_model_info(tiny_model_dir)
    assert "tiny" not in [i.name for i in infos]
    assert [(b.name, "Permission denied" in b.reason) for b in broken if b.name == "tiny"] == [("tiny", True)]


def test_an_unreadable_models_folder_still_lists_the_bundled_ones(tiny_model_dir: Path) -> None:
    from slmtui.core.model_catalog import model_folder_names, scan_models
    from tests.unreadable import unreadable

    with unreadable(paths.models_dir()):
        infos, broken = scan_models()
        with pytest.raises(SlmError, match="cannot read the models folder"):
            model_folder_names()
    assert any(i.bundled for i in infos) and "tiny" not in [i.name for i in infos]
    assert [b.path for b in broken] == [paths.models_dir()] and "Permission denied" in broken[0].reason


def test_a_model_name_longer_than_a_folder_name_is_no_model_named() -> None:
    with pytest.raises(SlmError, match="a name of 300 characters is longer than a folder's name may be"):
        resolve_model("m" * 300)
