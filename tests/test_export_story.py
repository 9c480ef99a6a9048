"""The app's export (stories screen and writer): its own file in <data>/exports is updated on every export,
but a link, FIFO or folder found at that name is never replaced (tests/fs_snapshot.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from slmtui.core.errors import SlmError
from slmtui.stories import StoryStore
from slmtui.stories import export_story, exports_dir
from tests.fs_snapshot import assert_unchanged, snapshot


@pytest.fixture
def store(store: StoryStore) -> StoryStore:
    """conftest's store, holding one story of one passage."""
    story = store.create_story(model="tiny")
    store.add_passage(story.id, parent_id=None, author="user", text="Owls at sea")
    return store


def test_exporting_again_updates_the_apps_own_file(store: StoryStore) -> None:
    story = store.list_stories()[0]
    first = export_story(store, story.id, "txt")
    store.add_passage(story.id, parent_id=store.get_story(story.id).current_passage_id, author="model", text=" and cats.")
    assert export_story(store, story.id, "txt") == first
    assert first.read_text() == "Owls at sea and cats."


@pytest.mark.parametrize("kind", ["link", "fifo", "folder"])
def test_a_link_fifo_or_folder_at_the_export_name_is_never_replaced(kind: str, store: StoryStore, tmp_path: Path) -> None:
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
