"""Schema v2 (a v1 database migrates, losing nothing) and the JSON tree: export -> import gives the same tree."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from slmtui.cli import main
from slmtui.core import paths
from slmtui.stories import StoryStore, pack_token, unpack_tokens
from slmtui.story_json import export_json

# The schema of stories.db at version 1, copied from slmtui/stories.py at commit 054ae8a (the release before
# v2), so this test builds an old database the way the old code did, not with today's code.
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


def _tree(store: StoryStore, story_id: int) -> object:
    """The tree by shape and content, without ids or times: what must survive a round trip."""
    passages = store.passages(story_id)
    index = {p.id: i for i, p in enumerate(passages)}
    story = store.get_story(story_id)
    return (
        story.title, story.model, story.memory, story.author_note,
        index.get(story.current_passage_id),  # type: ignore[arg-type]
        [(index.get(p.parent_id), p.author, p.text, p.sampling, p.model, p.position, unpack_tokens(p.tokens),
          p.created) for p in passages],
        [(b.name, index[b.passage_id]) for b in store.bookmarks(story_id)],
    )


def _sample_story(store: StoryStore) -> int:
    story = store.create_story(title="Loom", model="default", memory="Wendy is brave.")
    store.set_author_note(story.id, "Style: terse.")
    a = store.add_passage(story.id, parent_id=None, author="user", text="Once")
    tokens = pack_token(0, 5, 11, 0.5, [(11, " upon", 0.5), (12, " more", 0.25)]) + pack_token(5, 7, 13, 0.9, [])
    b = store.add_passage(story.id, parent_id=a.id, author="model", text=" upon a", sampling={"temperature": 0.7},
                          model="default", tokens=tokens)
    store.add_passage(story.id, parent_id=a.id, author="model", text=" there", model="other")
    store.add_passage(story.id, parent_id=b.id, author="user", text=" time \"quoted\" ✎")
    store.set_current(story.id, b.id)
    store.set_bookmark(story.id, b.id, "the door")
    return story.id


def test_json_export_then_import_gives_the_same_tree(store: StoryStore, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    sid = _sample_story(store)
    out = tmp_path / "tree.json"
    assert main(["stories", "export", str(sid), "--format", "json", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["format"] == "slmtui-story" and doc["version"] == 1 and len(doc["passages"]) == 4
    assert main(["stories", "import", str(out)]) == 0
    assert "imported story" in capsys.readouterr().out
    new = max(s.id for s in store.list_stories())
    assert new != sid
    assert _tree(store, new) == _tree(store, sid)
    assert export_json(store, new).count('"text"') == export_json(store, sid).count('"text"')


@pytest.mark.parametrize("content, words", [
    ("{not json", "not JSON"),
    ('{"format": "other"}', "format"),
    ('{"format": "slmtui-story", "version": 99, "story": {}, "passages": []}', "version"),
    ('{"format": "slmtui-story", "version": 1, "story": {}, "passages": [{"id": 2, "parent": 1, "author": "user", '
     '"text": "x"}]}', "before its parent"),
    ('{"format": "slmtui-story", "version": 1, "story": {}, "passages": [{"id": 1, "parent": null, '
     '"author": "robot", "text": "x"}]}', "author"),
    ('{"format": "slmtui-story", "version": 1, "story": {}}', "missing"),
])
def test_bad_json_is_one_line_exit_2_and_writes_nothing(content: str, words: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main(["stories", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and words in err and "Traceback" not in err
    assert not paths.stories_db().exists()  # not even an empty database was made


def test_bad_json_into_an_existing_database_adds_nothing(store: StoryStore, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    sid = _sample_story(store)
    bad = tmp_path / "bad.json"
    doc = json.loads(export_json(store, sid))
    doc["bookmarks"].append({"name": "nowhere", "passage": 999})
    bad.write_text(json.dumps(doc))
    assert main(["stories", "import", str(bad)]) == 2
    assert [s.id for s in store.list_stories()] == [sid]


def test_edit_keeps_the_original_as_a_sibling(store: StoryStore) -> None:
    story = store.create_story()
    a = store.add_passage(story.id, parent_id=None, author="user", text="Once")
    b = store.add_passage(story.id, parent_id=a.id, author="model", text=" a door", tokens=pack_token(0, 2, 1, 1.0, []))
    c = store.add_passage(story.id, parent_id=b.id, author="user", text=" opened")
    edited = store.edit_passage(b.id, " a gate")
    assert [p.text for p in store.siblings(b.id)] == [" a door", " a gate"]
    assert store.get_passage(b.id).tokens and not edited.tokens  # the original keeps its tokens
    assert store.children(b.id) == [store.get_passage(c.id)]
    assert store.story_text(story.id) == "Once a gate"


def test_bookmarks_move_by_name_and_go_with_their_passage(store: StoryStore) -> None:
    story = store.create_story()
    a = store.add_passage(story.id, parent_id=None, author="user", text="Once")
    b = store.add_passage(story.id, parent_id=a.id, author="model", text=" more")
    store.set_bookmark(story.id, a.id, "start")
    store.set_bookmark(story.id, b.id, "start")
    assert [(x.name, x.passage_id) for x in store.bookmarks(story.id)] == [("start", b.id)]
    store.delete_story(story.id)
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM bookmarks").fetchone()[0] == 0
