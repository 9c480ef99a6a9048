"""A stories.db damaged in the ways a user's can be: bytes that are no database, a table gone, a folder in its place.

Shared by the bad-input table (the CLI refuses it) and the app's start-up tests (the app keeps it and offers a
fresh one beside it).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from slmtui.stories.store import StoryStore

DAMAGE = ("random bytes", "passages dropped", "a folder")


def damage_stories_db(db: Path, kind: str) -> Path:
    """Make ``db`` damaged in the way ``kind`` (one of DAMAGE) names; returns ``db``."""
    db.parent.mkdir(parents=True, exist_ok=True)
    if kind == "random bytes":
        db.write_bytes(bytes(range(256)) * 40)
    elif kind == "passages dropped":
        with StoryStore(db) as store:
            store.add_passage(store.create_story().id, parent_id=None, author="user", text="Once upon a time")
        conn = sqlite3.connect(db)
        conn.execute("DROP TABLE passages")
        conn.commit()
        conn.close()
    elif kind == "a folder":
        db.mkdir()
        (db / "notes.txt").write_text("not a database")
    else:
        raise ValueError(f"unknown damage {kind!r}; one of {DAMAGE}")
    return db
