"""Read a folder (or one file) of books, clean the text, and hold out the tail of each for validation.

The trainer sees only what comes out of here, so this module decides what "a text" is:
UTF-8 prose with one paragraph per line and paragraphs separated by one blank line, verse kept
line by line. Files it cannot read as text are skipped and named, never silently dropped. The cleaning
itself is trainer/clean.py (``clean_text``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from slmtui.core.errors import SlmError
from slmtui.core.paths import BUNDLED_CORPUS_DIR
from trainer.clean import CONTROL_CHARS, clean_text
from trainer.config import TrainConfig, is_corpus_file

BUNDLED = "bundled"
"""How model.toml and the command line name the corpus shipped with slmtui, wherever it is installed."""


def corpus_label(path: Path) -> str:
    """The corpus as model.toml records it: "bundled", or an absolute path."""
    resolved = Path(path).expanduser().resolve()
    return BUNDLED if resolved == BUNDLED_CORPUS_DIR.resolve() else str(resolved)


def corpus_path(label: str | Path) -> Path:
    """The inverse of corpus_label; "bundled" is the shipped corpus."""
    return BUNDLED_CORPUS_DIR if str(label) == BUNDLED else Path(label).expanduser()

# Valid UTF-8 with more control characters than this is a binary file that happens to decode.
_MAX_CONTROL_FRACTION = 0.01


@dataclass(frozen=True)
class Document:
    """One cleaned file; ``name`` is its path relative to the corpus folder, in POSIX form."""

    name: str
    text: str


@dataclass(frozen=True)
class Skipped:
    """A file that was not used, and why, so the CLI can say ``skipped X: not UTF-8 text``."""

    name: str
    reason: str


@dataclass(frozen=True)
class Corpus:
    """The usable documents of one corpus path, in a fixed (sorted) order."""

    path: Path
    documents: tuple[Document, ...]
    skipped: tuple[Skipped, ...] = field(default=())

    @cached_property
    def n_chars(self) -> int:
        return sum(len(d.text) for d in self.documents)

    @cached_property
    def n_bytes(self) -> int:
        """UTF-8 size of the cleaned text: the denominator of bytes-per-token figures."""
        return sum(len(d.text.encode("utf-8")) for d in self.documents)


# --------------------------------------------------------------------------- reading


def _find_files(root: Path) -> tuple[list[Path], list[Skipped]]:
    """The corpus files under ``root``, and the folders that could not be listed (rglob skips those without
    a word; a folder of books the trainer never saw must be said, as an unreadable file is)."""
    found: list[Path] = []
    unreadable: list[Skipped] = []

    def failed(e: OSError) -> None:
        where = Path(e.filename) if e.filename else root
        name = where.relative_to(root).as_posix() if where != root else where.name
        unreadable.append(Skipped(f"{name}/", f"unreadable folder ({e.strerror or e})"))

    for folder, _dirs, files in os.walk(root, onerror=failed):
        for name in files:
            p = Path(folder) / name
            if is_corpus_file(p.relative_to(root)) and p.is_file():
                found.append(p)
    # Sorting by the relative POSIX path makes the order, the split and the fingerprint the same
    # on every machine and file system.
    return sorted(found, key=lambda p: p.relative_to(root).as_posix()), unreadable


def _decode(data: bytes) -> tuple[str | None, str]:
    """Return (text, "") or (None, reason-for-a-person)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None, "UTF-16 text; save it as UTF-8"
    if b"\x00" in data:
        return None, "binary file (contains NUL bytes)"
    try:
        text = data.decode("utf-8-sig")  # plain UTF-8, with or without a byte-order mark
    except UnicodeDecodeError as e:
        offset = e.start + len(data) - len(e.object)  # e.object lacks a stripped byte-order mark
        return None, f"not UTF-8 text (byte 0x{data[offset]:02x} at offset {offset})"
    n_control = len(CONTROL_CHARS.findall(text)) - text.count("\r") - text.count("\f")
    if n_control > _MAX_CONTROL_FRACTION * len(text):
        return None, "binary file (control characters)"
    return text, ""


