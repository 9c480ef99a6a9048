"""The stories database's schema (slmtui/stories/schema.py): a version-1 database migrates to v2, losing nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from slmtui.stories.store import StoryStore

# The schema of stories.db at version 1 as the release before v2 wrote it (commit 054ae8a), copied here so this
# test builds an old database the way that release did, not with today's migrations.
V1_SCHEMA = [
    """CREATE TABLE stories (
        id INTEGER PRIMARY KEY,
        title TEXT,
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        model TEXT,
        memory TEXT NOT NULL DEFAULT '',
        current_passage_id INTEGER REFERENCES passages(id) ON DELETE SET NULL
    )""",
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
        visited INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX passages_story ON passages(story_id)",
    "CREATE INDEX passages_parent ON passages(parent_id)",
    "CREATE INDEX stories_current ON stories(current_passage_id)",
]


T = "2026-01-02T03:04:05.000000+00:00"


def make_v1(path: Path) -> list[tuple[object, ...]]:
    """A version-1 stories.db with two stories, a branch and sampling JSON; returns its passage rows."""
    conn = sqlite3.connect(path)
    for sql in V1_SCHEMA:
        conn.execute(sql)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO stories VALUES (1, 'Old tale', ?, ?, 'default', 'Wendy is brave.', 3)", (T, T))
    conn.execute("INSERT INTO stories VALUES (2, NULL, ?, ?, NULL, '', NULL)", (T, T))
    rows = [
        (1, 1, None, "user", "Once upon a time", None, T, T, 0, 1),
        (2, 1, 1, "model", ", a door.", '{"temperature": 0.8}', T, T, 0, 0),
        (3, 1, 1, "model", ", a dragon.", '{"temperature": 1.1, "seed": 4}', T, T, 1, 1),
        (4, 2, None, "user", "Ünïcode ✎\nline two", None, T, T, 0, 0),
    ]
    conn.executemany("INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    return [r[:6] for r in rows]


def test_a_version_1_database_migrates_and_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "stories.db"
    before = make_v1(db)
    with StoryStore(db) as store:
        assert store.get_story(1).title == "Old tale" and store.get_story(1).memory == "Wendy is brave."
        assert store.get_story(1).current_passage_id == 3 and store.get_story(1).author_note == ""
        assert store.story_text(1) == "Once upon a time, a dragon."
        assert store.get_passage(3).sampling == {"temperature": 1.1, "seed": 4}
        assert store.get_passage(3).model is None and store.get_passage(3).tokens == ""
        assert store.bookmarks(1) == []
        store.set_bookmark(1, 2, "door")  # the new table works on the migrated file
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        after = list(conn.execute("SELECT id, story_id, parent_id, author, text, sampling FROM passages ORDER BY id"))
    assert after == before
