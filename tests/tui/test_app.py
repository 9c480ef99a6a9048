"""SlmApp (slmtui/tui/app.py), the whole app with Pilot.

- Starting whatever it finds: a damaged stories.db is kept untouched and a fresh one offered beside it; a model
  that fails to load, for any reason, is said on the screen (never "loading model…" forever).
- config.toml: a broken or ill-typed file is named and never written over; the training and models screens are
  reached from the app, and the choice is remembered.
- Decoding in a child process (engine/remote.py) once it has started: the writer streams from it, one
  continuation or three candidates, exactly what the engine writes on the child's path; switching model ends the
  old child; quitting leaves no process behind.
- kill -9 mid-generation loses at most the text of the last 2 seconds (the app commits every half second).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import tomli_w
import tomllib
from textual.widgets import Input, Label

from slmtui.core import paths
from slmtui.engine.generate import Generator
from slmtui.engine.model_io import load_model_dir
from slmtui.engine.remote import RemoteGenerator
from slmtui.core.sampling import Sampling
from slmtui.settings import load_settings
from slmtui.stories.store import StoryStore
from slmtui.tui.app import SlmApp
from slmtui.tui.modals import ConfirmScreen
from slmtui.tui.screens.models import ModelsScreen
from slmtui.tui.screens.training import TrainingScreen
from slmtui.tui.screens.writer import WriterScreen
from slmtui.writing.lore import LoreSettings
from slmtui.writing.records import ActiveModel
from tests.fs_snapshot import snapshot
from tests.processes import alive
from tests.stories_damage import DAMAGE, damage_stories_db

from tui_helpers import default_settings, press_now, start_writing, wait_for, wait_idle

pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------------------------------------------- starting


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


@pytest.mark.parametrize("fault", ["too large for memory", "an unexpected exception", "an unreadable model folder",
                                   "an unreadable models folder"])
async def test_every_model_load_failure_is_shown_and_the_app_keeps_running(
    tiny_model_dir: Path, store: StoryStore, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    from contextlib import nullcontext

    from tests.unreadable import unreadable

    sealed = nullcontext()
    if fault == "too large for memory":
        _broken_model(tiny_model_dir, vocab_size=10**12)
        expected = "needs about"
    elif fault.startswith("an unreadable"):  # chmod 000, as its owner (issue 23, item 5: "loading model…", then F6 crashed)
        sealed = unreadable(tiny_model_dir if "model folder" in fault else tiny_model_dir.parent)
        expected = "Permission denied"
    else:
        import slmtui.engine.model_io as model_io

        def explode(*args: object, **kwargs: object) -> None:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough memory")

        monkeypatch.setattr(model_io, "load_model_dir", explode)
        expected = "RuntimeError: [enforce fail"
    app = SlmApp(model="tiny", store=store, settings=default_settings())
    with sealed:
        await _shown_and_running(app, expected)


async def _shown_and_running(app: SlmApp, expected: str) -> None:
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


# ------------------------------------------------------------------------------------------------------ config.toml


BROKEN = b'theme = "nord"\nmodel = "tiny\n\n[sampling]\ntemperature = 0.5\n'
"""An unterminated string on line 2: the file does not parse."""


def messages(app: SlmApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_a_broken_config_shows_its_line_and_is_never_written_over(make_app: Callable[..., SlmApp]) -> None:
    config = paths.config_file()
    config.parent.mkdir(parents=True)
    config.write_bytes(BROKEN)
    app = make_app(settings=load_settings())
    async with app.run_test(size=(120, 35)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WriterScreen))
        await pilot.pause()
        assert any("config.toml line 2" in m for m in messages(app)), messages(app)
        assert app.settings.theme == "textual-dark"  # defaults, all of them
        app.theme = "nord"  # each of these would save settings on a good file
        app.set_active_model("tiny")
        await pilot.pause()
    assert config.read_bytes() == BROKEN


async def test_an_ill_typed_or_out_of_range_value_is_named_and_the_rest_applies(
    make_app: Callable[..., SlmApp]
) -> None:
    """Each bad value defaults alone, with one message naming its line: a temperature the engine would refuse
    too, not the whole [sampling] table."""
    config = paths.config_file()
    config.parent.mkdir(parents=True)
    config.write_text('theme = "nord"\n\n[sampling]\ntop_k = "forty"\ntemperature = 7\ntop_p = 0.5\n')
    app = make_app(settings=load_settings())
    async with app.run_test(size=(120, 35)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WriterScreen))
        await pilot.pause()
        assert any("line 4" in m and "top_k" in m for m in messages(app)), messages(app)
        assert [m for m in messages(app) if "temperature" in m] == [
            f"{config} line 5: sampling.temperature: should be a number from 0 to 5, not 7; using the default"]
        sampling = app.screen.session.sampling
        assert (sampling.temperature, sampling.top_k, sampling.top_p) == (Sampling().temperature, Sampling().top_k, 0.5)
        assert app.screen.query_one("#sampling-top_p", Input).value == "0.5"
        assert app.theme == "nord"


async def test_f5_and_f6_open_training_and_models_and_the_choice_is_remembered(
    make_app: Callable[..., SlmApp], tiny_model_dir
) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WriterScreen))
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainingScreen))
        await pilot.press("f6")  # from one room to the other, not a pile of screens
        await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen))
        models = app.screen
        assert not any(isinstance(s, TrainingScreen) for s in app.screen_stack)
        await wait_for(pilot, lambda: any(m.name == "tiny" for m in models.models))
        names = [m.name for m in models.models]
        models.query_one("DataTable").move_cursor(row=names.index("tiny"))
        await pilot.press("enter")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, WriterScreen))
        assert app.model_name == "tiny"
    assert load_settings().settings.model == "tiny"


async def test_config_tomls_lore_settings_reach_the_writing_session(make_app: Callable[..., SlmApp]) -> None:
    """[lore] in config.toml decides how far back the session looks for keys and how much room lore gets."""
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text("[lore]\nscan_depth = 32\nbudget_share = 0.1\nmax_rounds = 0\n")
    app = make_app(settings=load_settings())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WriterScreen))
        assert app.writing is not None
        assert app.writing.lore_settings == LoreSettings(scan_depth=32, budget_share=0.1, max_rounds=0)


# -------------------------------------------------------------------------------------- decoding in a child process


SAMPLING = Sampling(max_new_tokens=24, temperature=0.8, seed=3)
CHILD_START_S = 120.0
"""A child imports torch: seconds, more on a busy machine."""


async def _child_ready(pilot, writer: WriterScreen) -> RemoteGenerator:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: writer.session.model is not None, timeout=CHILD_START_S)
    remote = writer.session.model.remote  # type: ignore[union-attr]
    assert remote is not None, "the app starts a child for the model it loads"
    await wait_for(pilot, lambda: remote.ready or remote.error is not None, timeout=CHILD_START_S)
    assert remote.ready, remote.error
    return remote


async def test_the_writer_streams_from_the_child_one_or_three_at_once(
        tiny_model_dir: Path, store: StoryStore) -> None:
    app = SlmApp(model="tiny", device="cpu", store=store, settings=default_settings())
    async with app.run_test(size=(140, 50)) as pilot:
        writer = app.screen
        assert isinstance(writer, WriterScreen)
        remote = await _child_ready(pilot, writer)
        assert writer.session.model.mode == "process" and writer.session.model.streamer() is remote  # type: ignore[union-attr]
        pid = remote.pid
        assert pid is not None and pid != os.getpid()
        loaded = load_model_dir(tiny_model_dir)
        engine = Generator(loaded.model, loaded.tokenizer, path=remote.path_for(1), num_threads=remote.threads_for(1))

        writer.set_sampling(SAMPLING)
        await pilot.press(*"Once")
        await start_writing(pilot, writer)  # the child writes these 24 tokens in milliseconds
        await wait_idle(pilot, writer)
        passage = writer.session.path[-1]
        assert passage.author == "model"
        assert passage.text == "".join(e.text for e in engine.stream("Once", SAMPLING))

        writer.set_choices(3)
        engine = Generator(loaded.model, loaded.tokenizer, path=remote.path_for(3), num_threads=remote.threads_for(3))
        await press_now(pilot, "ctrl+r")  # retry: three candidates of the same point, streamed at once
        await wait_for(pilot, lambda: len(writer.session.candidates) == 3)
        await wait_idle(pilot, writer)
        texts = [store.get_passage(i).text for i in writer.session.candidates]
        expected = ["", "", ""]
        for e in engine.stream("Once", SAMPLING, n=3):
            expected[e.stream] += e.text
        assert texts == expected and len(set(texts)) == 3
        assert remote.pid == pid, "the same child wrote both"
    assert not alive(pid), "the child exits with the app"


async def test_switching_model_ends_the_old_child(tiny_model_dir: Path, store: StoryStore) -> None:
    app = SlmApp(model="tiny", device="cpu", store=store, settings=default_settings())
    async with app.run_test() as pilot:
        writer = app.screen
        assert isinstance(writer, WriterScreen)
        old = await _child_ready(pilot, writer)
        old_pid = old.pid
        app.set_active_model(str(tiny_model_dir))
        await wait_for(pilot, lambda: writer.session.model is not None and writer.session.model.remote is not old,
                       timeout=CHILD_START_S)
        new = await _child_ready(pilot, writer)
        await wait_for(pilot, lambda: not alive(old_pid))  # type: ignore[arg-type]
        assert new.pid not in (None, old_pid)
        new_pid = new.pid
    assert not alive(new_pid)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------- kill -9


CHILD = Path(__file__).with_name("kill_child.py")
STREAM_S = 2.5
"""How long the child streams before it is killed."""
MAX_LOSS_S = 2.0


def read_log(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by the kill
            break
    return out


def run_and_kill(log: Path, choices: int) -> float:
    """Start the child writing ``choices`` candidates, let it stream STREAM_S seconds, kill -9 it; when."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, str(CHILD), str(log), str(choices)], env=env, cwd=CHILD.parent,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while True:
            frames = read_log(log)
            if frames and time.time() - float(frames[0]["t"]) >= STREAM_S:  # type: ignore[arg-type]
                break
            assert child.poll() is None, f"the app exited early: {child.stderr.read().decode()[-2000:]}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the app never started streaming"
            time.sleep(0.05)
        killed_at = time.time()
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return killed_at


