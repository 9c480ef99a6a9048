"""The bookmarks dialog (slmtui/tui/screens/bookmarks.py) from the writer: ctrl+b marks, ctrl+l lists every
mark with its place in the tree, Enter jumps (onto another branch too), d forgets a mark and keeps its passage."""

from __future__ import annotations

import pytest
from tree_story import three_branches
from tui_helpers import default_settings, wait_for

from slmtui.stories.store import StoryStore
from slmtui.tui.app import SlmApp
from slmtui.tui.modals import AskScreen
from slmtui.tui.screens.bookmarks import BookmarksScreen
from slmtui.tui.screens.writer import WriterScreen
from slmtui.tui.widgets.prompt_box import PromptBox
from slmtui.writing.records import ActiveModel


async def open_writer(pilot) -> WriterScreen:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, WriterScreen) and pilot.app.screen.session.model)
    writer = pilot.app.screen
    writer.query_one(PromptBox).cursor_blink = False
    return writer


def rows(screen: BookmarksScreen) -> list[str]:
    options = screen.query_one("#bookmarks-list")
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


@pytest.mark.anyio
@pytest.mark.parametrize("size", [(80, 24), (120, 35)])
async def test_mark_list_jump_and_forget_by_keyboard(engine: ActiveModel, store: StoryStore,
                                                     size: tuple[int, int]) -> None:
    ids = three_branches(store)
    app = SlmApp(engine=engine, store=store, settings=default_settings())
    async with app.run_test(size=size) as pilot:
        writer = await open_writer(pilot)
        await pilot.press("ctrl+b")  # mark the passage being read
        await wait_for(pilot, lambda: isinstance(app.screen, AskScreen))
        await pilot.press(*"window", "enter")
        await wait_for(pilot, lambda: len(writer.session.bookmarks) == 3)
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, BookmarksScreen))
        listed = rows(app.screen)
        assert [r.split("\n")[0].split("  ")[0] for r in listed] == ["★ the stairs", "★ storm", "★ window"]
        assert [r.split("\n")[1].strip() for r in listed] == [
            "passage 2, on your path", "passage 3, branch 2/2 after passage 2", "passage 4, on your path"]
        await pilot.press("down", "enter")  # the storm, on the other branch
        await wait_for(pilot, lambda: app.screen is writer)
        assert writer.session.path[-1].id == ids["storm"]
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, BookmarksScreen))
        await pilot.press("d")  # forget "the stairs": the passage stays
        await wait_for(pilot, lambda: len(rows(app.screen)) == 2)
        assert [b.name for b in store.bookmarks(ids["story"])] == ["storm", "window"]
        assert store.get_passage(ids["lamp"]).text
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is writer)
        assert writer.session.path[-1].id == ids["storm"], "Esc jumps nowhere"


@pytest.mark.anyio
async def test_no_bookmarks_says_how_to_make_one(engine: ActiveModel, store: StoryStore) -> None:
    s = store.create_story().id
    store.add_passage(s, parent_id=None, author="user", text="Once")
    app = SlmApp(engine=engine, store=store, settings=default_settings())
    async with app.run_test(size=(80, 24)) as pilot:
        await open_writer(pilot)
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, BookmarksScreen))
        empty = app.screen.query_one("#bookmarks-empty")
        assert empty.display and "ctrl+b" in str(empty.render())
        await pilot.press("d", "enter", "escape")  # nothing to forget or jump to: no error


@pytest.mark.parametrize("size", [(80, 24), (120, 35)])
def test_bookmarks_snapshot(snap_compare, engine: ActiveModel, store: StoryStore, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    three_branches(store)
    app = SlmApp(engine=engine, store=store, settings=default_settings())

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_writer(pilot)
        await pilot.press("ctrl+l")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
