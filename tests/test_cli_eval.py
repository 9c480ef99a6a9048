"""`slmtui eval FILE` reads text as the trainer reads a corpus, unless --raw; and says which.

The honest equivalence: ``eval FILE...`` scores exactly the texts of ``eval --corpus DIR --split all`` for a
folder holding those files (each file whole, cleaned and unwrapped as trainer/corpus.py does), and
``eval --raw FILE`` the files' bytes as they are.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from slmtui.cli import main
from slmtui.core.model_catalog import bundled_default
from slmtui.core.model_folder import read_model_info
from slmtui.core.paths import BUNDLED_CORPUS_DIR
from slmtui.engine.evaluate import evaluate_texts
from slmtui.engine.model_io import load_model_dir
from tests.trainer.excerpts import book_excerpt
from trainer.clean import clean_text
from trainer.corpus import read_text_file

SCORES = ("tokens", "bytes", "loss", "perplexity", "bits_per_byte")


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main([*argv, "--model", "tiny", "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return json.loads(out)


@pytest.fixture
def wrapped_book(tmp_path: Path) -> Path:
    """A book as Project Gutenberg ships it: hard-wrapped at 70 columns, CRLF line ends, a licence header."""
    paragraphs = book_excerpt("grahame-wind-in-the-willows.txt", 3_000).split("\n\n")
    body = "\n\n".join(textwrap.fill(p, 70) for p in paragraphs if p.strip())
    text = "The Project Gutenberg eBook\n*** START OF THE PROJECT GUTENBERG EBOOK WILLOWS ***\n" + body + "\n"
    path = tmp_path / "book.txt"
    path.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    return path


def test_a_file_is_read_as_the_trainer_reads_it_by_default(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path,
                                                           wrapped_book: Path) -> None:
    loaded = load_model_dir(tiny_model_dir)
    raw = wrapped_book.read_bytes().decode("utf-8")  # CRLF kept: read_text() would translate it
    cleaned = clean_text(raw)
    assert cleaned != raw and "\r" not in cleaned and "PROJECT GUTENBERG" not in cleaned
    assert all("\n" not in paragraph for paragraph in cleaned.split("\n\n"))  # the hard wraps were joined
    assert raw.count("\n") > 2 * cleaned.count("\n")

    report = run_json(capsys, "eval", str(wrapped_book))
    assert report["reading"] == "as-trainer"
    expected = evaluate_texts(loaded.model, loaded.tokenizer, [cleaned])
    assert (report["tokens"], report["bytes"]) == (expected.tokens, expected.bytes)
    assert report["loss"] == pytest.approx(expected.loss)

    raw_report = run_json(capsys, "eval", str(wrapped_book), "--raw")
    assert raw_report["reading"] == "raw"
    expected_raw = evaluate_texts(loaded.model, loaded.tokenizer, [raw])
    assert (raw_report["tokens"], raw_report["bytes"]) == (expected_raw.tokens, expected_raw.bytes)
    assert raw_report["bytes"] > report["bytes"] + raw.count("\r")  # every CR, wrap and header line scored
    assert raw_report["loss"] == pytest.approx(expected_raw.loss)
    assert raw_report["loss"] != pytest.approx(report["loss"])  # the two readings are different figures


def test_eval_files_equals_eval_corpus_split_all(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path,
                                                 wrapped_book: Path, tmp_path: Path) -> None:
    folder = tmp_path / "one-book"
    folder.mkdir()
    shutil.copy(wrapped_book, folder / "book.txt")
    of_file = run_json(capsys, "eval", str(wrapped_book))
    of_folder = run_json(capsys, "eval", "--corpus", str(folder), "--split", "all")
    of_corpus_file = run_json(capsys, "eval", "--corpus", str(wrapped_book), "--split", "all")
    assert of_folder["reading"] == of_corpus_file["reading"] == "as-trainer"
    for key in SCORES:
        assert of_file[key] == pytest.approx(of_folder[key]) == pytest.approx(of_corpus_file[key]), key

    (folder / "second.txt").write_text("The Mole had been working very hard all the morning.\n\nSpring was moving.\n")
    both = run_json(capsys, "eval", str(folder / "book.txt"), str(folder / "second.txt"))
    whole = run_json(capsys, "eval", "--corpus", str(folder), "--split", "all")
    assert both["texts"] == whole["texts"] == 2
    for key in SCORES:
        assert both[key] == pytest.approx(whole[key]), key


def test_the_table_says_which_reading(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path,
                                      wrapped_book: Path) -> None:
    assert main(["eval", str(wrapped_book), "--model", "tiny"]) == 0
    reading = [line for line in capsys.readouterr().out.splitlines() if line.startswith("reading")]
    assert reading == ["reading      as the trainer reads a corpus: cleaned, hard wraps joined "
                       "(--raw: the bytes as they are)"]
    assert main(["eval", str(wrapped_book), "--raw", "--model", "tiny"]) == 0
    reading = [line for line in capsys.readouterr().out.splitlines() if line.startswith("reading")]
    assert reading == ["reading      raw: the files' bytes as they are"]


def test_read_text_file_is_what_the_corpus_reader_keeps(wrapped_book: Path) -> None:
    from trainer.corpus import read_corpus

    assert read_text_file(wrapped_book) == read_corpus(wrapped_book).documents[0].text


def test_raw_with_a_corpus_is_a_usage_error(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path,
                                            tmp_path: Path) -> None:
    assert main(["eval", "--corpus", str(tmp_path), "--raw", "--model", "tiny"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["slmtui: error: --raw is for FILE arguments: a corpus is always read as the "
                                "trainer reads it"]


def test_a_file_the_trainer_would_skip_is_named(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path,
                                                tmp_path: Path) -> None:
    nul = tmp_path / "data.txt"
    nul.write_bytes(b"text\x00with a NUL byte")
    assert main(["eval", str(nul), "--model", "tiny"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"slmtui: error: {nul}: binary file (contains NUL bytes)"]


# --------------------------------------------------------------------- a folder of the user's own books


@pytest.fixture
def my_books(tmp_path: Path) -> Path:
    """~/mybooks: two books of the user's, neither of them in the bundled corpus by name."""
    folder = tmp_path / "mybooks"
    folder.mkdir()
    (folder / "my-first-book.txt").write_text(book_excerpt("grahame-wind-in-the-willows.txt", 20_000))
    (folder / "my-second-book.txt").write_text(book_excerpt("nesbit-railway-children.txt", 20_000, skip_paragraphs=80))
    return folder


