"""A story's current branch as Markdown or text, and the export file the app writes.

``StoryExport`` is a mixin of ``StoryStore`` (store.py); the rest are module functions.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from slmtui.core import paths
from slmtui.core.atomic import write_regular_file
from slmtui.core.errors import SlmError
from slmtui.stories.records import EXPORT_FORMATS, Passage, Story

if TYPE_CHECKING:
    from slmtui.stories.store import StoryStore


class StoryExport:
    """``export``, ``export_text`` and ``export_markdown`` of the store."""

    if TYPE_CHECKING:  # StoryStore's plumbing and reads (store.py)
        def _tx(self, *, write: bool = False) -> AbstractContextManager[sqlite3.Connection]: ...

        def _story_row(self, c: sqlite3.Connection, story_id: int) -> sqlite3.Row: ...

        @staticmethod
        def _story(row: sqlite3.Row) -> Story: ...

        def _path(self, c: sqlite3.Connection, passage_id: int | None) -> list[Passage]: ...

        def story_text(self, story_id: int, passage_id: int | None = None) -> str: ...

    def export(self, story_id: int, fmt: str) -> str:
        """The story's current branch in ``fmt``: "md" (``export_markdown``) or "txt" (``export_text``)."""
        if fmt not in EXPORT_FORMATS:
            raise SlmError(f"unknown export format {fmt!r}; choose one of: {', '.join(EXPORT_FORMATS)}")
        return self.export_markdown(story_id) if fmt == "md" else self.export_text(story_id)

    def export_text(self, story_id: int) -> str:
        """The current path's text, exactly as the reader sees it."""
        return self.story_text(story_id)

    def export_markdown(self, story_id: int) -> str:
        """Markdown of the current path: the title as a heading, an italic note naming the model and the
        sampling used, then the text. The user's passages are **bold**, the model's plain, so who wrote what
        survives the export; Markdown characters in the text are escaped so it renders as written."""
        with self._tx() as c:
            story = self._story(self._story_row(c, story_id))
            path = self._path(c, story.current_passage_id)
        samplings: list[str] = []
        for p in path:
            if p.author == "model" and p.sampling:
                note = ", ".join(f"{k} {v}" for k, v in p.sampling.items())
                if note not in samplings:
                    samplings.append(note)
        note = f"model `{story.model}`" if story.model else "model unknown"
        if samplings:
            note += "; sampling: " + "; ".join(samplings)
        body = "".join(_bold(p.text) if p.author == "user" else _escape(p.text) for p in path)
        return f"# {_escape(story.title)}\n\n_Written with slmtui, {note}. User text in bold._\n\n{body}\n"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")
_MD_LINE_START = re.compile(r"^(\s*\d*)([-+=.)])", re.MULTILINE)  # "- x", "+ x", "===", "1. x", "2) x"


def _escape(text: str) -> str:
    """Backslash-escape what Markdown would read as markup (emphasis, links, headings, list markers)."""
    return _MD_LINE_START.sub(r"\1\\\2", _MD_SPECIAL.sub(r"\\\1", text))


def _bold(text: str) -> str:
    """Bold each line separately (``**`` cannot span paragraphs) and keep whitespace outside the markers."""
    out = []
    for line in text.split("\n"):
        m = re.fullmatch(r"(\s*)(.*?)(\s*)", line, re.DOTALL)
        assert m is not None
        lead, content, trail = m.groups()
        out.append(f"{lead}**{_escape(content)}**{trail}" if content else line)
    return "\n".join(out)


def exports_dir() -> Path:
    """Where the app writes exported stories (the CLI writes where it is told)."""
    return paths.data_dir() / "exports"


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "story"


def export_story(store: StoryStore, story_id: int, fmt: str) -> Path:
    """Write the story's current branch to ``<data dir>/exports/<title>-<id>.<fmt>``; returns the file.

    Exporting again replaces that file (the app named it), but never a link, FIFO or folder found in its
    place: that raises SlmError, which the screens show.
    """
    story = store.get_story(story_id)
    text = store.export(story_id, fmt)
    path = exports_dir() / f"{slug(story.title)}-{story.id}.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_regular_file(path, text.encode("utf-8"), replace=True)
