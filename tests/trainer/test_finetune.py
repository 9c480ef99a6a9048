"""Fine-tuning (``slm-train --init-from``): its defaults, the parent's score at step 0 and the before and after
everywhere it is shown, and the bad input it refuses (one line, exit 2, no folder left behind)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from slmtui.cli import main as slmtui_main
from slmtui.core import paths
from slmtui.core.model_folder import read_model_info
from slmtui.engine.evaluate import evaluate_texts
from slmtui.engine.model import GPT
from slmtui.engine.model_io import load_model_dir, save_model_dir
from slmtui.format import model_details
from trainer.config import (
    FINETUNE_DROPOUT,
    FINETUNE_MAX_PASSES,
    PRESETS,
    before_after,
    finetune_config,
    parent_optimizer,
    preset,
)
from trainer.corpus import read_corpus, split_documents
from trainer.events import DoneEvent, EvalEvent, SampleEvent, StepEvent, from_json

from excerpts import book_excerpt
from test_cli import run_main

BOOK = "grahame-wind-in-the-willows.txt"


@pytest.fixture
def book(tmp_path: Path) -> Path:
    path = tmp_path / "books" / "willows.txt"
    path.parent.mkdir()
    path.write_text(book_excerpt(BOOK, 12_000), encoding="utf-8")
    return path


def finetune(book: Path, *extra: str, progress: str = "jsonl", name: str = "mine") -> tuple[int, list[str], str]:
    return run_main(["--corpus", str(book), "--init-from", "tiny", "--name", name, "--progress", progress, *extra])


# ------------------------------------------------------------------------------------------------ the defaults


def test_defaults_evaluate_several_times_a_pass_over_one_book() -> None:
    one_book = finetune_config(train_tokens=90_000, budget_s=600, tokens_per_s=1000, block_size=256)
    steps_per_pass = 90_000 / (one_book.batch_size * 256)
    assert steps_per_pass / one_book.eval_interval >= 3, one_book
    assert one_book.time_limit_s == 600 and one_book.epochs is None
    assert one_book.lr <= PRESETS["default"].train.lr / 3, "a fine-tune must not wreck what the parent knows"
    assert one_book.patience * one_book.eval_interval <= 2 * steps_per_pass, "stops within two passes of no gain"


def test_a_budget_plans_at_most_a_few_passes_and_a_big_corpus_gets_the_big_batch() -> None:
    small = finetune_config(train_tokens=20_000, budget_s=600, tokens_per_s=1000, block_size=256)
    assert small.max_passes == FINETUNE_MAX_PASSES and small.time_limit_s == 600
    few = finetune_config(train_tokens=1_000_000, budget_s=600, tokens_per_s=1000, block_size=256)
    big = finetune_config(train_tokens=4_000_000, budget_s=600, tokens_per_s=1000, block_size=256)
    assert big.batch_size > few.batch_size
    no_budget = finetune_config(train_tokens=90_000, budget_s=None, tokens_per_s=1000, block_size=256)
    assert no_budget.epochs is not None and no_budget.time_limit_s is None and no_budget.max_passes is None


def test_before_after_words() -> None:
    assert before_after(1.9234, 1.4101) == "your books: 1.92 → 1.41 bits per byte"
    assert before_after(None, 1.4) is None and before_after(1.9, None) is None


# ------------------------------------------------------------------------------------------- before and after


def test_step_zero_scores_the_parent_and_the_model_card_shows_before_and_after(
        tiny_model_dir: Path, book: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = finetune(book, "--max-steps", "30")
    assert code == 0, err
    events = [from_json(line) for line in lines]
    first_eval = next(e for e in events if isinstance(e, EvalEvent))
    first_step = next(i for i, e in enumerate(events) if isinstance(e, StepEvent))
    assert first_eval.step == 0 and first_eval.before, "the parent is scored before any step"
    assert events.index(first_eval) < first_step
    assert isinstance(events[events.index(first_eval) + 1], SampleEvent), "and writes its step-0 sample"
    assert not any(e.before for e in events if isinstance(e, EvalEvent) and e is not first_eval)

    # The step-0 score is the parent's own, on the run's held-out text.
    parent = load_model_dir(tiny_model_dir)
    _, held_out = split_documents(read_corpus(book), val_fraction=0.05)
    assert first_eval.val_bpb == pytest.approx(evaluate_texts(parent.model, parent.tokenizer, held_out).bits_per_byte,
                                               rel=1e-3)

    done = events[-1]
    assert isinstance(done, DoneEvent) and done.parent_val_bpb == pytest.approx(first_eval.val_bpb)
    assert done.val_bpb is not None and done.val_bpb < done.parent_val_bpb
    assert before_after(done.parent_val_bpb, done.val_bpb) in err, err

    out = paths.models_dir() / "mine"
    t = read_model_info(out).training
    assert t["parent"] == str(tiny_model_dir)
    assert t["parent_val_bpb"] == pytest.approx(first_eval.val_bpb) and t["val_bpb"] == pytest.approx(done.val_bpb)

    capsys.readouterr()
    assert slmtui_main(["models"]) == 0
    text = capsys.readouterr().out
    assert f"mine: fine-tuned from tiny · {before_after(t['parent_val_bpb'], t['val_bpb'])}" in text
    assert slmtui_main(["models", "--json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["name"] == "mine")
    assert row["parent"] == str(tiny_model_dir) and row["parent_val_bpb"] == pytest.approx(t["parent_val_bpb"])
    assert any("fine-tuned from tiny · your books: " in line for line in model_details(read_model_info(out)))


@pytest.mark.slow
def test_a_time_budget_ends_after_the_planned_passes(tiny_model_dir: Path, book: Path) -> None:
    """An hour for a 12 KB book: the schedule (and the run) ends after FINETUNE_MAX_PASSES passes, not the hour."""
    code, lines, err = finetune(book, "--time-limit", "1h")
    assert code == 0, err
    events = [from_json(line) for line in lines]
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.reason in ("epochs", "early_stop"), done
    steps = [e for e in events if isinstance(e, StepEvent)]
    if done.reason == "epochs":  # the step that completes the planned passes is the last
        assert steps[-2].epoch < FINETUNE_MAX_PASSES <= steps[-1].epoch
    assert steps[-1].lr < steps[len(steps) // 2].lr, "the rate decays within the passes"
    assert read_model_info(paths.models_dir() / "mine").training["train_config"]["max_passes"] == FINETUNE_MAX_PASSES


@pytest.mark.parametrize("progress", ["none", "tqdm"])
def test_every_progress_mode_prints_the_before_and_after(tiny_model_dir: Path, book: Path, progress: str) -> None:
    code, _, err = finetune(book, "--max-steps", "5", progress=progress)
    assert code == 0, err
    t = read_model_info(paths.models_dir() / "mine").training
    assert before_after(t["parent_val_bpb"], t["val_bpb"]) in err


def test_explicit_flags_override_the_fine_tune_defaults(tiny_model_dir: Path, book: Path) -> None:
    code, _, err = finetune(book, "--max-steps", "4", "--lr", "0.0007", "--eval-interval", "2", "--batch-size", "3",
                            progress="none")
    assert code == 0, err
    cfg = read_model_info(paths.models_dir() / "mine").training["train_config"]
    assert (cfg["lr"], cfg["eval_interval"], cfg["batch_size"]) == (0.0007, 2, 3)
    code, _, err = finetune(book, "--max-steps", "4", progress="none", name="defaults")
    assert code == 0, err
    cfg = read_model_info(paths.models_dir() / "defaults").training["train_config"]
    expected = finetune_config(train_tokens=1, budget_s=None, tokens_per_s=1, block_size=64)
    assert cfg["lr"] <= 6e-4 and cfg["batch_size"] == expected.batch_size, "the fine-tune defaults, not tiny's"


def test_a_shorter_context_than_the_parent_is_allowed(tiny_model_dir: Path, book: Path) -> None:
    code, _, err = finetune(book, "--max-steps", "3", "--block-size", "32", progress="none")
    assert code == 0, err
    loaded = load_model_dir(paths.models_dir() / "mine")
    assert loaded.info.config.block_size == 32 and loaded.model.transformer.wpe.weight.shape[0] == 32


def test_a_fine_tune_continues_with_its_parents_optimizer_and_dropout(tiny_model: GPT, byte_tokenizer,
                                                                      book: Path) -> None:
    """The bundled model was trained with Muon: its fine-tunes use Muon too; a model whose record names no optimizer
    (or AdamW) gets AdamW. Both get FINETUNE_DROPOUT, unless --dropout says otherwise."""
    assert parent_optimizer({"train_config": {"optimizer": "muon"}}) == "muon"
    assert parent_optimizer({}) == parent_optimizer({"train_config": {"optimizer": "lion"}}) == "adamw"
    for kind in ("muon", "adamw"):
        save_model_dir(paths.models_dir() / f"by-{kind}", tiny_model, byte_tokenizer,
                       training={"val_fraction": 0.1, "train_config": {"optimizer": kind}})
        code, _, err = run_main(["--corpus", str(book), "--init-from", f"by-{kind}", "--name", f"from-{kind}",
                                 "--max-steps", "2", "--progress", "none"])
        assert code == 0, err
        made = read_model_info(paths.models_dir() / f"from-{kind}")
        assert made.training["train_config"]["optimizer"] == kind
        assert made.config.dropout == FINETUNE_DROPOUT


def test_a_fine_tune_may_set_its_dropout_but_not_its_shape(tiny_model_dir: Path, book: Path) -> None:
    """Dropout is a training setting: a fine-tune may turn it on (the parent's own is 0)."""
    assert load_model_dir(tiny_model_dir).info.config.dropout == 0.0
    code, _, err = finetune(book, "--max-steps", "3", "--dropout", "0.2", progress="none")
    assert code == 0, err
    assert load_model_dir(paths.models_dir() / "mine").info.config.dropout == 0.2
    code, _, err = finetune(book, "--max-steps", "3", "--n-embd", "32", progress="none", name="other")
    assert code == 2 and "--n-embd" in err and not (paths.models_dir() / "other").exists()


def test_a_resumed_fine_tune_needs_nothing_of_its_deleted_parent(tiny_model_dir: Path, book: Path) -> None:
    parent = paths.models_dir() / "parent"
    shutil.copytree(tiny_model_dir, parent)
    code, _, err = run_main(["--corpus", str(book), "--init-from", "parent", "--name", "mine", "--max-steps", "100000",
                             "--time-limit", "2s", "--progress", "none"])
    assert code == 0 and "resume with" in err, err
    before = read_model_info(paths.models_dir() / "mine").training["parent_val_bpb"]
    shutil.rmtree(parent)
    code, _, err = run_main(["--resume", "--out", str(paths.models_dir() / "mine"), "--time-limit", "1s",
                             "--progress", "none"])
    assert code == 0, err
    assert f"warning: the parent model {parent} is gone" in err
    t = read_model_info(paths.models_dir() / "mine").training
    assert t["parent_val_bpb"] == before and t["parent"] == str(parent), "the before is kept from step 0"


# ------------------------------------------------------------------------------------------------ bad input


def _damaged(tiny: Path) -> str:
    broken = paths.models_dir() / "broken"
    shutil.copytree(tiny, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    return "broken"


BAD = {
    "corpus too small to hold out text": (lambda t, book: ["--corpus", str(_one_paragraph(book)), "--init-from", "tiny"],
                                          "too small to hold out"),
    "parent context shorter than asked": (lambda t, book: ["--init-from", "tiny", "--block-size", "128"],
                                          "longer than the context of tiny (64 tokens)"),
    "missing parent": (lambda t, book: ["--init-from", "no-such-model"], "no model named 'no-such-model'"),
    "damaged parent": (lambda t, book: ["--init-from", _damaged(t)], "model.safetensors"),
    "in place": (lambda t, book: ["--init-from", "tiny", "--name", "tiny"], "a fine-tune always writes a new folder"),
    "the bundled model in place": (lambda t, book: ["--init-from", "default", "--out",
                                                    str(paths.BUNDLED_MODELS_DIR / "default")],
                                   "a fine-tune always writes a new folder"),
}


def _one_paragraph(book: Path) -> Path:
    path = book.parent / "note.txt"
    book.unlink()
    path.write_text("Just one line of text, which cannot be split.\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(tiny_model_dir: Path, book: Path, case: str) -> None:
    make, words = BAD[case]
    args = make(tiny_model_dir, book)
    if "--corpus" not in args:
        args = ["--corpus", str(book), *args]
    if "--name" not in args and "--out" not in args:
        args += ["--name", "new"]
    before = sorted(p.name for p in paths.models_dir().iterdir())
    bundled = sorted(p.name for p in (paths.BUNDLED_MODELS_DIR / "default").iterdir())
    code, stdout, err = run_main([*args, "--max-steps", "5", "--progress", "none"])
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("slm-train: error: ") and words in lines[0], err
    assert sorted(p.name for p in paths.models_dir().iterdir()) == before, "no folder left behind"
    assert sorted(p.name for p in (paths.BUNDLED_MODELS_DIR / "default").iterdir()) == bundled


def test_a_model_of_the_new_recipe_fine_tunes(byte_tokenizer, book: Path) -> None:
    """Rotary positions have no position table to cut to the context: the default preset's blocks fine-tune too
    (a fine-tune of the shipped default once failed on the missing table)."""
    from dataclasses import replace

    import torch

    from slmtui.engine.model import GPT
    from slmtui.engine.model_io import save_model_dir

    torch.manual_seed(0)
    config = replace(preset("tiny").model, pos_emb="rope", mlp="relu2", tie_embeddings=False)
    save_model_dir(paths.models_dir() / "recipe", GPT(config).eval(), byte_tokenizer,
                   training={"val_fraction": 0.1, "created": "2026-01-01T00:00:00Z"})
    code, _, err = run_main(["--corpus", str(book), "--init-from", "recipe", "--name", "mine", "--max-steps", "3",
                             "--progress", "none"])
    assert code == 0, err
    info = read_model_info(paths.models_dir() / "mine")
    assert (info.config.pos_emb, info.config.mlp, info.config.tie_embeddings) == ("rope", "relu2", False)
    assert info.training["parent_val_bpb"] is not None


def test_a_fine_tune_records_its_parents_recipe_and_a_finished_time_budget(tiny_model: GPT, byte_tokenizer,
                                                                          book: Path) -> None:
    """Issue 24 item 6: a fine-tune keeps its parent's shape and tokenizer, so its model.toml names the parent's
    preset and tokenizer (not --preset's default, "seed" with "gpt2"); and a time budget that ran out is a
    finished run (its schedule was planned to fit it), not one "stopped early" to resume."""
    save_model_dir(paths.models_dir() / "parent", tiny_model, byte_tokenizer,
                   training={"val_fraction": 0.1, "preset": "default", "tokenizer_arg": "bpe:8192"})
    code, lines, err = run_main(["--corpus", str(book), "--init-from", "parent", "--name", "mine",
                                 "--time-limit", "1s", "--progress", "jsonl"])
    assert code == 0, err
    done = from_json(lines[-1])
    assert isinstance(done, DoneEvent) and done.reason == "time_limit" and done.resume_command is None, done
    info = read_model_info(paths.models_dir() / "mine")
    assert (info.training["preset"], info.training["tokenizer_arg"]) == ("default", "bpe:8192")
    assert info.training["resumable"] is False and not info.resumable
    assert not any("stopped early" in line or "resume it" in line for line in model_details(info))
    # A parent whose record is silent: no preset, and its tokenizer by its own name.
    save_model_dir(paths.models_dir() / "silent", tiny_model, byte_tokenizer, training={"val_fraction": 0.1})
    code, _, err = run_main(["--corpus", str(book), "--init-from", "silent", "--name", "child",
                             "--max-steps", "2", "--progress", "none"])
    assert code == 0, err
    t = read_model_info(paths.models_dir() / "child").training
    assert "preset" not in t and t["tokenizer_arg"] == byte_tokenizer.spec.name
