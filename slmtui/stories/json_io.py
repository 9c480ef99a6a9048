"""A whole story tree as JSON: every passage (all branches), its sampling, model and tokens, the memory, the
author's note, the bookmarks and the lorebook, so a story travels between machines and comes back the same tree.

The file says what it is and which version of this format wrote it::

    {"format": "slmtui-story", "version": 1, "story": {...}, "passages": [...], "bookmarks": [...],
     "lore": {"format": "slmtui-lore", "version": 1, "entries": [...]}}

``lore`` is the lore file's own object (stories/lore_json.py), so a world cut out of a story file is a lore file;
it is optional on reading (files written before the lorebook have none) and checked whole like the rest.

Passages come parents first, each with the id it had where it was exported; import gives them new ids in a
new story. Reading checks everything before anything is written, and says the first problem in one line.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from slmtui.core.atomic import write_regular_file
from slmtui.core.errors import SlmError
from slmtui.core.user_input import MAX_IMPORT_BYTES, read_file_text
from slmtui.stories.export import exports_dir, slug
from slmtui.stories.lore_json import lore_from_data, lore_to_data
from slmtui.stories.lorebook import Lorebook
from slmtui.stories.records import AUTHORS, Bookmark, Passage, Story
from slmtui.stories.store import StoryStore
from slmtui.stories.tokens import pack_token, unpack_tokens
from slmtui.core import strict_json

FORMAT = "slmtui-story"
VERSION = 1
"""This file format's version (not the database's): bumped when a reader of the old one would misread it."""


def export_json(store: StoryStore, story_id: int) -> str:
    """The story's whole tree as JSON text (UTF-8, indented: diffable, and small next to the tokens)."""
    story = store.get_story(story_id)
    passages = store.passages(story_id)
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "story": {
            "title": story.title if story.title_is_set else None,
            "created": story.created.isoformat(),
            "updated": story.updated.isoformat(),
            "model": story.model,
            "memory": story.memory,
            "author_note": story.author_note,
            "current": story.current_passage_id,
        },
        "passages": [
            {
                "id": p.id,
                "parent": p.parent_id,
                "author": p.author,
                "text": p.text,
                "sampling": p.sampling,
                "model": p.model,
                "created": p.created.isoformat(),
                "updated": p.updated.isoformat(),
                "position": p.position,
                "tokens": [[s, e, t, pr, [list(a) for a in alts]] for s, e, t, pr, alts in unpack_tokens(p.tokens)],
            }
            for p in _parents_first(passages)
        ],
        "bookmarks": [{"name": b.name, "passage": b.passage_id} for b in store.bookmarks(story_id)],
        "lore": lore_to_data(store.lore(story_id)),
    }
    return strict_json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def _parents_first(passages: list[Passage]) -> list[Passage]:
    kids: dict[int | None, list[Passage]] = {}
    for p in passages:
        kids.setdefault(p.parent_id, []).append(p)
    out: list[Passage] = []
    stack = list(reversed(kids.get(None, [])))
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(reversed(kids.get(p.id, [])))
    return out


MAX_DEPTH = 32
"""The deepest nesting a story file may have. The schema's own is 7 (the document, its passages, a passage, its
tokens, a token, its alternatives, one alternative); lore entries keep fields of their own on a round trip, so
they get room. A file nested deeper is refused before it is walked (json's parser recurses: 10,000 deep was a
RecursionError)."""
INT_RANGE = (-(2**63), 2**63 - 1)
"""Whole numbers SQLite can hold; ids, positions and token numbers outside it are refused."""

StoryFile = tuple[Story, list[Passage], list[Bookmark], Lorebook]
"""What a story file holds: the story, its passages (parents first), its bookmarks and its lorebook."""


def read_json(text: str, source: str = "the file") -> StoryFile:
    """Parse and check a story file against the schema (every value's type and range, the tree's shape, text
    SQLite can store); SlmError (exit 2) naming the first problem, before anything is written."""
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise SlmError(f"{source} is not JSON: {e.msg} at line {e.lineno}, column {e.colno}", exit_code=2) from e
    except RecursionError as e:
        raise SlmError(f"{source} is not an slmtui story: nested deeper than {MAX_DEPTH} levels", exit_code=2) from e
    except ValueError as e:  # NaN, Infinity
        raise SlmError(f"{source} is not strict JSON: {e}", exit_code=2) from e
    try:
        _check_values(doc)
        story, passages, bookmarks = _read(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise SlmError(f"{source} is not an slmtui story: {_say(e)}", exit_code=2) from e
    lore = lore_from_data(doc["lore"], source, where="lore") if "lore" in doc else Lorebook()
    return story, passages, bookmarks, lore


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _check_values(doc: Any) -> None:
    """Every value of the document, iteratively (no recursion to exhaust): nesting within MAX_DEPTH, strings
    that are text (a lone surrogate such as "\\ud800" cannot be stored as UTF-8), whole numbers within
    INT_RANGE, other numbers finite."""
    stack: list[tuple[Any, int, str]] = [(doc, 1, "the document")]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise ValueError(f"nested deeper than {MAX_DEPTH} levels (at {where})")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key, where)
                stack.append((item, depth + 1, key if isinstance(key, str) else where))
        elif isinstance(value, str):
            _check_text(value, where)
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not INT_RANGE[0] <= value <= INT_RANGE[1]:
                raise ValueError(f"{where}: {value} is out of range")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{where}: {value} is not a finite number")


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"{where}: holds {text[e.start:e.end]!r}, a lone surrogate, which is not text") from None


def _say(e: Exception) -> str:
    return f"missing {e}" if isinstance(e, KeyError) else " ".join(str(e).split())


