"""StoryStore: every story's passage tree in one SQLite file (``stories.db``), behind one lock; no UI here.

Every public mutating method is one transaction, committed before it returns: the app can be killed at any
moment and the database holds everything up to the last call. WAL with ``synchronous=NORMAL`` keeps those
commits cheap (no fsync per commit) so ``append_text`` can run for each streamed chunk; an app crash loses
nothing, a power cut at worst the last few commits.

One class, and a long one, because it has one job: opening the file, the transactions, stories, passages, the
moves along the tree, bookmarks and whole-tree imports all go through its one connection and lock, so the rules
of the tree cannot drift apart. The exports (export.py, json_io.py) are functions over its public reads.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from slmtui.core import paths
from slmtui.core.errors import SlmError
from slmtui.stories.lorebook import LoreEntry, Lorebook
from slmtui.stories.records import AUTHORS, Author, Passage, Story
from slmtui.stories.schema import MIGRATIONS, SCHEMA_VERSION
from slmtui.stories.records import Bookmark, passage_from_row, story_from_row
from slmtui.stories.schema import OWN_TABLES, TABLES_AT


_STORY_SELECT = """SELECT s.*, (SELECT p.text FROM passages p WHERE p.story_id = s.id AND p.author = 'user'
                   ORDER BY p.id LIMIT 1) AS first_user_text FROM stories s"""
# Ancestors of a passage, itself included, with their distance from it (0 = itself).
_UP = """WITH RECURSIVE up(id, depth) AS (
             SELECT ?, 0
             UNION ALL SELECT p.parent_id, up.depth + 1 FROM passages p JOIN up ON p.id = up.id
             WHERE p.parent_id IS NOT NULL)"""


_SQLITE_MIN, _SQLITE_MAX = -(2**63), 2**63 - 1
"""SQLite's integers: an id outside them names no row (and sqlite3 would raise OverflowError binding it)."""


class DamagedStoreError(SlmError):
    """stories.db cannot be used as it is: not a database, a table gone, pages damaged, or a folder.

    The file is never touched: the app offers a fresh database beside it (``fresh_path_beside``), the CLI
    exits 2 with this one line."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = " ".join(reason.split())
        super().__init__(f"{path} is damaged ({self.reason}); it is left as it is", exit_code=2)


class StoryGoneError(SlmError):
    """The story or passage named is not in the database (deleted in another window, or an id typed wrong)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=2)


class StoreWriteError(SlmError):
    """stories.db refused a write: the disk is full, the file or its folder is read-only, an I/O error, or
    another program holds the lock. Nothing of the call was written (its transaction rolled back); the caller
    still holds what it meant to write, and says so (writing/session.py keeps it in memory)."""

    def __init__(self, path: Path, error: sqlite3.Error) -> None:
        self.path = path
        self.reason = describe_sqlite_error(error)
        super().__init__(f"cannot write {path}: {self.reason}", exit_code=1)


# SQLite's result codes that mean "the file cannot be written now", not "the file is damaged", in words.
_WRITE_CODES = {
    "SQLITE_FULL": "the disk is full (No space left on device)",
    "SQLITE_READONLY": "it is read-only",
    "SQLITE_CANTOPEN": "it cannot be opened (permission denied, or its folder is gone)",
    "SQLITE_PERM": "permission denied",
    "SQLITE_IOERR": "an I/O error (the disk, or a network drive gone)",
    "SQLITE_BUSY": "another program holds it locked",
    "SQLITE_LOCKED": "another program holds it locked",
}


def describe_sqlite_error(error: sqlite3.Error) -> str:
    """The cause of an SQLite error in words: its result code where it is one of "cannot write now"."""
    name = getattr(error, "sqlite_errorname", "") or ""
    base = next((code for code in _WRITE_CODES if name == code or name.startswith(code + "_")), None)
    return f"{_WRITE_CODES[base]} ({error})" if base else str(error)


