"""How the stories screen looks at 80x24 and 120x35: with no story written yet, and with a few (issue 24)."""

from __future__ import annotations

import pytest

from slmtui.stories.store import StoryStore
from slmtui.tui.app import SlmApp
from slmtui.writing.records import ActiveModel

from test_writer_snapshots import settle, write_story
from tui_helpers import default_settings

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 35)], ids=["80x24", "120x35"])


@SIZES
def test_stories_screen_empty(snap_compare, engine: ActiveModel, store: StoryStore,  # type: ignore[no-untyped-def]
                              size: tuple[int, int]) -> None:
    app = SlmApp(engine=engine, store=store, settings=default_settings())
    assert snap_compare(app, terminal_size=size, run_before=settle, press=["ctrl+o"])


@SIZES
def test_stories_screen_with_stories(snap_compare, engine: ActiveModel, store: StoryStore,  # type: ignore[no-untyped-def]
                                     size: tuple[int, int]) -> None:
    last = write_story(store)
    for title in ("An empty page", "The clockmaker's daughter, and what she found in the attic of the old house"):
        store.create_story(title=title)
    store.set_current(store.get_passage(last).story_id, last)
    app = SlmApp(engine=engine, store=store, settings=default_settings())
    assert snap_compare(app, terminal_size=size, run_before=settle, press=["ctrl+o"])