def _read(doc: Any) -> tuple[Story, list[Passage], list[Bookmark]]:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f'"format" is not "{FORMAT}"')
    if not isinstance(doc.get("version"), int) or doc["version"] > VERSION:
        raise ValueError(f"format version {doc.get('version')!r}; this slmtui reads up to {VERSION}")
    s = doc["story"]
    seen: set[int] = set()
    passages: list[Passage] = []
    for p in doc["passages"]:
        pid, parent = _int(p["id"], "passage id"), p["parent"]
        if pid in seen:
            raise ValueError(f"passage {pid} appears twice")
        if parent is not None and parent not in seen:
            raise ValueError(f"passage {pid} comes before its parent {parent}")
        if p["author"] not in AUTHORS:
            raise ValueError(f"passage {pid}: author {p['author']!r} is not 'user' or 'model'")
        if not isinstance(p["text"], str):
            raise ValueError(f"passage {pid}: text is not a string")
        if p.get("sampling") is not None and not isinstance(p["sampling"], dict):
            raise ValueError(f"passage {pid}: sampling is not an object")
        if parent is not None:
            _int(parent, f"passage {pid}: parent")
        seen.add(pid)
        passages.append(Passage(
            id=pid, story_id=0, parent_id=parent, author=p["author"], text=p["text"], sampling=p.get("sampling"),
            created=_time(p.get("created")), updated=_time(p.get("updated")), position=_position(p.get("position", 0),
            pid), model=_str_or_none(p.get("model"), "model"), tokens=_pack(p.get("tokens") or [], pid, p["text"]),
        ))
    current = s.get("current")
    if current is not None and current not in seen:
        raise ValueError(f"the current passage {current} is not in the file")
    bookmarks = []
    for b in doc.get("bookmarks") or []:
        if b["passage"] not in seen or not isinstance(b["name"], str) or not b["name"].strip():
            raise ValueError(f"bookmark {b.get('name')!r} names no passage of the file")
        bookmarks.append(Bookmark(b["name"], b["passage"]))
    title = _str_or_none(s.get("title"), "title")
    story = Story(id=0, title=title or "", title_is_set=bool(title), created=_time(s.get("created")),
                  updated=_time(s.get("updated")), model=_str_or_none(s.get("model"), "model"),
                  memory=_str(s.get("memory", ""), "memory"), current_passage_id=current,
                  author_note=_str(s.get("author_note", ""), "author_note"))
    return story, passages, bookmarks


def _int(v: Any, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(f"{what} {v!r} is not a whole number")
    return v


def _position(v: Any, pid: int) -> int:
    if _int(v, f"passage {pid}: position") < 0:
        raise ValueError(f"passage {pid}: position {v} is below 0")
    return v


def _str(v: Any, what: str) -> str:
    if not isinstance(v, str):
        raise ValueError(f"{what} is not a string")
    return v


def _str_or_none(v: Any, what: str) -> str | None:
    return None if v is None else _str(v, what)


def _time(v: Any) -> datetime:
    if v is None:
        return datetime.now(timezone.utc)
    t = datetime.fromisoformat(_str(v, "a time"))
    t = t if t.tzinfo else t.replace(tzinfo=timezone.utc)
    try:
        t.astimezone(timezone.utc)  # "9999-12-31T23:59:59-01:00" parses, but is past the end of time in UTC
    except OverflowError as e:
        raise ValueError(f"the time {v!r} is out of range") from e
    return t


def _pack(tokens: Any, pid: int, text: str) -> str:
    """A passage's tokens, each ``[start, end, token_id, prob, [[token_id, text, prob], ...]]`` with its offsets
    inside the passage's text and probabilities from 0 to 1 (token view shades and splits the text by them)."""
    if not isinstance(tokens, list):
        raise ValueError(f"passage {pid}: tokens is not a list")
    lines = []
    for t in tokens:
        if not isinstance(t, list) or len(t) != 5:
            raise ValueError(f"passage {pid}: a token is not [start, end, token_id, prob, alternatives]")
        start, end, token_id = (_int(v, f"passage {pid}: token field") for v in t[:3])
        prob, alts = _prob(t[3], pid), t[4]
        if not 0 <= start <= end <= len(text) or token_id < 0:
            raise ValueError(f"passage {pid}: token {t[:3]} is outside the passage's text")
        if not isinstance(alts, list) or not all(isinstance(a, list) and len(a) == 3 for a in alts):
            raise ValueError(f"passage {pid}: a token's alternatives are not [[token_id, text, prob], ...]")
        lines.append(pack_token(start, end, token_id, prob,
                                [(_int(a[0], f"passage {pid}: token id"), _str(a[1], f"passage {pid}: token text"),
                                  _prob(a[2], pid)) for a in alts]))
    return "".join(lines)


def _prob(v: Any, pid: int) -> float:
    if v is None:  # not known: what an export writes for a probability that was not finite (core/strict_json.py)
        return 0.0
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
        raise ValueError(f"passage {pid}: probability {v!r} is not a number from 0 to 1")
    return float(v)


def import_json(store: StoryStore, path: Path) -> Story:
    """Read ``path`` and add it as a new story; nothing is written unless the whole file is good."""
    text = read_file_text(path, limit=MAX_IMPORT_BYTES, what="a story file")
    story, passages, bookmarks, lore = read_json(text, str(path))
    return store.insert_tree(story, passages, bookmarks, lore)


def export_tree_file(store: StoryStore, story_id: int) -> Path:
    """Write the whole tree to ``<data dir>/exports/<title>-<id>.json`` (the app's export); returns the file.
    Replaces only a regular file the app wrote there before, as the Markdown export does."""
    story = store.get_story(story_id)
    path = exports_dir() / f"{slug(story.title)}-{story.id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_regular_file(path, export_json(store, story_id).encode("utf-8"), replace=True)
