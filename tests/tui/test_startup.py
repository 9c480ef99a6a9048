"""The app starts whatever it finds: a damaged stories.db is kept untouched and a fresh one offered beside it;
a model that fails to load, for any reason, is said on the screen (never "loading model…" forever)."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w
import tomllib
from textual.widgets import Label

from slmtui.engine import paths
from slmtui.stories import StoryStore
from slmtui.tui.app import SlmApp
from slmtui.tui.modals import ConfirmScreen
from slmtui.tui.screens.writer import WriterScreen
from slmtui.writing.records import ActiveModel
from tests.fs_snapshot import snapshot
from tests.stories_damage import DAMAGE, damage_stories_db
from tui_helpers import default_settings, wait_for

pytestmark = pytest.mark.anyio


def damage(kind: str) -> Path:
    return damage_stories_db(paths.stories_db(), kind)


@pytest.mark.parametrize("kind", DAMAGE)
async def test_a_damaged_stories_db_is_kept_and_a_fresh_one_offered_beside_it(engine: ActiveModel, kind: str) -> None:
    db = damage(kind)
    before = snapshot(db.parent)
    app = SlmApp(engine=engine, settings=default_settings())
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = str(app.screen.query_one(".dialog-question", Label).render())
        assert str(db) in question and "damaged" in question and "stories-2.db" in question
        assert snapshot(db.parent) == before  # asking changes nothing
        await pilot.click("#yes")
        await wait_for(pilot, lambda: isinstance(app.screen, WriterScreen))
        assert app.store.path == db.parent / "stories-2.db"
        story = app.store.create_story(title="after the damage")
    assert app.return_code in (None, 0)
    after = snapshot(db.parent)
    assert {k: v for k, v in after.items() if not k.startswith("stories-2.db")} == before
    with StoryStore(db.parent / "stories-2.db") as fresh:
        assert [s.title for s in fresh.list_stories()] == [story.title]


async def test_declining_the_fresh_database_quits_with_the_reason(engine: ActiveModel) -> None:
    db = damage("random bytes")
    before = snapshot(db.parent)
    app = SlmApp(engine=engine, settings=default_settings())
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.click("#no")
        await wait_for(pilot, lambda: app.return_code is not None)
    assert app.return_code == 2
    assert app.startup_error is not None and str(db) in app.startup_error and "damaged" in app.startup_error
    assert snapshot(db.parent) == before


def _broken_model(tiny_model_dir: Path, **model: object) -> Path:
    meta = tomllib.loads((tiny_model_dir / "model.toml").read_text())
    meta["model"].update(model)
    (tiny_model_dir / "model.toml").write_text(tomli_w.dumps(meta))
    return tiny_model_dir


@pytest.mark.parametrize("fault", ["too large for memory", "an unexpected exception"])
async def test_every_model_load_failure_is_shown_and_the_app_keeps_running(
    tiny_model_dir: Path, store: StoryStore, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    if fault == "too large for memory":
        _broken_model(tiny_model_dir, vocab_size=10**12)
        expected = "needs about"
    else:
        import slmtui.engine.modeldir as modeldir

        def explode(*args: object, **kwargs: object) -> None:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough memory")

        monkeypatch.setattr(modeldir, "load_model_dir", explode)
        expected = "RuntimeError: [enforce fail"
    app = SlmApp(model="tiny", store=store, settings=default_settings())
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WriterScreen))
        writer = app.screen
        assert isinstance(writer, WriterScreen)
        await wait_for(pilot, lambda: app.writing is not None and app.writing.state != "loading model…")
        assert app.writing.state.startswith("error: ") and expected in app.writing.state
        assert expected in writer.story_view.placeholder
        assert app.is_running  # still usable: the stories, the panels, the models screen
        await pilot.press("f6")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelsScreen")
