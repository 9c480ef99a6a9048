"""The lorebook screen (slmtui/tui/screens/lorebook.py): add, edit, switch off, reorder and delete entries by
keyboard, import and export a lore file; the writer's meter counts the lore and the story marks its keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from tui_helpers import wait_for

from slmtui.stories.lore_json import write_lore_file
from slmtui.stories.lorebook import Lorebook, LoreEntry
from slmtui.stories.store import StoryStore
from slmtui.tui.app import SlmApp
from slmtui.tui.modals import AskScreen, ConfirmScreen
from slmtui.tui.screens.lorebook import LorebookScreen, LoreEntryScreen, split_keys
from slmtui.tui.screens.writer import WriterScreen
from slmtui.tui.widgets.context_meter import ContextMeter
from slmtui.writing.lore import LoreSettings

pytestmark = pytest.mark.anyio

STORY = "Ann walked down to the mill in the rain."


def a_story(store: StoryStore) -> int:
    story = store.create_story(model="tiny", title="The mill")
    store.add_passage(story.id, parent_id=None, author="user", text=STORY)
    return story.id


async def open_lorebook(pilot, app: SlmApp) -> LorebookScreen:  # type: ignore[no-untyped-def]
    writer = app.screen
    assert isinstance(writer, WriterScreen)
    await wait_for(pilot, lambda: writer.session.state == "ready")
    writer.session.lore_settings = LoreSettings(budget_share=0.5)  # the tiny model's 64 tokens: room for two
    await pilot.press("f7")
    await wait_for(pilot, lambda: isinstance(app.screen, LorebookScreen))
    assert isinstance(app.screen, LorebookScreen)
    return app.screen


async def type_entry(pilot, title: str, keys: str, text: str) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(pilot.app.screen, LoreEntryScreen)
    await pilot.press(*title, "tab", *keys, "tab", *text, "ctrl+s")
    await pilot.pause()


def test_split_keys_keeps_a_regexs_commas() -> None:
    assert split_keys("Ann, the miller's daughter ,, /a{1,3}b/i, mill") == (
        "Ann", "the miller's daughter", "/a{1,3}b/i", "mill")
    assert split_keys("") == ()


async def test_add_edit_switch_off_move_and_delete_by_keyboard(make_app: Callable[..., SlmApp],
                                                               store: StoryStore) -> None:
    sid = a_story(store)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_lorebook(pilot, app)
        session = screen.session
        assert "No lore yet" in str(screen.query_one("#lore-empty").render())

        await pilot.press("a")
        await type_entry(pilot, "Ann", "Ann, the miller's daughter", "Ann is quick.")
        await pilot.press("a")
        await type_entry(pilot, "Mill", "mill", "Old mill.")
        assert [e.title for e in store.lore(sid).entries] == ["Ann", "Mill"], "saved with the story as it happens"
        assert store.lore(sid).entries[0].keys == ("Ann", "the miller's daughter")
        ctx = session.context()
        assert ctx is not None and [e.entry.title for e in ctx.lore.inserted] == ["Ann", "Mill"]
        table = screen.query_one("#lore-table")
        assert table.get_row_at(0)[4] == 'in · "Ann" in the story'  # type: ignore[attr-defined]

        # A bad key is refused in the dialog, which says why and stays open; nothing is saved.
        await pilot.press("a")
        await type_entry(pilot, "All", "/.*/", "x")
        assert isinstance(app.screen, LoreEntryScreen)
        assert "matches an empty string" in str(app.screen.query_one("#lore-problem").render())
        await pilot.press("escape")
        assert len(store.lore(sid).entries) == 2

        # Edit the second entry (Enter on its row), switch it off, move it up, then delete the first.
        await pilot.press("down", "enter")
        assert isinstance(app.screen, LoreEntryScreen)
        await pilot.press("tab", "tab", "end", *" It creaks.", "ctrl+s")
        await pilot.pause()
        assert store.lore(sid).entries[1].text == "Old mill. It creaks."
        await pilot.press("space")
        assert store.lore(sid).entries[1].enabled is False
        assert table.get_row_at(1)[4] == "switched off"  # type: ignore[attr-defined]
        await pilot.press("w")
        assert store.lore(sid).entries[1].always is True
        await pilot.press("shift+up")
        assert [e.title for e in store.lore(sid).entries] == ["Mill", "Ann"]
        await pilot.press("down", "d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        assert [e.title for e in store.lore(sid).entries] == ["Mill"]

        await pilot.press("escape")
        assert isinstance(app.screen, WriterScreen)


async def test_import_and_export_a_lore_file(make_app: Callable[..., SlmApp], store: StoryStore,
                                             tmp_path: Path) -> None:
    sid = a_story(store)
    world = tmp_path / "world.json"
    write_lore_file(world, Lorebook((LoreEntry("Ann", ("Ann",), "Ann is quick.", extra={"colour": "red"}),
                                     LoreEntry("Wey", ("Wey",), "A river."))))
    bad = tmp_path / "bad.json"
    bad.write_text('{"entries": [{"title": "X", "keys": ["/(/"]}]}')
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_lorebook(pilot, app)
        await pilot.press("i")
        assert isinstance(app.screen, AskScreen)
        await pilot.press(*str(bad), "enter")
        await pilot.pause()
        assert store.lore(sid).entries == () and isinstance(app.screen, LorebookScreen), "a bad file: nothing"
        await pilot.press("i", *str(world), "enter")
        await pilot.pause()
        assert [e.title for e in store.lore(sid).entries] == ["Ann", "Wey"]
        assert store.lore(sid).entries[0].extra == {"colour": "red"}

        out = tmp_path / "out.json"
        await pilot.press("x")
        assert isinstance(app.screen, AskScreen)
        app.screen.query_one("#answer").value = str(out)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        assert json.loads(out.read_text()) == json.loads(world.read_text()), "the same world, unknown fields kept"
        before = out.read_text()
        await pilot.press("x")
        app.screen.query_one("#answer").value = str(out)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen), "an existing file is replaced only after asking"
        await pilot.press("escape")
        assert out.read_text() == before
        assert isinstance(screen, LorebookScreen)


async def test_the_meter_counts_lore_and_the_story_marks_its_keys(make_app: Callable[..., SlmApp],
                                                                 store: StoryStore) -> None:
    sid = a_story(store)
    store.set_lore(sid, Lorebook((LoreEntry("Ann", ("Ann",), "Ann is quick."),
                                  LoreEntry("Wey", ("Wey",), "A river."))))
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        writer = app.screen
        assert isinstance(writer, WriterScreen)
        await wait_for(pilot, lambda: writer.session.state == "ready")
        await pilot.pause()
        meter = writer.query_one(ContextMeter)
        ctx = writer.session.context()
        assert ctx is not None and [e.entry.title for e in ctx.lore.inserted] == ["Ann"], "the Wey is not named"
        assert meter.window is not None and meter.window.lore_tokens == ctx.lore_tokens == len("Ann is quick.\n")
        assert f"+ {ctx.lore_tokens} lore" in str(meter.render())
        assert writer.story_view.lore_spans == ((0, 3),), "Ann's key, where the story names her"
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, LorebookScreen))
        await pilot.press("space")  # Ann switched off: no lore, no mark
        await pilot.press("escape")
        await pilot.pause()
        assert meter.window is not None and meter.window.lore_tokens == 0 and writer.story_view.lore_spans == ()
