"""StoryStore's moves along the tree (undo, redo, siblings), its bookmarks, and whole trees at once (JSON import).

A mixin of ``StoryStore`` (store.py): each method is one transaction through the store's ``_tx`` and helpers.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from slmtui.core.errors import SlmError
from slmtui.stories.records import Bookmark, Passage, Story


class TreeMoves:
    """Undo, redo, siblings, bookmarks and ``insert_tree``, on the store's connection and lock."""

    if TYPE_CHECKING:  # StoryStore's plumbing (store.py)
        def _tx(self, *, write: bool = False) -> AbstractContextManager[sqlite3.Connection]: ...

        def _now(self) -> str: ...

        def _story_row(self, c: sqlite3.Connection, story_id: int) -> sqlite3.Row: ...

        @staticmethod
        def _story(row: sqlite3.Row) -> Story: ...

        def _passage_row(self, c: sqlite3.Connection, passage_id: int) -> Passage: ...

        def _children(self, c: sqlite3.Connection, story_id: int, parent_id: int | None,
                      order: str) -> list[Passage]: ...

        def _move(self, c: sqlite3.Connection, story_id: int, passage_id: int | None) -> Passage | None: ...

        def _insert_story(self, c: sqlite3.Connection, title: str | None, model: str | None, memory: str,
                          author_note: str, created: str | None = None, updated: str | None = None) -> int: ...

    # --- tree moves (the writer's undo / redo / branch keys) -------------------------------------------------

    def undo(self, story_id: int) -> Passage | None:
        """Step back to the parent of the current passage (None at the top). Nothing is deleted: redo returns."""
        with self._tx(write=True) as c:
            current = self._story_row(c, story_id)["current_passage_id"]
            if current is None:
                return None
            return self._move(c, story_id, self._passage_row(c, current).parent_id)

    def redo(self, story_id: int) -> Passage | None:
        """Step forward to the child visited or created last; stay put (and return the current) if none."""
        with self._tx(write=True) as c:
            current = self._story_row(c, story_id)["current_passage_id"]
            kids = self._children(c, story_id, current, "visited DESC, id DESC")
            if not kids:
                return self._passage_row(c, current) if current is not None else None
            return self._move(c, story_id, kids[0].id)

    def next_sibling(self, story_id: int) -> Passage | None:
        """Switch to the next alternative of the current passage, wrapping around."""
        return self._switch_sibling(story_id, +1)

    def prev_sibling(self, story_id: int) -> Passage | None:
        """Switch to the previous alternative of the current passage, wrapping around."""
        return self._switch_sibling(story_id, -1)

    def _switch_sibling(self, story_id: int, step: int) -> Passage | None:
        # The new current is the sibling itself, at the same depth (not a leaf below it): the reader stays at
        # the same point of the story, and redo walks on down that branch.
        with self._tx(write=True) as c:
            current = self._story_row(c, story_id)["current_passage_id"]
            if current is None:
                return None
            here = self._passage_row(c, current)
            sibs = self._children(c, story_id, here.parent_id, "position, id")
            index = next(i for i, s in enumerate(sibs) if s.id == current)
            return self._move(c, story_id, sibs[(index + step) % len(sibs)].id)

    # --- bookmarks --------------------------------------------------------------------------------------------

    def set_bookmark(self, story_id: int, passage_id: int, name: str) -> Bookmark:
        """Name a passage; a name already used in this story moves to this passage."""
        name = " ".join(name.split())
        if not name:
            raise SlmError("a bookmark needs a name")
        with self._tx(write=True) as c:
            if self._passage_row(c, passage_id).story_id != story_id:
                raise SlmError(f"passage {passage_id} is not part of story {story_id}")
            c.execute("INSERT INTO bookmarks (story_id, passage_id, name, created) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT (story_id, name) DO UPDATE SET passage_id = excluded.passage_id",
                      (story_id, passage_id, name, self._now()))
            return Bookmark(name, passage_id)

    def bookmarks(self, story_id: int) -> list[Bookmark]:
        """The story's bookmarks, oldest first."""
        with self._tx() as c:
            rows = c.execute("SELECT name, passage_id FROM bookmarks WHERE story_id = ? ORDER BY id", (story_id,))
            return [Bookmark(r["name"], r["passage_id"]) for r in rows]

    def delete_bookmark(self, story_id: int, name: str) -> None:
        with self._tx(write=True) as c:
            c.execute("DELETE FROM bookmarks WHERE story_id = ? AND name = ?", (story_id, name))

    # --- whole trees (JSON export and import: slmtui/story_json.py) -------------------------------------------

    def insert_tree(self, story: Story, passages: list[Passage], bookmarks: list[Bookmark]) -> Story:
        """A new story holding ``passages`` (parents before children; their ids are the file's, remapped
        here) and ``bookmarks``, in one transaction: an import either lands whole or not at all."""
        with self._tx(write=True) as c:
            sid = self._insert_story(c, story.title if story.title_is_set else None, story.model, story.memory,
                                     story.author_note, story.created.isoformat(), story.updated.isoformat())
            ids: dict[int, int] = {}
            for p in passages:
                if p.parent_id is not None and p.parent_id not in ids:
                    raise SlmError(f"passage {p.id} comes before its parent {p.parent_id}")
                cur = c.execute(
                    "INSERT INTO passages (story_id, parent_id, author, text, sampling, created, updated, position, "
                    "model, tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (sid, ids.get(p.parent_id) if p.parent_id is not None else None, p.author, p.text,
                     json.dumps(p.sampling) if p.sampling is not None else None, p.created.isoformat(),
                     p.updated.isoformat(), p.position, p.model, p.tokens))
                ids[p.id] = int(cur.lastrowid or 0)
            for b in bookmarks:
                c.execute("INSERT OR REPLACE INTO bookmarks (story_id, passage_id, name, created) VALUES (?, ?, ?, ?)",
                          (sid, ids[b.passage_id], b.name, self._now()))
            if story.current_passage_id is not None:
                self._move(c, sid, ids[story.current_passage_id])
            c.execute("UPDATE stories SET updated = ? WHERE id = ?", (story.updated.isoformat(), sid))
            return self._story(self._story_row(c, sid))
