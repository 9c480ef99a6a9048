"""trainer/config.py: the training facts the app imports (durations, run names, corpus files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmtui.core import paths
from slmtui.core.errors import SlmError
from slmtui.core.tokenizer_spec import tokenizer_vocab_size
from trainer.config import (
    DEFAULT_PRESET,
    PRESETS,
    default_run_name,
    is_corpus_file,
    parse_duration,
    preset,
    scratch_preset,
    unique_run_name,
)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_trains_a_tokenizer_that_fits_its_model(name: str) -> None:
    recipe = preset(name)
    assert tokenizer_vocab_size(recipe.tokenizer) == recipe.model.vocab_size


def test_the_default_preset_and_an_unknown_one() -> None:
    assert DEFAULT_PRESET in PRESETS and scratch_preset(None) in PRESETS
    with pytest.raises(SlmError, match="unknown preset 'huge'; choose one of: seed, tiny, default"):
        preset("huge")


def test_parse_duration() -> None:
    assert [parse_duration(t) for t in ("90", "90s", "15m", "2h", "1h30m", " 1.5m ")] == [90, 90, 900, 7200, 5400, 90]
    assert [parse_duration(t) for t in ("", "abc", "5 minutes", "m")] == [None] * 4
    assert parse_duration("0s") == 0.0, "zero parses; whether it is a budget is TrainConfig's to say"


def test_corpus_files() -> None:
    assert is_corpus_file(Path("a/book.txt")) and is_corpus_file(Path("notes.MD"))
    refused = ["book.pdf", ".hidden.txt", ".git/x.txt", "SOURCES.md", "LICENSE.txt", "license-gpl.md"]
    assert not any(is_corpus_file(Path(p)) for p in refused)


def test_run_names(tmp_path: Path) -> None:
    assert default_run_name(None, "tiny") == "tiny-bundled"
    assert default_run_name(paths.BUNDLED_CORPUS_DIR, "seed") == "seed-bundled"
    assert default_run_name(tmp_path / "My Books", "tiny") == "My Books"
    assert unique_run_name(tmp_path / "My Books", "tiny", set()) == "My-Books"
    assert unique_run_name(None, "tiny", {"tiny-bundled", "tiny-bundled-2"}) == "tiny-bundled-3"
    assert unique_run_name(tmp_path / "...", "tiny", set()) == "model"


def test_scratch_preset_is_never_tiny() -> None:
    from trainer.config import SMALL_CORPUS_BYTES, scratch_preset

    assert {scratch_preset(n) for n in (1, SMALL_CORPUS_BYTES - 1, SMALL_CORPUS_BYTES, 10**6, 10**9)} == {"seed", "default"}
    assert scratch_preset(366_000) == "default" and scratch_preset(20_000) == "seed"