def check_passage(frames: list[dict[str, object]], passage: object, killed_at: float) -> None:
    """What the screen showed of ``passage`` against what stories.db kept: a prefix, short by at most 2 s."""
    mine = [f for f in frames if f["passage"] == passage]
    shown = "".join(str(f["text"]) for f in mine)
    with sqlite3.connect(paths.stories_db()) as db:  # WAL: the committed appends are replayed on open
        (saved,) = db.execute("SELECT text FROM passages WHERE id = ?", (passage,)).fetchone()
    assert shown and saved, "text was streamed and saved"
    # The worker saves what it made; the screen draws it a frame later: one is a prefix of the other.
    assert shown.startswith(saved) or saved.startswith(shown)
    lost = shown[len(saved):]
    print(f"passage {passage}: {len(shown)} characters shown, {len(saved)} saved, {len(lost)} lost")
    if lost:
        drawn = 0
        first_lost_at = None
        for f in mine:
            drawn += len(str(f["text"]))
            if drawn > len(saved):
                first_lost_at = float(f["t"])  # type: ignore[arg-type]
                break
        assert first_lost_at is not None
        assert killed_at - first_lost_at <= MAX_LOSS_S, (
            f"lost {len(lost)} characters shown since {killed_at - first_lost_at:.2f} s before the kill"
        )


