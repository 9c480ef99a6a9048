"""The stories database's schema (slmtui/stories/schema.py): version-1 and version-2 databases migrate to the
newest version (v3: the lorebook), losing nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from slmtui.stories.lorebook import Lorebook, LoreEntry
from slmtui.stories.schema import SCHEMA_VERSION
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
        assert store.lore(1) == Lorebook() and store.lore(2).entries == ()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        after = list(conn.execute("SELECT id, story_id, parent_id, author, text, sampling FROM passages ORDER BY id"))
    assert after == before


# What the v2 release added (commit fa44af4's _migrate_to_v2), copied for the same reason as V1_SCHEMA.
V2_CHANGES = [
    "ALTER TABLE stories ADD COLUMN author_note TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE passages ADD COLUMN model TEXT",
    "ALTER TABLE passages ADD COLUMN tokens TEXT NOT NULL DEFAULT ''",
    """CREATE TABLE bookmarks (
        id INTEGER PRIMARY KEY,
        story_id INTEGER NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
        passage_id INTEGER NOT NULL REFERENCES passages(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        created TEXT NOT NULL,
        UNIQUE (story_id, name)
    )""",
    "CREATE INDEX bookmarks_passage ON bookmarks(passage_id)",
]
TOKENS = '[0, 5, 11, 0.5, [[11, ", a", 0.5]]]\n'


def make_v2(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """A version-2 stories.db (the v1 one, moved on as the v2 release did, with an author's note, per-passage
    models, tokens and bookmarks); returns every row of its tables."""
    make_v1(path)
    conn = sqlite3.connect(path)
    for sql in V2_CHANGES:
        conn.execute(sql)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("UPDATE stories SET author_note = 'Keep it gentle.' WHERE id = 1")
    conn.execute("UPDATE passages SET model = 'default', tokens = ? WHERE id = 3", (TOKENS,))
    conn.execute("INSERT INTO bookmarks VALUES (1, 1, 3, 'dragon', ?)", (T,))
    conn.execute("INSERT INTO bookmarks VALUES (2, 1, 2, 'door', ?)", (T,))
    conn.commit()
    rows = _rows(conn)
    conn.close()
    return rows


def _rows(conn: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {t: list(conn.execute(f"SELECT * FROM {t} ORDER BY id"))
            for t in ("stories", "passages", "bookmarks")}


def test_a_version_2_database_migrates_and_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "stories.db"
    before = make_v2(db)
    with StoryStore(db) as store:
        story = store.get_story(1)
        assert (story.title, story.memory, story.author_note) == ("Old tale", "Wendy is brave.", "Keep it gentle.")
        assert store.get_passage(3).model == "default" and store.get_passage(3).tokens == TOKENS
        assert [b.name for b in store.bookmarks(1)] == ["dragon", "door"]
        assert store.lore(1).entries == ()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        after = _rows(conn)
    # Every old column of every old row is as it was; the stories gained only lore_extra, empty.
    assert after["passages"] == before["passages"] and after["bookmarks"] == before["bookmarks"]
    assert [r[:-1] for r in after["stories"]] == before["stories"]
    assert {r[-1] for r in after["stories"]} == {"{}"}


def test_lore_written_to_a_migrated_database_reads_back_in_order(tmp_path: Path) -> None:
    db = tmp_path / "stories.db"
    make_v2(db)
    book = Lorebook((LoreEntry("The Wey", ("Wey", "/river/i"), "The Wey runs past the mill."),
                     LoreEntry("Ann", ("Ann",), "Ann is the miller's daughter.", enabled=False, extra={"color": [1]}),
                     LoreEntry("Season", (), "It is late autumn.", always=True)), {"by": "hand"})
    with StoryStore(db) as store:
        assert store.set_lore(1, book) == book
    with StoryStore(db) as store:  # reopened: nothing to migrate, the same book
        assert store.lore(1) == book and store.lore(1).extra == {"by": "hand"}
        assert [e.extra for e in store.lore(1).entries] == [{}, {"color": [1]}, {}]
        store.delete_story(1)
    with sqlite3.connect(db) as conn:  # the entries went with their story
        assert conn.execute("SELECT COUNT(*) FROM lore").fetchone()[0] == 0
