"""StoryStore (slmtui/stories/store.py): the tree of passages on SQLite, its moves, bookmarks and failure modes."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slmtui.core.errors import SlmError
from slmtui.stories.schema import SCHEMA_VERSION
from slmtui.stories.store import StoryStore
from slmtui.stories.store import DamagedStoreError, fresh_path_beside
from slmtui.stories.tokens import pack_token


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StoryStore]:
    s = StoryStore(tmp_path / "stories.db")
    yield s
    s.close()


def test_round_trip(store: StoryStore) -> None:
    story = store.create_story(title="The Door", model="default", memory="Wendy is brave.")
    a = store.add_passage(story.id, parent_id=None, author="user", text="Once upon a time")
    b = store.add_passage(story.id, parent_id=a.id, author="model", text=", a door.", sampling={"temperature": 0.8})
    got = store.get_story(story.id)
    assert (got.title, got.model, got.memory) == ("The Door", "default", "Wendy is brave.")
    assert got.current_passage_id == b.id
    assert store.get_passage(b.id) == b
    assert b.sampling == {"temperature": 0.8} and a.sampling is None
    assert [p.id for p in store.path_to(b.id)] == [a.id, b.id]
    assert store.story_text(story.id) == "Once upon a time, a door."
    assert store.story_text(story.id, a.id) == "Once upon a time"
    assert store.children(a.id) == [b]

    store.set_passage_text(a.id, "Long ago")
    store.append_text(b.id, " It opened.")
    assert store.story_text(story.id) == "Long ago, a door. It opened."
    assert store.set_memory(story.id, "").memory == ""


def test_list_orders_by_last_update_and_delete_cascades(store: StoryStore, tmp_path: Path) -> None:
    first = store.create_story(title="first")
    second = store.create_story(title="second")
    assert [s.id for s in store.list_stories()] == [second.id, first.id]
    p = store.add_passage(first.id, parent_id=None, author="user", text="x")
    assert [s.id for s in store.list_stories()] == [first.id, second.id]
    store.rename_story(second.id, "renamed")
    assert [s.title for s in store.list_stories()] == ["renamed", "first"]

    store.delete_story(first.id)
    assert [s.id for s in store.list_stories()] == [second.id]
    with pytest.raises(SlmError, match="no story"):
        store.get_story(first.id)
    with pytest.raises(SlmError, match="no passage"):
        store.get_passage(p.id)
    with sqlite3.connect(tmp_path / "stories.db") as other:
        assert other.execute("SELECT COUNT(*) FROM passages").fetchone()[0] == 0


def test_title_defaults_to_opening_words(store: StoryStore) -> None:
    story = store.create_story()
    assert store.get_story(story.id).title == "Untitled"
    m = store.add_passage(story.id, parent_id=None, author="model", text="The model speaks first here.")
    opening = "  The wind rose over the grey hills, and then it fell."
    store.add_passage(story.id, parent_id=m.id, author="user", text=opening)
    got = store.get_story(story.id)
    assert got.title == "The wind rose over the grey…" and not got.title_is_set
    assert store.rename_story(story.id, "Storm").title == "Storm"
    assert store.rename_story(story.id, "").title == "The wind rose over the grey…"
    assert store.create_story(title="Given").title_is_set


def test_undo_redo_retry_and_siblings_keep_everything(store: StoryStore) -> None:
    s = store.create_story().id
    u = store.add_passage(s, parent_id=None, author="user", text="U")
    m1 = store.add_passage(s, parent_id=u.id, author="model", text="1")
    m2 = store.add_passage(s, parent_id=u.id, author="model", text="2")  # retry
    m3 = store.add_passage(s, parent_id=u.id, author="model", text="3")  # retry again
    assert [p.id for p in store.siblings(m1.id)] == [m1.id, m2.id, m3.id]
    assert store.get_story(s).current_passage_id == m3.id

    assert store.prev_sibling(s).id == m2.id
    assert store.prev_sibling(s).id == m1.id
    assert store.prev_sibling(s).id == m3.id  # wraps
    assert store.next_sibling(s).id == m1.id  # wraps back
    assert store.story_text(s) == "U1"

    assert store.undo(s).id == u.id
    assert store.redo(s).id == m1.id  # the child seen last, not the newest
    deep = store.add_passage(s, parent_id=m1.id, author="user", text="!")
    store.set_current(s, m2.id)
    assert store.undo(s).id == u.id
    assert store.redo(s).id == m2.id
    store.set_current(s, deep.id)  # jumping marks the whole path: redo from the root retraces it
    assert store.undo(s).id == m1.id and store.undo(s).id == u.id
    assert store.undo(s) is None and store.current_path(s) == [] and store.story_text(s) == ""
    assert store.undo(s) is None  # nothing above the top
    assert [store.redo(s).id for _ in range(4)] == [u.id, m1.id, deep.id, deep.id]  # stays at a leaf

    with sqlite3.connect(store.path) as other:
        assert other.execute("SELECT COUNT(*) FROM passages").fetchone()[0] == 5


def test_passages_of_another_story_are_refused(store: StoryStore) -> None:
    a, b = store.create_story().id, store.create_story().id
    pa = store.add_passage(a, parent_id=None, author="user", text="a")
    with pytest.raises(SlmError, match="not part of story"):
        store.add_passage(b, parent_id=pa.id, author="model", text="b")
    with pytest.raises(SlmError, match="not part of story"):
        store.set_current(b, pa.id)
    with pytest.raises(ValueError):
        store.add_passage(a, parent_id=None, author="narrator", text="x")  # type: ignore[arg-type]


def test_persists_across_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "stories.db"  # parent folders are created
    with StoryStore(path) as store:
        s = store.create_story(model="tiny").id
        p = store.add_passage(s, parent_id=None, author="user", text="Hello")
        store.append_text(p.id, " world")
    with StoryStore(path) as store:
        assert store.story_text(s) == "Hello world"
        assert store.get_story(s).model == "tiny"
        assert store.get_story(s).current_passage_id == p.id


def test_wal_user_version_and_foreign_keys(store: StoryStore) -> None:
    with sqlite3.connect(store.path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_append_text_is_committed_when_it_returns(store: StoryStore) -> None:
    s = store.create_story().id
    p = store.add_passage(s, parent_id=None, author="model", text="")
    other = sqlite3.connect(store.path)
    try:
        for chunk in [" The", " cat", " sat"]:
            store.append_text(p.id, chunk)
            seen = other.execute("SELECT text FROM passages WHERE id = ?", (p.id,)).fetchone()[0]
            assert seen.endswith(chunk)
        assert seen == " The cat sat"
    finally:
        other.close()
    with pytest.raises(SlmError, match="no passage"):
        store.append_text(10_000, "x")


def test_a_worker_thread_can_write(store: StoryStore) -> None:
    import threading

    s = store.create_story().id
    p = store.add_passage(s, parent_id=None, author="model", text="")
    threads = [threading.Thread(target=lambda: [store.append_text(p.id, "x") for _ in range(50)]) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.story_text(s) == "x" * 100


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stories.db"
    path.write_bytes(b"this is not a database, just some words " * 100)
    with pytest.raises(SlmError, match="stories.db"):
        StoryStore(path)
    assert path.read_bytes().startswith(b"this is not")  # left alone


def test_a_damaged_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stories.db"
    with StoryStore(path) as store:
        s = store.create_story().id
        for i in range(200):
            store.add_passage(s, parent_id=None, author="user", text=f"passage {i} " * 20)
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    data[page + 100 : 3 * page] = b"\xff" * (2 * page - 100)  # trash pages 2-3, keep the header
    path.write_bytes(bytes(data))
    with pytest.raises(SlmError, match="stories.db"):
        StoryStore(path)


def _damaged(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "stories.db"
    if kind == "random bytes":
        path.write_bytes(bytes(range(256)) * 64)
    elif kind == "passages dropped":
        with StoryStore(path) as store:
            store.add_passage(store.create_story().id, parent_id=None, author="user", text="Once")
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TABLE passages")
        conn.close()
    elif kind == "a folder":
        path.mkdir()
        (path / "notes.txt").write_text("mine")
    return path


@pytest.mark.parametrize(("kind", "reason"), [("random bytes", "file is not a database"),
                                              ("passages dropped", "the passages table is missing"),
                                              ("a folder", "it is a folder")])


def test_damage_is_found_at_open_and_the_file_left_as_it_was(tmp_path: Path, kind: str, reason: str) -> None:
    path = _damaged(tmp_path, kind)
    before = sorted((p.name, p.read_bytes() if p.is_file() else None) for p in tmp_path.rglob("*"))
    with pytest.raises(DamagedStoreError) as e:
        StoryStore(path)
    assert e.value.exit_code == 2 and reason in e.value.reason and str(path) in str(e.value)
    assert sorted((p.name, p.read_bytes() if p.is_file() else None) for p in tmp_path.rglob("*")) == before


def test_a_fresh_database_goes_beside_the_damaged_one_and_is_reused(tmp_path: Path) -> None:
    damaged = _damaged(tmp_path, "random bytes")
    first = fresh_path_beside(damaged)
    assert first == tmp_path / "stories-2.db" and not first.exists()
    with StoryStore(first) as store:
        store.create_story(title="after the damage")
    assert fresh_path_beside(damaged) == first  # the next start keeps writing there
    first.write_bytes(b"damaged too" * 100)
    assert fresh_path_beside(damaged) == tmp_path / "stories-3.db"
    assert damaged.read_bytes() == bytes(range(256)) * 64


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stories.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 7")
    with pytest.raises(SlmError, match="newer"):
        StoryStore(path)


def test_someone_elses_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stories.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(SlmError, match="not slmtui"):
        StoryStore(path)


@st.composite
def _ops(draw: st.DrawFn) -> list[tuple[str, int]]:
    kinds = st.sampled_from(["add", "retry", "undo", "redo", "next", "prev", "jump", "other"])
    return draw(st.lists(st.tuples(kinds, st.integers(0, 1000)), max_size=40))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_ops())
def test_no_sequence_of_moves_loses_a_passage(ops: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp, StoryStore(Path(tmp) / "stories.db") as store:
        s = store.create_story().id
        other = store.create_story().id
        added: dict[int, str] = {}
        theirs = store.add_passage(other, parent_id=None, author="user", text="theirs").id
        for kind, n in ops:
            current = store.get_story(s).current_passage_id
            if kind == "add":
                p = store.add_passage(s, parent_id=current, author="user" if n % 2 else "model", text=f"<{n}>")
                added[p.id] = p.text
            elif kind == "retry" and current is not None:
                parent = store.get_passage(current).parent_id
                p = store.add_passage(s, parent_id=parent, author="model", text=f"[{n}]")
                added[p.id] = p.text
                assert current in {q.id for q in store.siblings(p.id)}
            elif kind == "undo":
                store.undo(s)
            elif kind == "redo":
                store.redo(s)
            elif kind == "next":
                store.next_sibling(s)
            elif kind == "prev":
                store.prev_sibling(s)
            elif kind == "jump" and added:
                store.set_current(s, sorted(added)[n % len(added)])
            elif kind == "other":
                store.add_passage(other, parent_id=theirs, author="model", text="x")

            with sqlite3.connect(store.path) as db:
                rows = dict(db.execute("SELECT id, text FROM passages WHERE story_id = ?", (s,)).fetchall())
            assert rows == added  # nothing lost, nothing changed, nothing from the other story
            current = store.get_story(s).current_passage_id
            assert current is None or current in added
            path = store.current_path(s)
            assert store.story_text(s) == "".join(added[p.id] for p in path)
            assert all(p.story_id == s for p in path)


def test_passages_is_the_whole_tree_in_sibling_order(store: StoryStore) -> None:
    story = store.create_story()
    root = store.add_passage(story.id, parent_id=None, author="user", text="A")
    first = store.add_passage(story.id, parent_id=root.id, author="model", text="b")
    second = store.add_passage(story.id, parent_id=root.id, author="model", text="c")
    deeper = store.add_passage(story.id, parent_id=first.id, author="user", text="d")
    other = store.create_story()
    store.add_passage(other.id, parent_id=None, author="user", text="elsewhere")
    got = store.passages(story.id)
    assert [p.id for p in got] == [root.id, first.id, second.id, deeper.id]
    with pytest.raises(SlmError):
        store.passages(9999)


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