def _cannot_write(error: sqlite3.Error) -> bool:
    name = getattr(error, "sqlite_errorname", "") or ""
    return any(name == code or name.startswith(code + "_") for code in _WRITE_CODES)


def fresh_path_beside(damaged: Path) -> Path:
    """Where to keep writing when ``damaged`` cannot be opened: ``stories-2.db`` beside it, or the newest
    ``stories-N.db`` made on an earlier start that opens fine; never the damaged file itself."""
    healthy: Path | None = None
    for n in range(2, 1000):
        candidate = damaged.with_name(f"{damaged.stem}-{n}{damaged.suffix}")
        if not candidate.exists():
            return healthy or candidate
        try:
            StoryStore(candidate).close()
            healthy = candidate
        except SlmError:
            continue
    raise SlmError(f"no free name for a fresh stories database beside {damaged}")


class StoryStore:
    """All stories in one SQLite file. Safe to share between the UI thread and one worker: a lock serialises
    every call, and each public method is its own committed transaction."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else paths.stories_db()
        self._lock = threading.RLock()
        self._last_now = datetime.min.replace(tzinfo=timezone.utc)
        self._conn = self._open()
        # A store nobody closed (a command that returns early, a crash in a caller) still closes its connection
        # when it is collected or the interpreter exits, so SQLite checkpoints and removes its -wal/-shm files.
        self._closer = weakref.finalize(self, self._conn.close)

    # --- opening ----------------------------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        # check_same_thread=False: a generation worker may write; self._lock makes that safe.
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per public call.
        if self.path.is_dir():
            raise DamagedStoreError(self.path, "it is a folder, not a database file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise SlmError(f"cannot open the stories database {self.path}: {e}", exit_code=1) from e
        conn.row_factory = sqlite3.Row
        try:
            self._prepare(conn)
        except sqlite3.DatabaseError as e:
            conn.close()
            if _cannot_write(e):  # a read-only folder or a full disk is not damage: say what it is
                why = describe_sqlite_error(e)
                if not os.access(self.path.parent, os.W_OK):
                    why = (f"its folder {self.path.parent} is read-only, and SQLite writes its -wal and -shm "
                           f"files beside it ({e})")
                raise SlmError(f"cannot open the stories database {self.path}: {why}", exit_code=1) from e
            raise DamagedStoreError(self.path, str(e)) from e
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        # user_version is the first read: on a file that is not SQLite it raises "file is not a database".
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SlmError(f"{self.path} was written by a newer slmtui (stories schema version {version}; this "
                           f"version reads up to {SCHEMA_VERSION}). Upgrade slmtui to open it.", exit_code=1)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version == 0 and tables - OWN_TABLES:
            raise DamagedStoreError(self.path, "an SQLite database, but not slmtui's stories")
        missing = TABLES_AT.get(version, set()) - tables
        if missing:
            raise DamagedStoreError(self.path, f"the {' and '.join(sorted(missing))} table is missing")
        check = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
        if check != "ok":
            raise DamagedStoreError(self.path, check)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # in WAL: durable against app crashes, no fsync per commit
        conn.execute("PRAGMA foreign_keys = ON")
        for v in range(version, SCHEMA_VERSION):
            conn.execute("BEGIN IMMEDIATE")
            try:
                MIGRATIONS[v](conn)
                conn.execute(f"PRAGMA user_version = {v + 1}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._closer()

    def __enter__(self) -> StoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------------------------------------

    @contextmanager
    def _tx(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock; reads get one consistent snapshot, writes commit before returning."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:  # SQLite may have rolled back already (disk full, ...)
                        self._conn.execute("ROLLBACK")
                    raise
            except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
                raise  # our bug, keep the traceback
            except sqlite3.DatabaseError as e:
                if _cannot_write(e):  # disk full, read-only, I/O: the one kind of failure every write reports
                    raise StoreWriteError(self.path, e) from e  # locked for too long, disk full, damaged pages: the user's to fix
                raise SlmError(f"stories database {self.path}: {e}", exit_code=1) from e

    def _now(self) -> str:
        # Strictly increasing within this store, so "most recently updated" has no ties on a coarse clock.
        now = max(datetime.now(timezone.utc), self._last_now + timedelta(microseconds=1))
        self._last_now = now
        return now.isoformat(timespec="microseconds")

    def _story_row(self, c: sqlite3.Connection, story_id: int) -> sqlite3.Row:
        if not _SQLITE_MIN <= story_id <= _SQLITE_MAX:  # `stories export 99999999999999999999`: no such story
            raise StoryGoneError(f"no story with id {story_id}")
        row = c.execute(f"{_STORY_SELECT} WHERE s.id = ?", (story_id,)).fetchone()
        if row is None:
            raise StoryGoneError(f"no story with id {story_id}")
        return row

    def _passage_row(self, c: sqlite3.Connection, passage_id: int) -> Passage:
        if not _SQLITE_MIN <= passage_id <= _SQLITE_MAX:
            raise StoryGoneError(f"no passage with id {passage_id}")
        row = c.execute("SELECT * FROM passages WHERE id = ?", (passage_id,)).fetchone()
        if row is None:
            raise StoryGoneError(f"no passage with id {passage_id}")
        return passage_from_row(row)

    def _children(self, c: sqlite3.Connection, story_id: int, parent_id: int | None, order: str) -> list[Passage]:
        sql = f"SELECT * FROM passages WHERE story_id = ? AND parent_id IS ? ORDER BY {order}"
        return [passage_from_row(r) for r in c.execute(sql, (story_id, parent_id))]

    def _move(self, c: sqlite3.Connection, story_id: int, passage_id: int | None) -> Passage | None:
        """Make ``passage_id`` current, stamping it and its ancestors as visited so redo retraces this path."""
        c.execute("UPDATE stories SET current_passage_id = ?, updated = ? WHERE id = ?",
                  (passage_id, self._now(), story_id))
        if passage_id is None:
            return None
        stamp = c.execute("SELECT COALESCE(MAX(visited), 0) + 1 FROM passages WHERE story_id = ?",
                          (story_id,)).fetchone()[0]
        c.execute(f"{_UP} UPDATE passages SET visited = ? WHERE id IN (SELECT id FROM up)", (passage_id, stamp))
        return self._passage_row(c, passage_id)

    def _path(self, c: sqlite3.Connection, passage_id: int | None) -> list[Passage]:
        if passage_id is None:
            return []
        sql = f"{_UP} SELECT p.* FROM up JOIN passages p ON p.id = up.id ORDER BY up.depth DESC"
        rows = c.execute(sql, (passage_id,)).fetchall()
        if not rows:
            raise StoryGoneError(f"no passage with id {passage_id}")
        return [passage_from_row(r) for r in rows]

    # --- stories ----------------------------------------------------------------------------------------------

    def create_story(self, *, title: str | None = None, model: str | None = None, memory: str = "",
                     author_note: str = "") -> Story:
        """A new, empty story; without a title it is named after its opening words once there are some."""
        with self._tx(write=True) as c:
            return story_from_row(self._story_row(c, self._insert_story(c, title, model, memory, author_note)))

    def _insert_story(self, c: sqlite3.Connection, title: str | None, model: str | None, memory: str,
                      author_note: str, created: str | None = None, updated: str | None = None) -> int:
        now = self._now()
        cur = c.execute("INSERT INTO stories (title, created, updated, model, memory, author_note) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        ((title or "").strip() or None, created or now, updated or now, model, memory, author_note))
        return int(cur.lastrowid or 0)

    def get_story(self, story_id: int) -> Story:
        """The story, or SlmError if there is none (ids come from the command line too)."""
        with self._tx() as c:
            return story_from_row(self._story_row(c, story_id))

    def list_stories(self) -> list[Story]:
        """All stories, the one touched last first: that is the one the user most likely wants back."""
        with self._tx() as c:
            return [story_from_row(r) for r in c.execute(f"{_STORY_SELECT} ORDER BY s.updated DESC, s.id DESC")]

    def rename_story(self, story_id: int, title: str | None) -> Story:
        """Give the story a title; an empty or None title goes back to the default from its opening words."""
        with self._tx(write=True) as c:
            self._story_row(c, story_id)
            c.execute("UPDATE stories SET title = ?, updated = ? WHERE id = ?",
                      ((title or "").strip() or None, self._now(), story_id))
            return story_from_row(self._story_row(c, story_id))

    def delete_story(self, story_id: int) -> None:
        """Delete the story and all its passages (foreign keys cascade). The one call that loses text."""
        with self._tx(write=True) as c:
            self._story_row(c, story_id)
            c.execute("DELETE FROM stories WHERE id = ?", (story_id,))

    def set_memory(self, story_id: int, text: str) -> Story:
        """Replace the story's memory (notes the writer puts before the prompt)."""
        with self._tx(write=True) as c:
            self._story_row(c, story_id)
            c.execute("UPDATE stories SET memory = ?, updated = ? WHERE id = ?", (text, self._now(), story_id))
            return story_from_row(self._story_row(c, story_id))

    def set_author_note(self, story_id: int, text: str) -> Story:
        """Replace the story's author's note (what the model sees a few lines before the end)."""
        with self._tx(write=True) as c:
            self._story_row(c, story_id)
            c.execute("UPDATE stories SET author_note = ?, updated = ? WHERE id = ?", (text, self._now(), story_id))
            return story_from_row(self._story_row(c, story_id))

    # --- passages ---------------------------------------------------------------------------------------------

    def add_passage(self, story_id: int, *, parent_id: int | None, author: Author, text: str,
                    sampling: dict[str, Any] | None = None, model: str | None = None, tokens: str = "",
                    current: bool = True) -> Passage:
        """Add a passage under ``parent_id`` (None: a root) and make it current (unless ``current`` is False:
        a candidate written beside others). A retry is this same call with the old passage's parent: the old
        one stays, as a sibling before the new one."""
        with self._tx(write=True) as c:
            pid = self._insert_passage(c, story_id, parent_id, author, text, sampling, model, tokens)
            if not current:
                return self._passage_row(c, pid)
            moved = self._move(c, story_id, pid)
            assert moved is not None
            return moved

    def add_passages(self, story_id: int, *, parent_id: int | None, count: int, author: Author = "model",
                     sampling: list[dict[str, Any] | None] | None = None, model: str | None = None) -> list[Passage]:
        """``count`` empty siblings under ``parent_id``, in one transaction: the candidates of one generation.
        The current passage stays where it is (the parent) until one is picked."""
        with self._tx(write=True) as c:
            ids = [self._insert_passage(c, story_id, parent_id, author, "", (sampling or [None] * count)[i], model, "")
                   for i in range(count)]
            return [self._passage_row(c, i) for i in ids]

    def _insert_passage(self, c: sqlite3.Connection, story_id: int, parent_id: int | None, author: str, text: str,
                        sampling: dict[str, Any] | None, model: str | None, tokens: str) -> int:
        if author not in AUTHORS:
            raise ValueError(f"author must be 'user' or 'model', not {author!r}")
        self._story_row(c, story_id)
        if parent_id is not None and self._passage_row(c, parent_id).story_id != story_id:
            raise SlmError(f"passage {parent_id} is not part of story {story_id}")
        position = c.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM passages "
                             "WHERE story_id = ? AND parent_id IS ?", (story_id, parent_id)).fetchone()[0]
        now = self._now()
        cur = c.execute(
            "INSERT INTO passages (story_id, parent_id, author, text, sampling, created, updated, position, model, "
            "tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (story_id, parent_id, author, text, json.dumps(sampling) if sampling is not None else None, now, now,
             position, model, tokens),
        )
        return int(cur.lastrowid or 0)

    def append_text(self, passage_id: int, text: str, tokens: str = "") -> None:
        """Add streamed text (and its packed tokens) to the end of a passage. Two UPDATEs and a WAL commit:
        cheap enough per chunk, and committed, so a crash mid-generation keeps what was shown."""
        self.append_texts({passage_id: (text, tokens)})

    def append_texts(self, chunks: dict[int, tuple[str, str]]) -> None:
        """``append_text`` for several passages (the candidates of one generation) in one commit."""
        with self._tx(write=True) as c:
            now = self._now()
            for passage_id, (text, tokens) in chunks.items():
                cur = c.execute("UPDATE passages SET text = text || ?, tokens = tokens || ?, updated = ? WHERE id = ?",
                                (text, tokens, now, passage_id))
                if cur.rowcount == 0:  # deleted (with its story) in another window
                    raise StoryGoneError(f"no passage with id {passage_id}")
            if chunks:
                c.execute("UPDATE stories SET updated = ? WHERE id = (SELECT story_id FROM passages WHERE id = ?)",
                          (now, next(iter(chunks))))

    def set_samplings(self, records: dict[int, dict[str, Any]]) -> None:
        """Replace the sampling records of passages being written (what drew their tokens so far, with each
        change mid-passage: core/sampling_record.py), in one commit."""
        with self._tx(write=True) as c:
            for passage_id, record in records.items():
                cur = c.execute("UPDATE passages SET sampling = ? WHERE id = ?", (json.dumps(record), passage_id))
                if cur.rowcount == 0:
                    raise SlmError(f"no passage with id {passage_id}")

    def edit_passage(self, passage_id: int, text: str) -> Passage:
        """The user rewrote a passage: the new text becomes a new sibling after it, made current; the original,
        its tokens and everything below it stay as they were (an edit is a branch, never an overwrite). The new
        text is the writer's, whoever wrote the original: no model, sampling or tokens drew it."""
        with self._tx(write=True) as c:
            old = self._passage_row(c, passage_id)
            pid = self._insert_passage(c, old.story_id, old.parent_id, "user", text, None, None, "")
            moved = self._move(c, old.story_id, pid)
            assert moved is not None
            return moved

    def set_passage_text(self, passage_id: int, text: str) -> Passage:
        """Replace a passage's text in place (the tree keeps its shape). The writer's edits use
        ``edit_passage``, which keeps the original; this is for tools and tests."""
        with self._tx(write=True) as c:
            story_id = self._passage_row(c, passage_id).story_id
            c.execute("UPDATE passages SET text = ?, updated = ? WHERE id = ?", (text, self._now(), passage_id))
            c.execute("UPDATE stories SET updated = ? WHERE id = ?", (self._now(), story_id))
            return self._passage_row(c, passage_id)

    def get_passage(self, passage_id: int) -> Passage:
        with self._tx() as c:
            return self._passage_row(c, passage_id)

    def path_to(self, passage_id: int) -> list[Passage]:
        """The passages from the root down to ``passage_id``, both included: what the reader sees."""
        with self._tx() as c:
            return self._path(c, passage_id)

    def children(self, passage_id: int) -> list[Passage]:
        """The passages that continue ``passage_id``, in sibling order."""
        with self._tx() as c:
            p = self._passage_row(c, passage_id)
            return self._children(c, p.story_id, p.id, "position, id")

    def passages(self, story_id: int) -> list[Passage]:
        """Every passage of the story in one query, siblings in their order: the whole tree, for drawing it."""
        with self._tx() as c:
            self._story_row(c, story_id)
            sql = "SELECT * FROM passages WHERE story_id = ? ORDER BY parent_id IS NOT NULL, parent_id, position, id"
            return [passage_from_row(r) for r in c.execute(sql, (story_id,))]

    def siblings(self, passage_id: int) -> list[Passage]:
        """All alternatives at this point, the passage itself included (so the UI can show "2/3")."""
        with self._tx() as c:
            p = self._passage_row(c, passage_id)
            return self._children(c, p.story_id, p.parent_id, "position, id")

    def set_current(self, story_id: int, passage_id: int | None) -> Passage | None:
        """Make ``passage_id`` the passage the user is on (None: before the first passage)."""
        with self._tx(write=True) as c:
            self._story_row(c, story_id)
            if passage_id is not None and self._passage_row(c, passage_id).story_id != story_id:
                raise SlmError(f"passage {passage_id} is not part of story {story_id}")
            return self._move(c, story_id, passage_id)

    def current_path(self, story_id: int) -> list[Passage]:
        """Root to current passage; empty when nothing is current."""
        with self._tx() as c:
            return self._path(c, self._story_row(c, story_id)["current_passage_id"])

    def story_text(self, story_id: int, passage_id: int | None = None) -> str:
        """The story's text at ``passage_id`` (default: the current passage): the path's texts joined as-is."""
        with self._tx() as c:
            row = self._story_row(c, story_id)
            path = self._path(c, passage_id if passage_id is not None else row["current_passage_id"])
            if path and path[0].story_id != story_id:
                raise SlmError(f"passage {passage_id} is not part of story {story_id}")
            return "".join(p.text for p in path)

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

    # --- the lorebook -----------------------------------------------------------------------------------------

    def lore(self, story_id: int) -> Lorebook:
        """The story's lorebook: its entries in the writer's order (none for a story that has no lore)."""
        with self._tx() as c:
            row = self._story_row(c, story_id)
            rows = c.execute("SELECT * FROM lore WHERE story_id = ? ORDER BY position", (story_id,)).fetchall()
            entries = tuple(LoreEntry(title=r["title"], keys=tuple(json.loads(r["keys"])), text=r["text"],
                                      enabled=bool(r["enabled"]), always=bool(r["always"]),
                                      extra=json.loads(r["extra"])) for r in rows)
            return Lorebook(entries, json.loads(row["lore_extra"]))

    def set_lore(self, story_id: int, book: Lorebook) -> Lorebook:
        """Replace the story's whole lorebook in one transaction (an edit, a delete, a reorder or an import all
        come here): the entries are few, and a whole replacement cannot leave the order half-changed."""
        with self._tx(write=True) as c:
            self._story_row(c, story_id)
            self._write_lore(c, story_id, book)
            c.execute("UPDATE stories SET updated = ? WHERE id = ?", (self._now(), story_id))
        return self.lore(story_id)

    def _write_lore(self, c: sqlite3.Connection, story_id: int, book: Lorebook) -> None:
        c.execute("DELETE FROM lore WHERE story_id = ?", (story_id,))
        c.executemany(
            "INSERT INTO lore (story_id, position, title, keys, text, enabled, always, extra) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(story_id, i, e.title, json.dumps(list(e.keys), ensure_ascii=False), e.text, int(e.enabled),
              int(e.always), json.dumps(e.extra, ensure_ascii=False)) for i, e in enumerate(book.entries)])
        c.execute("UPDATE stories SET lore_extra = ? WHERE id = ?",
                  (json.dumps(book.extra, ensure_ascii=False), story_id))

    # --- whole trees (the JSON import: json_io.py) -------------------------------------------------------------

    def insert_tree(self, story: Story, passages: list[Passage], bookmarks: list[Bookmark],
                    lore: Lorebook | None = None) -> Story:
        """A new story holding ``passages`` (parents before children; their ids are the file's, remapped
        here), ``bookmarks`` and ``lore``, in one transaction: an import either lands whole or not at all."""
        with self._tx(write=True) as c:
            sid = self._insert_story(c, story.title if story.title_is_set else None, story.model, story.memory,
                                     story.author_note, story.created.isoformat(), story.updated.isoformat())
            if lore is not None:
                self._write_lore(c, sid, lore)
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
            return story_from_row(self._story_row(c, sid))
