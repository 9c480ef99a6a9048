"""How the lorebook and the context viewer look, at 80x24 and 120x35: a story with five entries (one off, one
always on, one left out for the budget), memory and an author's note, on the tiny model. Deterministic: the
story and its lore are written into the database by the test; no sampling."""

from __future__ import annotations

import pytest
from test_context_viewer import world_story
from tui_helpers import default_settings, wait_for

from slmtui.stories.store import StoryStore
from slmtui.tui.app import SlmApp
from slmtui.tui.screens.context_viewer import ContextViewerScreen
from slmtui.tui.screens.lorebook import LorebookScreen
from slmtui.tui.screens.writer import WriterScreen
from slmtui.writing.lore import LoreSettings
from slmtui.writing.records import ActiveModel


def open_with(key: str, screen: type) -> object:
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        writer = pilot.app.screen
        assert isinstance(writer, WriterScreen)
        await wait_for(pilot, lambda: writer.session.state == "ready")
        writer.session.lore_settings = LoreSettings(budget_share=0.5)
        await pilot.press(key)
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, screen))
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 35)])
def test_lorebook(snap_compare, engine: ActiveModel, store: StoryStore, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    world_story(store)
    app = SlmApp(engine=engine, store=store, settings=default_settings())
    assert snap_compare(app, terminal_size=size, run_before=open_with("f7", LorebookScreen))


@pytest.mark.parametrize("size", [(80, 24), (120, 35)])
def test_context_viewer(snap_compare, engine: ActiveModel, store: StoryStore, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    world_story(store)
    app = SlmApp(engine=engine, store=store, settings=default_settings())
    assert snap_compare(app, terminal_size=size, run_before=open_with("f8", ContextViewerScreen))