@pytest.mark.slow
def test_kill_9_mid_generation_loses_at_most_two_seconds(tiny_model_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "frames.jsonl"
    killed_at = run_and_kill(log, 1)
    frames = read_log(log)
    check_passage(frames, frames[0]["passage"], killed_at)


@pytest.mark.slow
def test_kill_9_while_three_candidates_stream_keeps_each_and_the_branch(tiny_model_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "frames.jsonl"
    killed_at = run_and_kill(log, 3)
    frames = read_log(log)
    passages = sorted({f["passage"] for f in frames})  # type: ignore[type-var]
    assert len(passages) == 3, "three candidates were drawn"
    for passage in passages:
        check_passage(frames, passage, killed_at)
    with sqlite3.connect(paths.stories_db()) as db:
        parents = {db.execute("SELECT parent_id FROM passages WHERE id = ?", (p,)).fetchone()[0] for p in passages}
        (current,) = db.execute("SELECT current_passage_id FROM stories").fetchone()
        (author,) = db.execute("SELECT author FROM passages WHERE id = ?", (current,)).fetchone()
    assert len(parents) == 1 and parents == {current}, "the story is on the branch it was on: the candidates' parent"
    assert author == "user"


# ------------------------------------------------------------- what the store refuses (issue 23, items 1 and 2)


def _messages(app: SlmApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_a_story_deleted_in_another_window_while_streaming_is_said_and_kept(
        make_app: Callable[..., SlmApp], engine: ActiveModel, store: StoryStore) -> None:
    engine.generator.delay = 0.01  # type: ignore[attr-defined]
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        writer = app.screen
        assert isinstance(writer, WriterScreen)
        writer.session.save_every = 0.0
        writer.set_sampling(Sampling(max_new_tokens=400, seed=2))
        await pilot.press(*"Once")
        await press_now(pilot, "enter")
        await wait_for(pilot, lambda: writer.session.job is not None and len(writer.session.text) > 8)
        with StoryStore(store.path) as other:  # window A: ctrl+o, d, y on the story B writes into
            other.delete_story(writer.session.story.id)  # type: ignore[union-attr]
        await wait_for(pilot, lambda: writer.session.job is None, timeout=10)  # before: "writing…" forever
        assert any("deleted in another window" in m for m in _messages(app))
        shown = writer.session.text
        assert [store.story_text(s.id) for s in store.list_stories()] == [shown]
        writer.set_sampling(Sampling(max_new_tokens=3, seed=2))
        await pilot.press(*"Then")
        await press_now(pilot, "enter")  # before: SlmError "no story with id 1" as a Textual traceback
        await wait_idle(pilot, writer)
        assert app.is_running
        assert store.story_text(writer.session.story.id).startswith(shown + " Then")  # type: ignore[union-attr]


async def test_a_full_disk_while_streaming_is_said_at_once_and_quit_warns_first(
        make_app: Callable[..., SlmApp], engine: ActiveModel, store: StoryStore) -> None:
    engine.generator.delay = 0.01  # type: ignore[attr-defined]
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        writer = app.screen
        assert isinstance(writer, WriterScreen)
        writer.session.save_every = 0.0
        writer.set_sampling(Sampling(max_new_tokens=3000, seed=2))
        await pilot.press(*"Once")
        await press_now(pilot, "enter")
        await wait_for(pilot, lambda: writer.session.job is not None)
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
        await wait_for(pilot, lambda: writer.session.job is None, timeout=20)  # before: "writing…" forever
        # The notice is posted to the app's queue as the job stops, so it may land a frame after.
        await wait_for(pilot, lambda: any(m.startswith("Not saved:") and "disk is full" in m for m in _messages(app)),
                       timeout=5)
        # What was shown and refused is kept (a token may be part of a character: text, or tokens only).
        assert writer.session.state_kind == "error" and writer.session.unsaved
        shown = writer.session.text
        await press_now(pilot, "ctrl+q")
        await pilot.pause(0.1)
        assert app.is_running, "the first ctrl+q says what is not saved"
        assert any("not in stories.db" in m for m in _messages(app))
        store._conn.execute("PRAGMA max_page_count = 1073741823")  # space is back
        await press_now(pilot, "ctrl+q")  # saved now, and quits
        await wait_for(pilot, lambda: not app.is_running, timeout=10)
    with StoryStore(store.path) as again:
        assert [again.story_text(s.id) for s in again.list_stories()] == [shown]
