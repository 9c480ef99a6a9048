"""Markdown and text of a story's current branch, and the app's export file (slmtui/stories/export.py): its own
file in <data>/exports is updated on every export, but a link, FIFO or folder found at that name is never
replaced (tests/fs_snapshot.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from slmtui.core.errors import SlmError
from slmtui.stories.export import export_as, export_markdown, export_story, export_text, exports_dir
from slmtui.stories.store import StoryStore
from tests.fs_snapshot import assert_unchanged, snapshot


def test_exports(store: StoryStore) -> None:
    s = store.create_story(title="The *Storm*", model="tiny").id
    u = store.add_passage(s, parent_id=None, author="user", text="It was dark.\n\n# Then ")
    m = store.add_passage(s, parent_id=u.id, author="model", text="the rain came_down.", sampling={"top_k": 40})
    store.add_passage(s, parent_id=m.id, author="model", text=" Lost.")
    store.undo(s)  # the export follows the current path only

    assert export_text(store, s) == "It was dark.\n\n# Then the rain came_down."
    md = export_markdown(store, s)
    assert md.startswith("# The \\*Storm\\*\n")
    assert "model `tiny`" in md and "sampling: k 40" in md
    assert "**It was dark.**\n\n**\\# Then** the rain came\\_down." in md
    assert "Lost" not in md


def test_export_by_format_and_to_the_exports_folder(store: StoryStore) -> None:
    story = store.create_story(title="Owls *at* sea")
    store.add_passage(story.id, parent_id=None, author="user", text="The owl")
    assert export_as(store, story.id, "txt") == "The owl"
    assert export_as(store, story.id, "md") == export_markdown(store, story.id)
    with pytest.raises(SlmError, match="unknown export format"):
        export_as(store, story.id, "pdf")
    path = export_story(store, story.id, "md")
    assert path.name == f"owls-at-sea-{story.id}.md" and path.read_text() == export_markdown(store, story.id)


@pytest.fixture
def one_story(store: StoryStore) -> StoryStore:
    """conftest's store, holding one story of one passage."""
    story = store.create_story(model="tiny")
    store.add_passage(story.id, parent_id=None, author="user", text="Owls at sea")
    return store


def test_exporting_again_updates_the_apps_own_file(one_story: StoryStore) -> None:
    store = one_story
    story = store.list_stories()[0]
    first = export_story(store, story.id, "txt")
    store.add_passage(story.id, parent_id=store.get_story(story.id).current_passage_id, author="model", text=" and cats.")
    assert export_story(store, story.id, "txt") == first
    assert first.read_text() == "Owls at sea and cats."


@pytest.mark.parametrize("kind", ["link", "fifo", "folder"])
def test_a_link_fifo_or_folder_at_the_export_name_is_never_replaced(kind: str, one_story: StoryStore, tmp_path: Path) -> None:
    store = one_story
    story = store.list_stories()[0]
    target = export_story(store, story.id, "md")
    target.unlink()
    if kind == "link":
        (tmp_path / "mine.md").write_text("my own file\n")
        target.symlink_to(tmp_path / "mine.md")
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    before = {root: snapshot(root) for root in (exports_dir(), tmp_path)}
    with pytest.raises(SlmError, match=str(target)):
        export_story(store, story.id, "md")
    for root, snap in before.items():
        assert_unchanged(snap, snapshot(root))
