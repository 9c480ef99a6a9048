"""The search dialog (slmtui/tui/screens/search.py), driven as a user drives it from the writer: ctrl+f, type,
Enter jumps to the passage (on any branch) and selects the match; ctrl+f and Enter again go on to the next."""

from __future__ import annotations

import pytest
from tree_story import three_branches
from tui_helpers import default_settings, wait_for

from slmtui.stories.store import StoryStore
from slmtui.tui.app import SlmApp
from slmtui.tui.screens.search import SearchScreen
from slmtui.tui.screens.writer import WriterScreen
from slmtui.tui.widgets.prompt_box import PromptBox
from slmtui.writing.records import ActiveModel


async def open_writer(pilot) -> WriterScreen:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, WriterScreen) and pilot.app.screen.session.model)
    writer = pilot.app.screen
    writer.query_one(PromptBox).cursor_blink = False
    return writer


@pytest.mark.anyio
@pytest.mark.parametrize("size", [(80, 24), (120, 35)])
async def test_search_lists_every_branch_with_its_place_and_enter_jumps_there(
        engine: ActiveModel, store: StoryStore, size: tuple[int, int]) -> None:
    ids = three_branches(store)
    app = SlmApp(engine=engine, store=store, settings=default_settings())
    async with app.run_test(size=size) as pilot:
        writer = await open_writer(pilot)
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen))
        search = app.screen
        await pilot.press(*"LETTER")
        await pilot.pause()
        assert [h.passage_id for h in search.hits] == [ids["lamp"], ids["storm"]]
        assert [h.place.describe() for h in search.hits] == ["passage 2, on your path",
                                                             "passage 3, branch 2/2 after passage 2"]
        assert "2 passages" in str(search.query_one("#search-count").render())
        await pilot.press("down", "down", "enter")  # into the list, the second hit, jump
        await wait_for(pilot, lambda: app.screen is writer)
        assert writer.session.path[-1].id == ids["storm"], "the story reads to the hit on the other branch"
        selected = writer.story_view.text_selection
        assert selected is not None
        got = writer.story_view.get_selection(selected)
        assert got is not None and got[0] == "letter", "the match is selected in the story"
        # Again: the last search is there, and Enter goes on to the next hit (round to the first).
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen))
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is writer)
        assert writer.session.path[-1].id == ids["lamp"]


@pytest.mark.anyio
async def test_a_search_with_no_hit_says_so_and_escape_changes_nothing(engine: ActiveModel, store: StoryStore) -> None:
    ids = three_branches(store)
    app = SlmApp(engine=engine, store=store, settings=default_settings())
    async with app.run_test(size=(80, 24)) as pilot:
        writer = await open_writer(pilot)
        await pilot.press("ctrl+f", *"walrus")
        await pilot.pause()
        assert "nowhere in this story" in str(app.screen.query_one("#search-count").render())
        await pilot.press("enter", "escape")
        await wait_for(pilot, lambda: app.screen is writer)
        assert writer.session.path[-1].id == ids["room"]


@pytest.mark.anyio
async def test_search_is_in_the_palette(engine: ActiveModel, store: StoryStore) -> None:
    three_branches(store)
    app = SlmApp(engine=engine, store=store, settings=default_settings())
    async with app.run_test(size=(80, 24)) as pilot:
        writer = await open_writer(pilot)
        titles = [c.title for c in writer.commands()]
        assert {"Search every branch", "List the bookmarks", "Colour unlikely tokens", "Finish sentences: on"} <= set(titles)


def search_typed(query: str):  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_writer(pilot)
        await pilot.press("ctrl+f", *query)
        await pilot.pause()
        pilot.app.screen.query_one("#search-query").cursor_blink = False
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 35)])
def test_search_snapshot(snap_compare, engine: ActiveModel, store: StoryStore, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    three_branches(store)
    app = SlmApp(engine=engine, store=store, settings=default_settings())
    assert snap_compare(app, terminal_size=size, run_before=search_typed("the"))
