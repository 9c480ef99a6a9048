"""What "a text" is to the trainer: one newline convention, NFC, no control characters, Project Gutenberg's
header and footer gone, and hard-wrapped prose joined back into one line per paragraph (verse kept line by
line). corpus.py reads files through ``clean_text``.
"""

from __future__ import annotations

import re
import unicodedata

# A line is "long" (it reached the wrap margin) at this fraction of the file's wrap width. In the
# bundled books 98% of the non-final lines of prose paragraphs reach 0.8 of it; verse, headings
# and short dialogue lines mostly stay well below.
_LONG_LINE = 0.75
# Hard-wrapped books wrap at 60-80 columns. A wider p95 line length means one paragraph per
# line (nothing to unwrap), and a narrower one is more likely a poem than wrapped prose.
_MIN_WRAP, _MAX_WRAP = 40, 120

_GUTENBERG_START = re.compile(r"^\*{3}\s*START OF (THE|THIS) PROJECT GUTENBERG[^\n]*\n", re.I | re.M)
_GUTENBERG_END = re.compile(
    r"^(\*{3}\s*END OF (THE|THIS) PROJECT GUTENBERG|End of (the )?Project Gutenberg)", re.I | re.M
)
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # Unicode category Cc, less \t and \n
_WORD_HYPHEN = re.compile(r"[^\W\d_]-$")  # "Woggle-" at a line end: a word wrapped at its hyphen
_SPACES = re.compile(r"[^\S\n]+")  # whitespace runs except newlines (tabs, NBSP, ...)


def _normalise(text: str) -> str:
    """One newline convention, NFC, tabs as spaces, no other control characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u2029", "\n\n").replace("\u2028", "\n").replace("\x85", "\n")
    text = unicodedata.normalize("NFC", text).replace("\t", " ").replace("\ufeff", "")
    return CONTROL_CHARS.sub("", text)


def _strip_gutenberg(text: str) -> str:
    """Keep only the book between Project Gutenberg's ``*** START OF`` and ``*** END OF`` lines.

    The bundled books were trimmed by hand and carry no markers; users' downloads usually do,
    and a model should not learn the licence that follows every book.
    """
    start = _GUTENBERG_START.search(text)
    if start:
        text = text[start.end():]
    end = _GUTENBERG_END.search(text)
    if end:
        text = text[: end.start()]
    return text


def _wrap_width(lines: list[str]) -> int | None:
    """The column a hard-wrapped file wraps at, or None when it is not hard-wrapped.

    The 95th percentile of line lengths finds the margin; requiring half the lines to reach
    ``_LONG_LINE`` of it tells wrapped prose (most lines end near the margin) from text with
    one paragraph per line (lengths all over the place).
    """
    lengths = sorted(len(line) for line in lines if line.strip())
    if not lengths:
        return None
    width = lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))]
    if not _MIN_WRAP <= width <= _MAX_WRAP:
        return None
    n_long = sum(1 for n in lengths if n >= _LONG_LINE * width)
    return width if 2 * n_long >= len(lengths) else None


def _join(a: str, b: str) -> str:
    # "Saw-\nHorse" and "him--\nlie" were one token before wrapping: rejoin them without a space.
    return a + b if a.endswith("-") else f"{a} {b}"


def _unwrap(lines: list[str], width: int | None) -> str:
    """One paragraph's lines (no blank ones) -> prose on one line, or verse line by line.

    A line break is a wrap when the line reached the margin, ends in a word's hyphen, or the
    next line carries on a sentence in lower case. A paragraph is prose when most of its breaks
    are wraps and most of its lines are not indented (every poem in the bundled books is
    indented); prose joins its wraps and keeps any other break (a heading run into its text, a
    lost paragraph break). Verse, songs and headings keep every break.
    """
    stripped = [_SPACES.sub(" ", line).strip() for line in lines]
    if width is None or len(lines) == 1:
        return "\n".join(stripped)
    wraps = [
        len(line) >= _LONG_LINE * width or nxt[:1].islower() or _WORD_HYPHEN.search(line) is not None
        for line, nxt in zip(lines, stripped[1:])
    ]
    n_indented = sum(1 for line in lines if line[:1] == " ")
    if 2 * n_indented > len(lines) or 2 * sum(wraps) <= len(wraps):
        return "\n".join(stripped)
    out = stripped[0]
    for wrap, line in zip(wraps, stripped[1:]):
        out = _join(out, line) if wrap else f"{out}\n{line}"
    return out


def clean_text(text: str) -> str:
    """Normalise and unwrap ``text``: paragraphs separated by exactly one blank line.

    Book texts are hard-wrapped at ~70 columns; a model trained on them would write a newline
    every 70 characters, so wrapped prose is joined back into one line per paragraph.
    """
    text = _strip_gutenberg(_normalise(text))
    lines = [line.rstrip() for line in text.split("\n")]
    width = _wrap_width(lines)
    paragraphs: list[str] = []
    block: list[str] = []
    for line in [*lines, ""]:
        if line.strip():
            block.append(line)
        elif block:
            paragraphs.append(_unwrap(block, width))
            block = []
    return "\n\n".join(p for p in paragraphs if p)
