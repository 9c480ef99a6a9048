"""Text as the views draw it: control characters made harmless, and wrapped into line offsets as Textual wraps.

Shared by the story view, the candidates, the tree and the dialogs; story_view.py re-exports both names.
"""

from __future__ import annotations

from textual.content import Content


def printable(text: str) -> str:
    """Control characters (an untrained model writes them) would garble a terminal: U+FFFD for each, and a
    space for a tab. One character for one character, so offsets into the text stay valid."""
    if text.isprintable():
        return text
    return "".join(c if c >= " " or c == "\n" else " " if c == "\t" else "\ufffd" for c in text)


def wrap_offsets(text: str, start: int, width: int) -> list[tuple[int, int]]:
    """(start, end) offsets into ``text`` of its lines from ``start`` on, wrapped at ``width`` cells the way
    Textual wraps: each paragraph by ``Content.wrap``, each line found back in its paragraph."""
    lines: list[tuple[int, int]] = []
    offset = start
    for paragraph in text[start:].split("\n"):
        if not paragraph:
            lines.append((offset, offset))
        else:
            pos = 0
            for line in Content(paragraph).wrap(max(1, width)):
                found = paragraph.find(line.plain, pos)
                if found < 0:  # should not happen (the wrap only drops spaces); keep the offsets sane
                    found = pos
                lines.append((offset + found, offset + found + len(line.plain)))
                pos = found + len(line.plain)
        offset += len(paragraph) + 1
    return lines
