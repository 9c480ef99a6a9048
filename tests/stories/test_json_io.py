"""The whole story tree as JSON (slmtui/stories/json_io.py): export -> import gives the same tree, and a bad file
is one line, exit 2, and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slmtui.cli import main
from slmtui.core import paths
from slmtui.stories.json_io import export_json
from slmtui.stories.lorebook import Lorebook, LoreEntry
from slmtui.stories.store import StoryStore
from slmtui.stories.tokens import pack_token, unpack_tokens


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


WORLD = Lorebook((
    LoreEntry("Ann", ("Ann", "the miller's daughter"), "Ann is the miller's daughter; she fears the Wey.",
              extra={"colour": "amber", "notes": {"age": 17, "tags": ["kin", None, 1.5]}}),
    LoreEntry("The mill", ("mill", "/mill(race|pond)/i"), "The mill stands where the Wey bends."),
    LoreEntry("The Wey", ("Wey",), "The Wey floods every spring. ✎ \"quoted\"", enabled=False),
    LoreEntry("Season", (), "It is late autumn.", always=True),
), {"world": "Weyford", "made_by": {"tool": "hand"}})


def test_a_story_with_lore_round_trips_exactly(store: StoryStore, tmp_path: Path) -> None:
    sid = _sample_story(store)
    store.set_lore(sid, WORLD)
    out = tmp_path / "tree.json"
    assert main(["stories", "export", str(sid), "--format", "json", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [e["title"] for e in doc["lore"]["entries"]] == ["Ann", "The mill", "The Wey", "Season"]
    assert main(["stories", "import", str(out)]) == 0
    new = max(s.id for s in store.list_stories())
    assert store.lore(new) == WORLD  # every entry, in order, switches and unknown fields included
    assert store.lore(new).extra == WORLD.extra and store.lore(new).entries[0].extra == WORLD.entries[0].extra
    again = json.loads(export_json(store, new))
    assert again["lore"] == doc["lore"] and _tree(store, new) == _tree(store, sid)


def test_a_story_file_without_lore_imports_with_none(store: StoryStore, tmp_path: Path) -> None:
    sid = _sample_story(store)
    doc = json.loads(export_json(store, sid))
    del doc["lore"]  # as files written before the lorebook are
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc))
    assert main(["stories", "import", str(old)]) == 0
    assert store.lore(max(s.id for s in store.list_stories())) == Lorebook()


def test_bad_lore_in_a_story_file_is_one_line_and_writes_nothing(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "slmtui-story", "version": 1, "story": {}, "passages": [],
                               "lore": {"entries": [{"title": "All", "keys": ["/.*/"]}]}}))
    assert main(["stories", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lore.entries[0]" in err and "everywhere" in err
    assert not paths.stories_db().exists()


def _refuse(name: str) -> None:
    raise ValueError(f"{name} in strict JSON")


def test_an_export_is_strict_json_even_with_non_finite_numbers(store: StoryStore, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Before: a NaN probability or an infinite sampling value was written as NaN/Infinity (issue 23, item 9)."""
    from slmtui.stories.tokens import pack_token

    story = store.create_story(title="odd numbers")
    store.add_passage(story.id, parent_id=None, author="model", text="Hi", sampling={"temperature": float("inf")},
                      tokens=pack_token(0, 2, 5, float("nan"), [(6, "Ho", float("nan"))]))
    text = export_json(store, story.id)
    doc = json.loads(text, parse_constant=_refuse)  # JSON.parse, jq and serde read it
    assert doc["passages"][0]["sampling"] == {"temperature": None}
    assert doc["passages"][0]["tokens"][0][3] is None
    again = tmp_path / "again.json"
    again.write_text(text)
    assert main(["stories", "import", str(again)]) == 0, capsys.readouterr().err
