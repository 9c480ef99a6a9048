"""What the stories database holds, as frozen dataclasses read from its rows, and the title a story gets when it
is given none."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Author = Literal["user", "model"]
AUTHORS: tuple[str, ...] = ("user", "model")
UNTITLED = "Untitled"
EXPORT_FORMATS = {"md": "Markdown", "txt": "text"}
"""The formats a story is exported in: file suffix -> the format's name for people."""
TITLE_WORDS = 6
TITLE_MAX_CHARS = 60


@dataclass(frozen=True)
class Story:
    """One story's row. Frozen: the UI thread and a worker may hold the same one."""

    id: int
    title: str  # what to show: the title given, else the opening words of the first user passage
    title_is_set: bool  # False while ``title`` is the default from the opening words
    created: datetime
    updated: datetime  # last change of any kind, navigation included, so the list shows the last story touched
    model: str | None
    memory: str  # text the model sees at the head of its window, not part of the story's text
    current_passage_id: int | None  # None: before the first passage (everything undone, or nothing written)
    author_note: str = ""  # text the model sees a few lines before the end of its window (writing/context.py)


@dataclass(frozen=True)
class Passage:
    """One node of the tree. ``sampling`` is a fresh copy per read: changing it changes nothing stored."""

    id: int
    story_id: int
    parent_id: int | None  # None for a root; a story may have several roots (retries of the first passage)
    author: Author
    text: str
    sampling: dict[str, Any] | None  # the sampling settings that produced a model passage
    created: datetime
    updated: datetime
    position: int  # order among siblings: retries come after what they retry
    model: str | None = None  # the model that wrote it (None: the user's, or written before schema v2)
    tokens: str = ""  # the model's tokens, packed (``pack_token``): one JSON line per token, for token view


@dataclass(frozen=True)
class Bookmark:
    """A name the user gave a passage, to jump back to it."""

    name: str
    passage_id: int


def default_title(text: str) -> str:
    """The opening ~6 words of ``text``, cut at a word, as a title for a story that was given none."""
    words = text.split()
    if not words:
        return UNTITLED
    title = " ".join(words[:TITLE_WORDS])
    cut = len(words) > TITLE_WORDS
    if len(title) > TITLE_MAX_CHARS:
        space = title.rfind(" ", 0, TITLE_MAX_CHARS)
        title = title[: space if space > 0 else TITLE_MAX_CHARS]
        cut = True
    title = title.rstrip(",;:-—–")
    return title + "…" if cut else title


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def story_from_row(row: sqlite3.Row) -> Story:
    """A story's row (with ``first_user_text``, for the default title) as a ``Story``."""
    title = row["title"]
    return Story(
        id=row["id"],
        title=title if title else default_title(row["first_user_text"] or ""),
        title_is_set=bool(title),
        created=_ts(row["created"]),
        updated=_ts(row["updated"]),
        model=row["model"],
        memory=row["memory"],
        current_passage_id=row["current_passage_id"],
        author_note=row["author_note"],
    )


def passage_from_row(row: sqlite3.Row) -> Passage:
    return Passage(
        id=row["id"],
        story_id=row["story_id"],
        parent_id=row["parent_id"],
        author=row["author"],
        text=row["text"],
        sampling=json.loads(row["sampling"]) if row["sampling"] is not None else None,
        created=_ts(row["created"]),
        updated=_ts(row["updated"]),
        position=row["position"],
        model=row["model"],
        tokens=row["tokens"],
    )
