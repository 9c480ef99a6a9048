"""The context viewer (slmtui/tui/screens/context_viewer.py): reached by a key and the palette, it shows exactly
what the model reads next, part by part with token counts, and what was cut and why."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tui_helpers import wait_for

from slmtui.stories.lorebook import Lorebook, LoreEntry
from slmtui.stories.store import StoryStore
from slmtui.tui.app import SlmApp
from slmtui.tui.screens.context_viewer import ContextViewerScreen
from slmtui.tui.screens.lorebook import LorebookScreen
from slmtui.tui.screens.writer import WriterScreen
from slmtui.writing.lore import LoreSettings

pytestmark = pytest.mark.anyio

OPENING = "Ann walked down to the mill in the rain, and the Wey ran high beside the lane. " * 2


def world_story(store: StoryStore) -> int:
    """A story whose tail names Ann and the mill (not Tom), with memory, a note and five entries: one off, one
    always on, one named by another entry, one too long for the lore budget."""
    story = store.create_story(model="tiny", title="The mill", memory="Weyford.")
    store.set_author_note(story.id, "Gentle.")
    store.add_passage(story.id, parent_id=None, author="user", text=OPENING)
    store.set_lore(story.id, Lorebook((
        LoreEntry("Ann", ("Ann",), "Ann: a girl."),
        LoreEntry("The mill", ("mill",), "Mill by the weir."),
        LoreEntry("The Wey", ("Wey",), "The Wey is a slow green river that floods in spring."),
        LoreEntry("Season", (), "Autumn.", always=True),
        LoreEntry("Tom", ("Tom",), "Tom, the smith.", enabled=False),
    )))
    return story.id


async def ready(pilot) -> WriterScreen:  # type: ignore[no-untyped-def]
    writer = pilot.app.screen
    assert isinstance(writer, WriterScreen)
    await wait_for(pilot, lambda: writer.session.state == "ready")
    writer.session.lore_settings = LoreSettings(budget_share=0.5)  # room for some lore in 64 tokens
    return writer


def texts(screen: ContextViewerScreen, cls: str) -> list[str]:
    return [str(w.render()) for w in screen.query(f".{cls}")]


async def test_the_viewer_shows_what_the_model_reads_part_by_part(make_app: Callable[..., SlmApp],
                                                                  store: StoryStore) -> None:
    world_story(store)
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        writer = await ready(pilot)
        ctx = writer.session.context()
        assert ctx is not None
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, ContextViewerScreen))
        viewer = app.screen
        assert isinstance(viewer, ContextViewerScreen)
        titles = texts(viewer, "part-title")
        parts = ctx.parts(writer.session.model.tokenizer)  # type: ignore[union-attr]
        assert titles[: len(parts)] == [f"{p.label} · {p.n_tokens} tokens" + (f" · {p.why}" if p.why else "")
                                        for p in parts]
        assert titles[0] == "memory · 9 tokens", "the memory and the line break before the lore"
        assert 'lore “Season” · 8 tokens · always on' in titles
        assert 'lore “Ann” · 13 tokens · key "Ann" in the story' in titles
        assert any(t.startswith("author's note ·") for t in titles) and titles[-1].startswith("left out · ")
        # Each part's own colour: its class names its kind.
        kinds = [w.classes for w in viewer.query(".part-text")]
        assert {"-memory", "-lore", "-story", "-note", "-cut"} <= set().union(*kinds)
        cuts = texts(viewer, "-cut.part-text")
        assert any('lore "The mill" left out: it needs 18 tokens and 2 of the lore budget' in c for c in cuts)
        assert any(c.startswith("story: its first") for c in cuts), "the story's head is out of view"
        assert not any("Tom" in t for t in titles + cuts), "an entry switched off is not in the context"
        assert str(viewer.query_one("#context-summary").render()).startswith(f"tiny reads for its next token: "
                                                                               f"{len(ctx.window)} of 64 tokens")
        await pilot.press("escape")
        assert app.screen is writer


async def test_the_palette_opens_the_viewer_and_the_lorebook(make_app: Callable[..., SlmApp],
                                                             store: StoryStore) -> None:
    world_story(store)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        writer = await ready(pilot)
        titles = {c.title for c in writer.commands()}
        assert {"Lorebook", "What the model reads next (context viewer)"} <= titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"context viewer")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ContextViewerScreen))
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"lorebook")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LorebookScreen))


async def test_the_viewer_without_a_model_says_so(make_app: Callable[..., SlmApp], store: StoryStore) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        writer = await ready(pilot)
        writer.session.model = None  # as while a model loads, or when none could be
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, ContextViewerScreen))
        assert "No model is loaded" in " ".join(texts(app.screen, "context-empty"))  # type: ignore[arg-type]
