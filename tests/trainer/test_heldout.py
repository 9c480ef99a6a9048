"""Whole books held out (--val-books): how they are chosen, that no part of them trains, and that the
trainer's figures and `slmtui eval`'s are the same computation."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from slmtui.cli import main as slmtui_main
from slmtui.core.errors import SlmError
from trainer.config import PRESETS, preset
from trainer.corpus import Corpus, Document, choose_books, model_split, read_corpus, split_corpus
from trainer.events import EvalEvent
from trainer.loop import RunSpec, train

from excerpts import book_excerpt

BOOKS = ("grahame-wind-in-the-willows.txt", "nesbit-railway-children.txt", "verne-around-the-world-in-eighty-days.txt")


def corpus_of(n: int) -> Corpus:
    text = "\n\n".join(f"Paragraph {i}." for i in range(40))
    return Corpus(Path("mem"), tuple(Document(f"b{i}.txt", f"Book {i}.\n\n{text}") for i in range(n)))


def test_a_count_spreads_the_books_over_the_corpus() -> None:
    corpus = corpus_of(10)
    assert choose_books(corpus, 2) == ("b2.txt", "b7.txt")
    assert choose_books(corpus, "3") == ("b1.txt", "b5.txt", "b8.txt")
    assert choose_books(corpus, 0) == ()


def test_names_match_with_or_without_the_suffix() -> None:
    corpus = corpus_of(4)
    assert choose_books(corpus, "b3, b1.txt") == ("b3.txt", "b1.txt")
    with pytest.raises(SlmError, match="no book named 'b9'"):
        choose_books(corpus, "b9")
    with pytest.raises(SlmError, match="at least one must train"):
        choose_books(corpus, "b0,b1,b2,b3")
    with pytest.raises(SlmError, match="at least one must train"):
        choose_books(corpus, 4)


def test_held_out_books_are_whole_and_nowhere_else() -> None:
    corpus = corpus_of(4)
    split = split_corpus(corpus, val_fraction=0.1, heldout_books=("b2.txt",))
    assert split.heldout == [corpus.documents[2].text]
    assert len(split.train) == len(split.val) == 3
    assert not any(t.startswith("Book 2.") for t in split.train + split.val)
    # A model trained on a subset (corpus_books) keeps its own val split; held-out books come from anywhere.
    sub = model_split(corpus, {"val_fraction": 0.1, "corpus_books": ["b0.txt", "b1.txt"]}, heldout_books=("b3.txt",))
    assert len(sub.train) == 2 and sub.train[0].startswith("Book 0.") and sub.heldout[0].startswith("Book 3.")


def test_a_models_recorded_books_apply_where_this_corpus_holds_them() -> None:
    """The names in model.toml are books of the corpus it trained on: another folder is split by val_fraction alone."""
    training = {"val_fraction": 0.1, "heldout_books": ["b2.txt", "gone.txt"], "corpus_books": ["b0.txt", "b1.txt"]}
    own = model_split(corpus_of(4), training)
    assert own.heldout_books == ("b2.txt",) and own.not_here == ("gone.txt",)
    assert len(own.train) == 2 and own.val_fraction == 0.1
    mine = Corpus(Path("mine"), tuple(Document(f"mine-{i}.txt", corpus_of(1).documents[0].text) for i in range(3)))
    theirs = model_split(mine, training)
    assert theirs.heldout == [] and theirs.heldout_books == () and theirs.not_here == ("b2.txt", "gone.txt")
    assert len(theirs.train) == len(theirs.val) == 3  # every book of the folder, none restricted away
    chosen = model_split(mine, training, heldout_books=("mine-1.txt",))
    assert chosen.heldout_books == ("mine-1.txt",) and chosen.not_here == ()  # replaced, not unapplied


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("books")
    for name in BOOKS:
        (folder / name).write_text(book_excerpt(name, 12_000), encoding="utf-8")
    return folder


def test_the_trainer_reports_held_out_books_and_eval_reproduces_them(
        books: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    cfg = replace(PRESETS["tiny"].train, max_steps=20, eval_interval=10, val_books="nesbit-railway-children")
    events: list[object] = []
    done = train(RunSpec(out=out, corpus=books, model=preset("tiny").model, train=cfg, tokenizer="bpe:512", preset="tiny"),
                 events.append)
    evals = [e for e in events if isinstance(e, EvalEvent)]
    assert [e.step for e in evals] == [10, 20]
    assert all(e.heldout_bpb is not None and e.heldout_bpb > e.val_bpb * 0.5 for e in evals)
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["heldout_bpb"] for m in metrics if m["event"] == "eval"] == [e.heldout_bpb for e in evals]
    training = tomllib.loads((out / "model.toml").read_text())["training"]
    assert training["heldout_books"] == ["nesbit-railway-children.txt"]
    assert done.heldout_bpb == training["heldout_bpb"]
    # The book never trained: its text is in neither the training nor the validation split.
    parts = model_split(read_corpus(books), training)
    assert len(parts.train) == 2 and parts.heldout[0][:200] not in "".join(parts.train + parts.val)

    for split, key in (("heldout", "heldout_bpb"), ("val", "val_bpb")):
        assert slmtui_main(["eval", "--model", str(out), "--corpus", str(books), "--split", split, "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["bits_per_byte"] == pytest.approx(training[key], rel=1e-6), split
    # The same book named by hand (--val-books) gives the same figure.
    assert slmtui_main(["eval", "--model", str(out), "--corpus", str(books), "--val-books",
                        "nesbit-railway-children.txt", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bits_per_byte"] == pytest.approx(training["heldout_bpb"], rel=1e-6)
    # The export re-scores both figures on its 16-bit weights, and eval reproduces those too.
    from trainer.export import export_model

    exported = export_model(out, tmp_path / "shipped", dtype="bf16", corpus=books)
    assert exported["heldout_books"] == ["nesbit-railway-children.txt"]
    assert slmtui_main(["eval", "--model", str(tmp_path / "shipped"), "--corpus", str(books), "--split", "heldout", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bits_per_byte"] == pytest.approx(exported["heldout_bpb"], rel=1e-6)
