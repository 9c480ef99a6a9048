"""Small real corpora for the trainer tests: whole paragraphs cut from the bundled books."""

from __future__ import annotations

from slmtui.core.paths import BUNDLED_CORPUS_DIR


def book_excerpt(filename: str, n_chars: int, *, skip_paragraphs: int = 40) -> str:
    """Whole paragraphs of a bundled book (past its title pages) adding up to about ``n_chars``."""
    paragraphs = (BUNDLED_CORPUS_DIR / filename).read_text(encoding="utf-8").split("\n\n")[skip_paragraphs:]
    out, size = [], 0
    for p in paragraphs:
        if size >= n_chars:
            break
        out.append(p)
        size += len(p) + 2
    return "\n\n".join(out) + "\n"