def read_corpus(path: Path) -> Corpus:
    """Read ``path`` (a folder, searched recursively for .txt/.md, or one file of any name).

    Raises SlmError (exit code 2) naming the path when nothing usable is left.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise SlmError(f"corpus not found: {path}")
    skipped: list[Skipped] = []
    if path.is_dir():
        files, skipped = _find_files(path)
        if not files:
            if skipped:
                raise SlmError(f"cannot read {path}: " + "; ".join(f"{s.name} {s.reason}" for s in skipped[:3]))
            raise SlmError(f"no .txt or .md files in {path}")
        named = [(f.relative_to(path).as_posix(), f) for f in files]
    elif path.is_file():
        named = [(path.name, path)]
    else:
        raise SlmError(f"corpus is not a file or a folder: {path}")

    documents: list[Document] = []
    for name, file in named:
        text, reason = _read_file(file)
        if text is not None:
            documents.append(Document(name, text))
        else:
            skipped.append(Skipped(name, reason))

    if not documents:
        if len(skipped) == 1:
            s = skipped[0]
            raise SlmError(f"no usable text in {path}: {s.name}: {s.reason}")
        shown = "; ".join(f"{s.name}: {s.reason}" for s in skipped[:3])
        more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        raise SlmError(f"no usable text in {path}: all {len(skipped)} files were skipped ({shown}{more})")
    return Corpus(path=path, documents=tuple(documents), skipped=tuple(skipped))


def _read_file(file: Path) -> tuple[str | None, str]:
    """One file as the trainer reads it: (cleaned text, "") or (None, reason-for-a-person)."""
    try:
        data = file.read_bytes()
    except OSError as e:
        return None, f"unreadable ({e.strerror or e})"
    text, reason = _decode(data)
    if text is None:
        return None, reason
    text = clean_text(text)
    return (text, "") if text else (None, "empty")


def read_text_file(path: Path) -> str:
    """One file read exactly as ``read_corpus`` reads each file of a corpus: decoded, checked, cleaned and
    unwrapped. ``slmtui eval FILE`` scores this text, so its figures are the trainer's figures.

    Raises SlmError naming the file when the trainer would skip it.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise SlmError(f"cannot read {path}: it is a folder (score a folder of books with --corpus)")
    if not path.exists():
        raise SlmError(f"cannot read {path}: No such file or directory")
    text, reason = _read_file(path)
    if text is None:
        raise SlmError(f"{path}: {reason}")
    return text


# --------------------------------------------------------------------------- split and fingerprint


def _blocks(text: str) -> tuple[list[str], str]:
    """Paragraphs, or lines when a document is a single paragraph; and the separator to rejoin."""
    blocks = text.split("\n\n")
    return (blocks, "\n\n") if len(blocks) > 1 else (text.split("\n"), "\n")


def _cut(blocks: list[str], val_fraction: float) -> int:
    """Index of the block boundary nearest to ``1 - val_fraction`` of the text, in [1, len-1]."""
    target = (1.0 - val_fraction) * sum(len(b) + 1 for b in blocks)
    best, best_gap, seen = 1, float("inf"), 0
    for i in range(1, len(blocks)):
        seen += len(blocks[i - 1]) + 1
        if abs(seen - target) < best_gap:
            best, best_gap = i, abs(seen - target)
    return best


def split_documents(corpus: Corpus, val_fraction: float = TrainConfig.val_fraction) -> tuple[list[str], list[str]]:
    """Hold out the last ``val_fraction`` of every document, cut at a paragraph boundary.

    Validation is then text the model never trained on, not windows shuffled into both sets.
    A document with fewer than 1/val_fraction paragraphs goes to train whole (its tail would be
    far more than val_fraction of it), unless that leaves no validation text at all: then the
    document with the most paragraphs is cut anyway or, when every document is one paragraph,
    the last document is held out whole, and a lone one-line document is cut at a space.
    Returns one train and at most one val text per document.
    """
    if not 0.0 < val_fraction < 1.0:
        raise SlmError(f"the validation fraction must be between 0 and 1, not {val_fraction}")
    split = [_blocks(d.text) for d in corpus.documents]
    train: list[str] = [d.text for d in corpus.documents]
    val: list[str] = []
    for i, (blocks, sep) in enumerate(split):
        if len(blocks) * val_fraction >= 1.0:
            k = _cut(blocks, val_fraction)
            train[i], tail = sep.join(blocks[:k]), sep.join(blocks[k:])
            val.append(tail)
    if val:
        return train, val

    i = max(range(len(split)), key=lambda j: len(split[j][0]))  # first of the longest
    blocks, sep = split[i]
    if len(blocks) >= 2:
        k = _cut(blocks, val_fraction)
        train[i] = sep.join(blocks[:k])
        return train, [sep.join(blocks[k:])]
    if len(train) >= 2:
        return train[:-1], train[-1:]
    # One document of one paragraph on one line (a 200 MB file of that shape was called "too small"): cut it
    # at the last space before the mark, or at the mark itself in text without spaces.
    text = blocks[0]
    if len(text) >= MIN_LINE_TO_CUT:
        mark = int(len(text) * (1.0 - val_fraction))
        cut = text.rfind(" ", 0, mark)
        cut = cut if cut > mark // 2 else mark
        train[i] = text[:cut]
        return train, [text[cut:].lstrip(" ")]
    raise SlmError(
        f"the corpus in {corpus.path} is too small to hold out validation text: one paragraph of {len(text):,} "
        f"characters (give at least two paragraphs, or {MIN_LINE_TO_CUT:,} characters)"
    )


MIN_LINE_TO_CUT = 1000
"""The shortest lone one-line document that is cut for validation text (its tail is then 100 characters or more
at the default fraction); shorter, it is too small to train on anyway."""


