"""The stories database's schema: its migrations, one per version, and the tables each version has."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

# --- schema -------------------------------------------------------------------------------------------------------
# MIGRATIONS[v] moves a database from version v to v + 1; SCHEMA_VERSION is how many there are. To add v2, append
# a function: each runs in its own transaction together with the user_version bump, so a crash leaves v or v + 1.


def _migrate_to_v1(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE stories (
            id INTEGER PRIMARY KEY,
            title TEXT,  -- NULL: none given; shown as the opening words of the first user passage
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            model TEXT,
            memory TEXT NOT NULL DEFAULT '',
            current_passage_id INTEGER REFERENCES passages(id) ON DELETE SET NULL
        )"""
    )
    conn.execute(
        """CREATE TABLE passages (
            id INTEGER PRIMARY KEY,
            story_id INTEGER NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
            parent_id INTEGER REFERENCES passages(id) ON DELETE CASCADE,
            author TEXT NOT NULL CHECK (author IN ('user', 'model')),
            text TEXT NOT NULL DEFAULT '',
            sampling TEXT,  -- JSON
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            position INTEGER NOT NULL,
            visited INTEGER NOT NULL DEFAULT 0  -- per-story counter: redo follows the child seen last
        )"""
    )
    conn.execute("CREATE INDEX passages_story ON passages(story_id)")
    conn.execute("CREATE INDEX passages_parent ON passages(parent_id)")
    conn.execute("CREATE INDEX stories_current ON stories(current_passage_id)")


def _migrate_to_v2(conn: sqlite3.Connection) -> None:
    """Per-passage model and tokens, the author's note, bookmarks. Only adds: every v1 row stays as it was."""
    conn.execute("ALTER TABLE stories ADD COLUMN author_note TEXT NOT NULL DEFAULT ''")
    conn.execute("ALTER TABLE passages ADD COLUMN model TEXT")
    # One JSON line per token the model wrote (pack_token): appended as the text streams in, with the text.
    conn.execute("ALTER TABLE passages ADD COLUMN tokens TEXT NOT NULL DEFAULT ''")
    conn.execute(
        """CREATE TABLE bookmarks (
            id INTEGER PRIMARY KEY,
            story_id INTEGER NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
            passage_id INTEGER NOT NULL REFERENCES passages(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            created TEXT NOT NULL,
            UNIQUE (story_id, name)
        )"""
    )
    conn.execute("CREATE INDEX bookmarks_passage ON bookmarks(passage_id)")


def _migrate_to_v3(conn: sqlite3.Connection) -> None:
    """The lorebook: each story's lore entries, in the writer's order (the order decides who gets the budget
    first: writing/lore.py). Only adds: every v2 row stays as it was, and a story without entries has none."""
    conn.execute(
        """CREATE TABLE lore (
            id INTEGER PRIMARY KEY,
            story_id INTEGER NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,  -- 0, 1, 2... within the story: the lorebook's order
            title TEXT NOT NULL,
            keys TEXT NOT NULL DEFAULT '[]',  -- JSON list of strings, as written
            text TEXT NOT NULL DEFAULT '',
            enabled INTEGER NOT NULL DEFAULT 1,
            always INTEGER NOT NULL DEFAULT 0,
            extra TEXT NOT NULL DEFAULT '{}',  -- JSON: the entry's fields this version does not know, kept
            UNIQUE (story_id, position)
        )"""
    )
    # The lorebook's own unknown top-level fields (a lore file from a newer slmtui), kept for its export.
    conn.execute("ALTER TABLE stories ADD COLUMN lore_extra TEXT NOT NULL DEFAULT '{}'")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_to_v1, _migrate_to_v2, _migrate_to_v3]
SCHEMA_VERSION = len(MIGRATIONS)
TABLES_AT = {1: {"stories", "passages"}, 2: {"stories", "passages", "bookmarks"},
             3: {"stories", "passages", "bookmarks", "lore"}}
"""The tables each schema version has: one missing means the file is damaged."""
OWN_TABLES = TABLES_AT[SCHEMA_VERSION]
