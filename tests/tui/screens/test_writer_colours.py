"""Probability colours in the writer (f3; slmtui/tui/widgets/story_view.py draws them): a token the model gave
less than WARM_BELOW is warm, under HOT_BELOW hot, from the probabilities stored with a passage, so a story
reopened later keeps its colours; and how the writer looks with them on."""

from __future__ import annotations

from pathlib import Path

import pytest
from tree_story import LAMP, PROBS, three_branches
from tui_helpers import default_settings, wait_for

from slmtui.stories.store import StoryStore
from slmtui.tui.app import SlmApp
from slmtui.tui.screens.writer import WriterScreen
from slmtui.tui.widgets.prompt_box import PromptBox
from slmtui.tui.widgets.story_view import HOT_BELOW, WARM_BELOW, StoryView
from slmtui.writing.records import ActiveModel


def drawn_colours(view: StoryView) -> dict[int, object]:
    """Offset in the story's text -> the foreground colour it is drawn in, for every character on a line."""
    out: dict[int, object] = {}
    assert view.scroll_y == 0 and len(view._lines) <= view.scrollable_content_region.height, "all in view"
    for y, (a, b) in enumerate(view._lines):
        offset = a
        for seg in view.render_line(y):
            for _ in seg.text:
                if offset < b:
                    out[offset] = seg.style.color if seg.style else None
                offset += 1
    return out


def token_colours(view: StoryView, passage_id: int) -> list[tuple[float, set[object]]]:
    """Each stored token of a passage: its probability and the colours its letters are drawn in."""
    base, drawn = view.passage_start(passage_id), drawn_colours(view)
    assert base is not None
    return [(m.prob, {drawn[base + i] for i in range(m.start, m.end) if base + i in drawn
                      and not view.full_text[base + i].isspace()}) for m in view.tokens[passage_id]]


@pytest.mark.anyio
async def test_unlikely_tokens_of_a_reopened_story_are_warm(engine: ActiveModel, tmp_path: Path) -> None:
    db = tmp_path / "stories.db"
    with StoryStore(db) as store:
        three_branches(store)
    with StoryStore(db) as store:  # another session: only what stories.db kept
        app = SlmApp(engine=engine, store=store, settings=default_settings())
        async with app.run_test(size=(200, 60)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, WriterScreen) and app.screen.session.model)
            writer = app.screen
            view = writer.story_view
            await pilot.press("f3")
            await pilot.pause()
            assert view.prob_colours
            warm = view.get_component_rich_style("story-view--warm").color
            hot = view.get_component_rich_style("story-view--hot").color
            lamp = writer.session.path[1].id
            tokens = token_colours(view, lamp)
            assert len(tokens) == len(LAMP.split()) and {p for p, _ in tokens} == set(PROBS)
            by_kind: dict[str, set[object]] = {"hot": set(), "warm": set(), "likely": set()}
            for prob, colours in tokens:
                by_kind["hot" if prob < HOT_BELOW else "warm" if prob < WARM_BELOW else "likely"] |= colours
            assert by_kind["hot"] == {hot} and by_kind["warm"] == {warm}
            (likely,) = by_kind["likely"]  # the model's own colour, one for all
            assert likely not in (warm, hot) and warm != hot
            await pilot.press("f3")  # off: the model's colour again
            await pilot.pause()
            assert all(colours == {likely} for _, colours in token_colours(view, lamp))


@pytest.mark.parametrize("size", [(80, 24), (120, 35)])
def test_writer_with_colours_snapshot(snap_compare, engine: ActiveModel, store: StoryStore, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    three_branches(store)
    app = SlmApp(engine=engine, store=store, settings=default_settings())

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, WriterScreen) and pilot.app.screen.session.model)
        pilot.app.screen.query_one(PromptBox).cursor_blink = False
        await pilot.press("f3")
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.anyio
async def test_f3_is_remembered_in_config_toml_and_the_next_start_opens_with_colours(
        engine: ActiveModel, store: StoryStore) -> None:
    from slmtui.core import paths
    from slmtui.settings import load_settings

    app = SlmApp(engine=engine, store=store, settings=load_settings(paths.config_file()))
    async with app.run_test(size=(120, 35)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WriterScreen))
        assert not app.screen.story_view.prob_colours
        await pilot.press("f3")
        await wait_for(pilot, lambda: app.settings.prob_colours)
    assert load_settings(paths.config_file()).settings.prob_colours is True
    again = SlmApp(engine=engine, store=store, settings=load_settings(paths.config_file()))
    async with again.run_test(size=(120, 35)) as pilot:
        await wait_for(pilot, lambda: isinstance(again.screen, WriterScreen))
        assert again.screen.story_view.prob_colours, "the story opens as it was left"
        await pilot.press("f3")
        await wait_for(pilot, lambda: not again.settings.prob_colours)
    assert load_settings(paths.config_file()).settings.prob_colours is False