def corpus_fingerprint(corpus: Corpus) -> str:
    """sha256 over the cleaned names and texts: a cache key that changes when the text does
    (including when a new cleaning rule changes it) and never when only file times change."""
    h = hashlib.sha256()
    for d in corpus.documents:
        for part in (d.name, d.text):
            data = part.encode("utf-8")
            h.update(len(data).to_bytes(8, "little"))  # length-prefixed: ("ab","c") != ("a","bc")
            h.update(data)
    return h.hexdigest()


# --------------------------------------------------------------------------- whole books held out


@dataclass(frozen=True)
class CorpusSplit:
    """The three parts of a corpus as one run sees them.

    ``val`` is the tail of every training book: it shares the books' names and places, so it flatters
    a model. ``heldout`` is whole books the run never trained on: the measure of writing beyond them.
    """

    train: list[str]
    val: list[str]
    heldout: list[str]
    heldout_books: tuple[str, ...]
    val_fraction: float = TrainConfig.val_fraction
    """The share of each training book's tail in ``val``."""
    not_here: tuple[str, ...] = ()
    """Held-out books the model's record names that this corpus does not hold (``model_split``)."""


def choose_books(corpus: Corpus, spec: str | int | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The books ``--val-books`` names: a count N (N books spread evenly over the sorted list), or names.

    A name matches a document's file name with or without its suffix (``stevenson-kidnapped`` or
    ``stevenson-kidnapped.txt``) or its path relative to the corpus folder.
    """
    names = [d.name for d in corpus.documents]
    if isinstance(spec, str) and spec.strip().isdigit():
        spec = int(spec)
    if isinstance(spec, int):
        if not 0 <= spec < len(names):
            raise SlmError(f"--val-books {spec}: the corpus has {len(names)} books, and at least one must train")
        # Evenly spaced, never the first or last by accident of the count: (i + 0.5) * len / N.
        return tuple(names[int((i + 0.5) * len(names) / spec)] for i in range(spec))
    wanted = [w.strip() for w in (spec.split(",") if isinstance(spec, str) else spec) if w.strip()]
    chosen: list[str] = []
    for w in wanted:
        hits = [n for n in names if w in (n, Path(n).name, Path(n).stem, str(Path(n).with_suffix("")))]
        if not hits:
            raise SlmError(f"--val-books: no book named {w!r} in {corpus.path}")
        chosen.extend(h for h in hits if h not in chosen)
    if len(chosen) >= len(names):
        raise SlmError("--val-books names every book of the corpus: at least one must train")
    return tuple(chosen)


def split_corpus(corpus: Corpus, *, val_fraction: float = TrainConfig.val_fraction, heldout_books: tuple[str, ...] = (),
                 train_books: tuple[str, ...] | None = None) -> CorpusSplit:
    """Hold out whole books, then the tail of each remaining book (split_documents).

    The one place the trainer, ``slmtui eval`` and the export cut a corpus, so their figures are the
    same computation on the same text. ``train_books`` restricts the training books to those named
    (a model trained on an older, smaller version of a corpus records them); held-out books are
    looked up in the whole corpus.
    """
    by_name = {d.name: d for d in corpus.documents}
    missing = [n for n in heldout_books if n not in by_name]
    if missing:
        raise SlmError(f"held-out book(s) not in {corpus.path}: {', '.join(missing)}")
    held = set(heldout_books)
    keep = [d for d in corpus.documents if d.name not in held and (train_books is None or d.name in train_books)]
    if not keep:
        raise SlmError(f"no book of {corpus.path} is left to train on once the held-out books are set aside")
    train, val = split_documents(Corpus(corpus.path, tuple(keep)), val_fraction=val_fraction)
    return CorpusSplit(train, val, [by_name[n].text for n in heldout_books], tuple(heldout_books), val_fraction)


def model_split(corpus: Corpus, training: dict[str, object], *, heldout_books: tuple[str, ...] | None = None) -> CorpusSplit:
    """The split a model's training summary (model.toml's [training]) describes, for this corpus.

    Reads val_fraction, heldout_books and (for a model trained on a subset) corpus_books; an explicit
    ``heldout_books`` replaces the recorded ones (scoring a model on books of your choosing). The recorded names
    are books of the corpus the model was trained on, so they apply where this corpus holds them: any other
    folder (your own books) is split by val_fraction alone, and ``not_here`` names the held-out books it lacks.
    """
    val_fraction = training.get("val_fraction", TrainConfig.val_fraction)
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        val_fraction = TrainConfig.val_fraction
    present = {d.name for d in corpus.documents}
    recorded = training.get("heldout_books") or ()
    named = tuple(str(b) for b in recorded) if isinstance(recorded, (list, tuple)) else ()
    books = training.get("corpus_books")
    trained = tuple(str(b) for b in books) if isinstance(books, list) else ()
    if heldout_books is not None:
        named = ()  # replaced, not unapplied
    held = heldout_books if heldout_books is not None else tuple(n for n in named if n in present)
    not_here = tuple(n for n in named if n not in present)
    train_books = tuple(n for n in trained if n in present) or None  # none here: not the corpus it trained on
    split = split_corpus(corpus, val_fraction=float(val_fraction), heldout_books=held, train_books=train_books)
    return replace(split, not_here=not_here)
