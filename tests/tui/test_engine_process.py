"""The app decodes in a child process (engine/remote.py) once it has started: the writer streams from it, one
continuation or three candidates, exactly what the engine writes on the child's path; switching model ends the
old child; quitting leaves no process behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from slmtui.engine.generate import Generator
from slmtui.engine.model_io import load_model_dir
from slmtui.engine.remote import RemoteGenerator
from slmtui.core.sampling import Sampling
from slmtui.stories import StoryStore
from slmtui.tui.app import SlmApp
from slmtui.tui.screens.writer import WriterScreen

from tests.processes import alive

from tui_helpers import default_settings, press_now, wait_for, wait_idle

pytestmark = pytest.mark.anyio

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
        await press_now(pilot, "enter")
        await wait_for(pilot, lambda: writer.session.job is not None)
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
