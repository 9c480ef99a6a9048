"""trainer.corpus: reading, cleaning (unwrapping), splitting and fingerprinting a corpus."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from slmtui.core.errors import SlmError
from slmtui.core.paths import BUNDLED_CORPUS_DIR
from trainer.clean import clean_text
from trainer.corpus import Corpus, Document, corpus_fingerprint, read_corpus, split_documents

PROSE = (
    "The little girl walked along the yellow road for a long time, looking at "
    "the strange houses and the strange people who lived in them, and she "
    "wondered whether she would ever find her way back home to her aunt and "
    "her uncle again. The road was long and the sun was hot, but she did not "
    "mind it very much, for there was so much to see on every side of her."
)


def wrapped(text: str, width: int = 64) -> str:
    """Hard-wrap like a Gutenberg book does."""
    return textwrap.fill(text, width=width)


def book(*paragraphs: str) -> str:
    return "\n\n".join(paragraphs) + "\n"


# --------------------------------------------------------------------------- reading


def test_folder_is_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text(book(wrapped(PROSE)), encoding="utf-8")
    (tmp_path / "a.md").write_text("# Notes\n\nShort.\n", encoding="utf-8")
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "c.txt").write_text("Deep text.\n", encoding="utf-8")
    (tmp_path / "ignored.csv").write_text("a,b\n", encoding="utf-8")
    (tmp_path / "SOURCES.md").write_text("| file | title |\n", encoding="utf-8")
    (tmp_path / "LICENSE.txt").write_text("Permission is granted\n", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.txt").write_text("not corpus\n", encoding="utf-8")

    corpus = read_corpus(tmp_path)

    assert [d.name for d in corpus.documents] == ["a.md", "b.txt", "sub/deeper/c.txt"]
    assert corpus.documents[1].text == PROSE
    assert corpus.skipped == ()
    assert corpus.n_chars == sum(len(d.text) for d in corpus.documents)


def test_single_file_of_any_suffix(tmp_path: Path) -> None:
    f = tmp_path / "story.text"
    f.write_text("Once upon a time.\n\nThe end.\n", encoding="utf-8")
    corpus = read_corpus(f)
    assert corpus.documents == (Document("story.text", "Once upon a time.\n\nThe end."),)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "bom.txt").write_bytes("\ufeffCafé au lait.\n".encode("utf-8"))
    assert read_corpus(tmp_path).documents[0].text == "Café au lait."


def test_binary_and_latin1_files_are_skipped_and_named(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Plain text.\n", encoding="utf-8")
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "old.txt").write_bytes("Le café était très chaud.\n".encode("latin-1"))
    (tmp_path / "controls.txt").write_bytes(bytes(range(1, 9)) * 20)
    (tmp_path / "wide.txt").write_bytes("Hello\n".encode("utf-16"))
    (tmp_path / "blank.md").write_text("  \n\n\t\n", encoding="utf-8")

    corpus = read_corpus(tmp_path)

    assert [d.name for d in corpus.documents] == ["good.txt"]
    reasons = {s.name: s.reason for s in corpus.skipped}
    assert set(reasons) == {"image.txt", "old.txt", "controls.txt", "wide.txt", "blank.md"}
    assert "binary" in reasons["image.txt"]
    assert reasons["old.txt"].startswith("not UTF-8 text")
    assert "binary" in reasons["controls.txt"]
    assert "UTF-16" in reasons["wide.txt"]
    assert reasons["blank.md"] == "empty"


def _missing(p: Path) -> Path:
    return p / "missing"


def _empty_folder(p: Path) -> Path:
    return p


def _only_binary(p: Path) -> Path:
    (p / "a.txt").write_bytes(b"\x00ab")
    (p / "x.bin").write_bytes(b"\x00\x01")  # not .txt/.md: never looked at
    return p


def _only_empty(p: Path) -> Path:
    (p / "a.txt").write_text("\n\n", encoding="utf-8")
    (p / "b.md").write_text("", encoding="utf-8")
    return p


@pytest.mark.parametrize(
    "make, expected",
    [
        (_missing, "corpus not found"),
        (_empty_folder, "no .txt or .md files"),
        (_only_binary, "no usable text"),
        (_only_empty, "all 2 files were skipped"),
    ],
    ids=["missing", "empty-folder", "only-binary", "only-empty"],
)
def test_nothing_usable_raises_a_message_naming_the_path(
    tmp_path: Path, make: Callable[[Path], Path], expected: str
) -> None:
    target = make(tmp_path)
    with pytest.raises(SlmError) as info:
        read_corpus(target)
    assert expected in info.value.message
    assert str(target) in info.value.message
    assert "\n" not in info.value.message
    assert info.value.exit_code == 2


def test_single_latin1_file_raises_with_the_reason(tmp_path: Path) -> None:
    f = tmp_path / "old.txt"
    f.write_bytes("Être ou ne pas être\n".encode("latin-1"))
    with pytest.raises(SlmError, match=r"old.txt: not UTF-8 text"):
        read_corpus(f)


# --------------------------------------------------------------------------- cleaning


def test_wrapped_prose_is_joined_and_paragraph_breaks_kept() -> None:
    second = PROSE.replace("little girl", "small boy")
    raw = book(wrapped(PROSE), "", wrapped(second))  # two blank lines between: still one break
    assert clean_text(raw) == f"{PROSE}\n\n{second}"


def test_verse_stanzas_keep_their_lines() -> None:
    stanza = (
        "Twinkle, twinkle, little bat!\nHow I wonder what you're at!\n"
        "Up above the world you fly,\nLike a tea-tray in the sky."
    )
    indented = textwrap.indent(stanza, "    ")
    raw = book(wrapped(PROSE), indented, wrapped(PROSE), stanza, wrapped(PROSE))
    assert clean_text(raw) == "\n\n".join([PROSE, stanza, PROSE, stanza, PROSE])


def test_headings_and_short_lines_keep_their_breaks() -> None:
    raw = book("CHAPTER 1\nTHE ROAD", wrapped(PROSE), "THE END")
    assert clean_text(raw) == f"CHAPTER 1\nTHE ROAD\n\n{PROSE}\n\nTHE END"


def test_unwrapped_text_is_left_alone() -> None:
    """One paragraph per line (a modern file): every line break is meant."""
    raw = f"{PROSE}\n{PROSE[:90]}\n\n{PROSE[40:]}\n"
    assert clean_text(raw) == f"{PROSE}\n{PROSE[:90]}\n\n{PROSE[40:]}"


def test_words_split_at_a_hyphen_rejoin_without_a_space() -> None:
    raw = wrapped(PROSE) + " the Saw-\nHorse ran on, and on--\nand on.\n"
    assert clean_text(raw).endswith("the Saw-Horse ran on, and on--and on.")


def test_normalisation() -> None:
    raw = "Line\r\nbreaks\rand\ttabs  and   spaces\x00\x07 \u00a0x\x1b[0m.\r\n\r\n\r\nNext.\u2029Last.\n\n"
    assert clean_text(raw) == "Line\nbreaks\nand tabs and spaces x[0m.\n\nNext.\n\nLast."
    assert clean_text("Cafe\u0301") == "Caf\u00e9"  # NFC: one code point, one set of tokens
    assert clean_text(" \n\n\t\n") == ""


def test_gutenberg_header_and_footer_are_stripped() -> None:
    raw = (
        "The Project Gutenberg eBook of Something\n\nThis eBook is for the use of anyone.\n\n"
        "*** START OF THE PROJECT GUTENBERG EBOOK SOMETHING ***\n\n"
        "The story itself.\n\n"
        "*** END OF THE PROJECT GUTENBERG EBOOK SOMETHING ***\n\nSection 1. General Terms of Use\n"
    )
    assert clean_text(raw) == "The story itself."


def test_bundled_corpus_has_no_gutenberg_markers() -> None:
    for f in sorted(BUNDLED_CORPUS_DIR.glob("*.txt")):
        assert "*** START OF" not in f.read_text(encoding="utf-8"), f.name


def test_real_book_unwraps_prose_and_keeps_alices_poem() -> None:
    raw = (BUNDLED_CORPUS_DIR / "carroll-alices-adventures-in-wonderland.txt").read_text(encoding="utf-8")
    text = clean_text(raw)
    assert (
        "London is the capital of Paris, and Paris is the capital of Rome, and Rome--no, "
        "THAT’S all wrong, I’m certain! I must have been changed for Mabel!"
    ) in text
    assert (
        "\n\n‘How doth the little crocodile\nImprove his shining tail,\n"
        "And pour the waters of the Nile\nOn every golden scale!\n\n"
    ) in text


def test_real_book_keeps_an_oz_song() -> None:
    raw = (BUNDLED_CORPUS_DIR / "baum-patchwork-girl-of-oz.txt").read_text(encoding="utf-8")
    text = clean_text(raw)
    assert (
        "Then, addressing her reflection in the glass, she exclaimed:\n\n"
        "\"Whee, but there's a gaudy dame!\nMakes a paint-box blush with shame.\n"
        "Razzle-dazzle, fizzle-fazzle!\nHowdy-do, Miss What's-your-name?\"\n\n"
        "She bowed, and the reflection bowed."
    ) in text


# --------------------------------------------------------------------------- split


def corpus_of(*texts: str) -> Corpus:
    return Corpus(Path("mem"), tuple(Document(f"d{i}.txt", t) for i, t in enumerate(texts)))


def test_split_holds_out_the_tail_of_each_document() -> None:
    paras_a = [f"Paragraph {i} of book A." for i in range(100)]
    paras_b = [f"Paragraph {i} of book B, a little longer." for i in range(60)]
    short = "Only.\n\nThree.\n\nParagraphs."
    corpus = corpus_of("\n\n".join(paras_a), short, "\n\n".join(paras_b))

    train, val = split_documents(corpus, val_fraction=0.1)

    assert len(train) == 3 and len(val) == 2
    assert train[1] == short  # too short to split: all of it trains
    for full, head, tail in [(paras_a, train[0], val[0]), (paras_b, train[2], val[1])]:
        assert f"{head}\n\n{tail}" == "\n\n".join(full)  # cut at a paragraph boundary, nothing lost
        assert tail.startswith("Paragraph ") and tail.endswith(full[-1])
        assert 0.07 < len(tail) / (len(head) + len(tail)) < 0.13
    assert split_documents(corpus, val_fraction=0.1) == (train, val)  # deterministic


def test_split_small_corpus_still_gets_validation() -> None:
    train, val = split_documents(corpus_of("One.\n\nTwo.\n\nThree."))
    assert train == ["One.\n\nTwo."] and val == ["Three."]
    train, val = split_documents(corpus_of("First book.", "Second book."))
    assert train == ["First book."] and val == ["Second book."]
    train, val = split_documents(corpus_of("one line\nanother line"))  # one paragraph: cut at a line
    assert train == ["one line"] and val == ["another line"]


def test_split_too_small_raises() -> None:
    with pytest.raises(SlmError, match="too small"):
        split_documents(corpus_of("Just one paragraph."))
    with pytest.raises(SlmError, match="between 0 and 1"):
        split_documents(corpus_of("a\n\nb"), val_fraction=1.0)


# --------------------------------------------------------------------------- fingerprint


def test_fingerprint_is_stable_and_sensitive() -> None:
    base = corpus_fingerprint(corpus_of("abc", "def"))
    assert base == corpus_fingerprint(corpus_of("abc", "def"))
    assert len(base) == 64
    assert base != corpus_fingerprint(corpus_of("abc", "deF"))
    assert base != corpus_fingerprint(corpus_of("ab", "cdef"))
    assert base != corpus_fingerprint(corpus_of("def", "abc"))
    renamed = Corpus(Path("mem"), (Document("x.txt", "abc"), Document("d1.txt", "def")))
    assert base != corpus_fingerprint(renamed)


def test_fingerprint_ignores_file_times_and_raw_formatting(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text(wrapped(PROSE) + "\n", encoding="utf-8")
    first = corpus_fingerprint(read_corpus(tmp_path))
    f.write_text(wrapped(PROSE, width=70).replace("\n", "\r\n"), encoding="utf-8")
    assert corpus_fingerprint(read_corpus(tmp_path)) == first


def test_an_unreadable_sub_folder_is_skipped_and_named_like_an_unreadable_file(tmp_path: Path) -> None:
    """Before: rglob passed over it without a word, and its books were silently not trained on (issue 23, 9)."""
    from tests.unreadable import unreadable

    (tmp_path / "a.txt").write_text("Some readable prose. " * 20, encoding="utf-8")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "b.txt").write_text("Prose nobody may read. " * 20, encoding="utf-8")
    (tmp_path / "c.txt").write_text("More readable prose. " * 20, encoding="utf-8")
    with unreadable(tmp_path / "c.txt", tmp_path / "locked"):
        corpus = read_corpus(tmp_path)
    assert [d.name for d in corpus.documents] == ["a.txt"]
    assert [(s.name, s.reason) for s in corpus.skipped] == [("locked/", "unreadable folder (Permission denied)"),
                                                            ("c.txt", "unreadable (Permission denied)")]


def test_an_unreadable_corpus_folder_is_one_line(tmp_path: Path) -> None:
    from tests.unreadable import unreadable

    (tmp_path / "books").mkdir()
    (tmp_path / "books" / "a.txt").write_text("Prose. " * 20, encoding="utf-8")
    with unreadable(tmp_path / "books"), pytest.raises(SlmError, match=r"cannot read .*books: books/ unreadable "
                                                                       r"folder \(Permission denied\)"):
        read_corpus(tmp_path / "books")


def test_one_long_paragraph_on_one_line_is_cut_at_a_space() -> None:
    """Before: a 200 MB one-paragraph corpus was "too small to hold out validation text" (issue 23, item 8)."""
    line = " ".join(f"word{i}" for i in range(5000))
    train, val = split_documents(corpus_of(line), val_fraction=0.1)
    assert train[0] + " " + val[0] == line
    assert 0.08 < len(val[0]) / len(line) < 0.12 and val[0].startswith("word")
    with pytest.raises(SlmError, match="one paragraph of 19 characters"):
        split_documents(corpus_of("Just one paragraph."))