def test_eval_corpus_on_a_folder_of_your_own_books(capsys: pytest.CaptureFixture[str], my_books: Path) -> None:
    """The default model's held-out books belong to the bundled corpus: on the user's folder none is held out,
    the output says so, and both books' tails are scored."""
    default_heldout = read_model_info(bundled_default()).training["heldout_books"]
    assert default_heldout, "the bundled model holds books out: what this test is about"
    assert main(["eval", "--corpus", str(my_books), "--json"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert err == "" and report["model"] == "default" and report["split"] == "val" and report["texts"] == 2
    assert report["heldout_books"] == [] and report["heldout_books_absent"] == default_heldout
    assert report["tokens"] > 0

    assert main(["eval", "--corpus", str(my_books)]) == 0
    held = [line for line in capsys.readouterr().out.splitlines() if line.startswith("held out")]
    assert held == [f"held out     no whole books; not in this corpus: {', '.join(default_heldout)}, held out of the "
                    "corpus default trained on"]

    assert main(["eval", "--corpus", str(my_books), "--split", "heldout"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"slmtui: error: {my_books} holds none of the books default held out (")
    assert "--val-books" in err

    assert main(["eval", "--corpus", str(my_books), "--val-books", "my-second-book", "--json"]) == 0
    chosen = json.loads(capsys.readouterr().out)
    assert chosen["split"] == "heldout" and chosen["heldout_books"] == ["my-second-book.txt"] and chosen["texts"] == 1


def test_a_held_out_book_in_your_folder_is_still_held_out(capsys: pytest.CaptureFixture[str], my_books: Path) -> None:
    """Where the folder holds one of the model's held-out books, that one stays out of the val split, and is named."""
    name = "stevenson-treasure-island.txt"
    assert name in read_model_info(bundled_default()).training["heldout_books"]
    shutil.copy(BUNDLED_CORPUS_DIR / name, my_books / name)
    assert main(["eval", "--corpus", str(my_books), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["heldout_books"] == [name] and report["texts"] == 2  # the two books of the user's: their tails
    assert name not in report["heldout_books_absent"]
    assert main(["eval", "--corpus", str(my_books)]) == 0
    held = [line for line in capsys.readouterr().out.splitlines() if line.startswith("held out")]
    assert held[0].startswith(f"held out     {name} (whole books it never trained on: --split heldout scores them)")
