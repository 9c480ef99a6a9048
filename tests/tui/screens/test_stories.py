"""The stories screen: open, rename, delete (after asking), start and export stories."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from slmtui.stories.store import StoryStore
from slmtui.stories.export import exports_dir
from slmtui.tui.app import SlmApp
from slmtui.tui.modals import AskScreen, ConfirmScreen
from slmtui.tui.screens.stories import StoriesScreen
from slmtui.tui.screens.writer import WriterScreen

pytestmark = pytest.mark.anyio


def two_stories(store: StoryStore) -> tuple[int, int]:
    older = store.create_story(model="tiny")
    store.add_passage(older.id, parent_id=None, author="user", text="The owl and the pussycat went to sea")
    newer = store.create_story(model="tiny")
    store.add_passage(newer.id, parent_id=None, author="user", text="In a hole in the ground")
    return older.id, newer.id


async def test_open_rename_delete_new_and_export(make_app: Callable[..., SlmApp], store: StoryStore) -> None:
    older, newer = two_stories(store)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        writer = app.screen
        assert isinstance(writer, WriterScreen)
        assert writer.session.story is not None and writer.session.story.id == newer, "the app opens the story touched last"

        await pilot.press("ctrl+o")
        screen = app.screen
        assert isinstance(screen, StoriesScreen)
        assert [s.id for s in screen.stories] == [newer, older]
        # The title defaults to the opening words.
        assert screen.stories[1].title == "The owl and the pussycat went…"

        await pilot.press("down", "r")
        assert isinstance(app.screen, AskScreen)
        await pilot.press(*"Owls at sea", "enter")
        assert store.get_story(older).title == "Owls at sea"

        await pilot.press("m")
        exported = exports_dir() / f"owls-at-sea-{older}.md"
        assert exported.read_text().startswith("# Owls at sea")
        await pilot.press("t")
        assert (exports_dir() / f"owls-at-sea-{older}.txt").read_text() == "The owl and the pussycat went to sea"

        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")  # no: nothing is deleted
        assert len(store.list_stories()) == 2
        await pilot.press("d", "y")
        assert [s.id for s in store.list_stories()] == [newer]

        await pilot.press("enter")  # open the remaining one
        assert app.screen is writer and writer.session.story is not None and writer.session.story.id == newer

        await pilot.press("ctrl+o", "n")  # a new story: an empty page, saved once something is written
        assert app.screen is writer and writer.session.story is None and writer.session.path == []
        writer.set_sampling(writer.session.sampling.__class__(max_new_tokens=3))
        await pilot.press(*"Fresh", "enter")
        assert writer.session.story is not None and writer.session.story.id not in (older, newer)


async def test_deleting_the_open_story_leaves_an_empty_page(make_app: Callable[..., SlmApp], store: StoryStore) -> None:
    _, newer = two_stories(store)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        writer = app.screen
        assert isinstance(writer, WriterScreen)
        await pilot.press("ctrl+o", "d", "y", "escape")
        assert app.screen is writer
        assert writer.session.story is None and writer.story_view.full_text == ""
