"""The training screen and the session behind it: real tiny runs of the trainer, and a fake one for the edges.

The real runs (a few KB of text, preset tiny, 30 steps) take seconds each; the fake trainer starts in
milliseconds and covers what a real one makes slow to reach (crashes, quitting while training, reattaching).
"""

from __future__ import annotations

import json
import os
import random
import signal
from pathlib import Path

import pytest
from textual.widgets import Button, Input, Select

from slmtui.core import paths
from slmtui.engine.generate import Generator
from slmtui.engine.model_io import load_model_dir
from slmtui.core.sampling import Sampling
from slmtui.tui.screens.models import ModelsScreen
from slmtui.training.process import TrainingSession
from slmtui.training.state import RunState, TrainRequest
from trainer.config import DEFAULT_PRESET
from slmtui.tui.screens.training import TrainingScreen
from slmtui.tui.screens.training_dialogs import QuitWhileTraining
from slmtui.tui.widgets.training_form import TrainingForm
from slmtui.tui.widgets.training_text import describe_status
from slmtui.training.plan import estimate, scan_corpus

from training_helpers import TrainHost, fake_trainer, recorded_events
from tui_helpers import wait_for

pytestmark = pytest.mark.anyio

WORDS = ("the cat sat on a mat and then the dog ran to the old house by the river where a small boy lived "
         "with his grandmother who told him stories of the sea and ships and storms").split()


def write_corpus(folder: Path, *, files: int = 3, paragraphs: int = 12) -> Path:
    """A few KB of English-like text, the same every time."""
    rng = random.Random(0)
    folder.mkdir(parents=True)
    for i in range(files):
        text = "\n\n".join(" ".join(rng.choice(WORDS) for _ in range(60)).capitalize() + "." for _ in range(paragraphs))
        (folder / f"book{i}.txt").write_text(text + "\n", encoding="utf-8")
    return folder


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The trainer child inherits this: on a busy 2-core machine a second OpenMP thread only waits."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


async def open_training(app: TrainHost, *, corpus: Path | None) -> TrainingScreen:
    screen = TrainingScreen(app.training, corpus=corpus, device="cpu")
    app.install_screen(screen, "training")  # as SlmApp does: the form outlives a visit
    await app.push_screen("training")
    return screen


async def fill(pilot, screen: TrainingScreen, *, tokenizer: str = "", steps: str = "30", name: str = "") -> None:  # type: ignore[no-untyped-def]
    """The from-scratch path with the tiny preset."""
    screen.query_one(TrainingForm).set_path("scratch")
    await pilot.pause()
    screen.query_one("#train-preset", Select).value = "tiny"
    screen.query_one("#train-tokenizer", Input).value = tokenizer
    screen.query_one("#train-budget-kind", Select).value = "steps"
    await pilot.pause()
    screen.query_one("#train-budget", Input).value = steps
    screen.query_one("#train-name", Input).value = name
    await wait_for(pilot, lambda: screen.corpus_size is not None and screen._request()[0] is not None)


def status_text(screen: TrainingScreen) -> str:
    return str(screen.query_one("#train-status").render())


async def drawn(pilot, screen: TrainingScreen) -> None:  # type: ignore[no-untyped-def]
    """Until the screen has drawn the session's latest state: it redraws on a 0.25 s timer, later on a busy machine,
    so a fixed pause may end before the tick that draws it."""
    session = screen.session
    await wait_for(pilot, lambda: (screen._drawn_version, screen._drawn_running) == (session.state.version,
                                                                                     session.running))
    await pilot.pause()  # and laid out what it drew (a button shown is clickable)


async def stop_everything(app: TrainHost) -> None:
    if app.training.running:
        app.training.kill()
        await app.training.wait(10)


# ----------------------------------------------------------------------------------------------- the contract


def test_request_becomes_the_trainer_flags(tmp_path: Path) -> None:
    new = TrainRequest(corpus=tmp_path, preset="tiny", tokenizer="bpe:300", name="mine", max_steps=30)
    assert new.argv() == ["--preset", "tiny", "--corpus", str(tmp_path), "--tokenizer", "bpe:300", "--name", "mine",
                          "--max-steps", "30", "--progress", "jsonl"]
    assert TrainRequest(time_limit_s=900).argv() == ["--preset", DEFAULT_PRESET, "--time-limit", "900s", "--progress",
                                                     "jsonl"]
    assert TrainRequest(resume=tmp_path / "m").argv() == ["--resume", "--out", str(tmp_path / "m"), "--progress", "jsonl"]


def test_state_folds_recorded_events() -> None:
    session = TrainingSession()
    for line in [*recorded_events(steps=60, done=True), "not json", '{"event": "step"}', ""]:
        session.feed_line(line)
    state = session.state
    assert state.status == "done" and state.resumable is None
    assert [s for s, _ in state.train_loss] == list(range(1, 61))
    assert [s for s, _ in state.val_loss] == [25, 50]
    assert state.sample is not None and state.sample.step == 50
    assert "Done (max steps): my-novels saved at step 60" in describe_status(state).plain


def test_a_resumed_run_followed_from_its_start_gets_its_earlier_curve(tmp_path: Path) -> None:
    """Reattached (or resumed in an earlier app): the steps before the resume come from metrics.jsonl."""
    folder = tmp_path / "model"
    folder.mkdir()
    history = [line for line in recorded_events(steps=30) if '"event": "start"' not in line]
    (folder / "metrics.jsonl").write_text("\n".join(history) + "\n")
    session = TrainingSession()
    start = json.loads(recorded_events(steps=0)[0]) | {"path": str(folder), "start_step": 20}
    session.feed_line(json.dumps(start))
    assert [s for s, _ in session.state.train_loss] == list(range(1, 21))
    assert session.state.val_loss == []  # the one evaluation, at step 25, came after the resume point


def test_estimate_grows_with_the_budget_and_the_corpus(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "books")
    size = scan_corpus(corpus)
    assert size.files == 3 and size.bytes == sum(f.stat().st_size for f in corpus.iterdir())
    assert scan_corpus(tmp_path / "nowhere").error
    short = estimate(corpus_bytes=size.bytes, preset="tiny", tokenizer=None, max_steps=30)
    long = estimate(corpus_bytes=size.bytes, preset="tiny", tokenizer=None, max_steps=300)
    assert short.steps == 30 and long.steps == 300 and long.seconds > short.seconds  # type: ignore[operator]
    big = estimate(corpus_bytes=100 * size.bytes, preset="tiny", tokenizer=None, epochs=1)
    small = estimate(corpus_bytes=size.bytes, preset="tiny", tokenizer=None, epochs=1)
    assert big.steps > small.steps  # type: ignore[operator]
    assert estimate(corpus_bytes=10**6, preset="seed", tokenizer=None, time_limit_s=600).seconds == pytest.approx(605)


# ----------------------------------------------------------------------------------------------- real runs


async def test_a_run_started_from_the_screen_reaches_done_and_the_model_writes(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "books")
    app = TrainHost()
    async with app.run_test(size=(120, 35)) as pilot:
        try:
            screen = await open_training(app, corpus=corpus)
            await wait_for(pilot, lambda: screen.corpus_size is not None)
            assert "3 files" in str(screen.query_one("#train-corpus-size").render())
            assert "about" in str(screen.query_one("#train-estimate").render())
            await fill(pilot, screen, tokenizer="bpe:300", steps="30", name="little")
            await pilot.press("ctrl+g")
            await wait_for(pilot, lambda: app.training.state.step is not None, timeout=60)
            await pilot.press("escape")  # back to writing: the run goes on without the screen
            assert app.screen is not screen
            await wait_for(pilot, lambda: not app.training.running, timeout=90)
            state = app.training.state
            assert state.status == "done", state.error
            assert state.done is not None and state.done.step == 30 and state.returncode == 0
            assert len(state.train_loss) == 30 and state.val_loss and state.sample is not None

            await app.push_screen("training")  # coming back shows the whole run
            await drawn(pilot, screen)
            assert "Done (max steps): little saved at step 30" in status_text(screen)
            use = screen.query_one("#train-use", Button)
            assert use.display
            await pilot.click("#train-use")
            assert app.active_models == ["little"]

            models = ModelsScreen(active="little")
            await app.push_screen(models)
            await wait_for(pilot, lambda: any(m.name == "little" for m in models.models))
        finally:
            await stop_everything(app)
    loaded = load_model_dir(paths.models_dir() / "little")
    assert loaded.info.training["steps"] == 30
    events = list(Generator(loaded.model, loaded.tokenizer).stream("The cat", Sampling(max_new_tokens=8, seed=1)))
    assert len(events) == 8 and "".join(e.text for e in events)


async def test_cancel_saves_and_resume_continues_from_the_saved_step(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "books")
    app = TrainHost()
    async with app.run_test(size=(120, 35)) as pilot:
        try:
            screen = await open_training(app, corpus=corpus)
            statuses: list[str] = []  # every status the run goes through, however briefly
            app.training.listeners.append(lambda state: statuses.append(state.status))
            await fill(pilot, screen, tokenizer="bpe:300", steps="400", name="halfway")
            await pilot.press("ctrl+g")
            await wait_for(pilot, lambda: app.training.state.step is not None and app.training.state.step.step >= 3,
                           timeout=60)
            await pilot.press("ctrl+b")
            # Stop answers at once ("stopping" while the trainer saves); the tiny run may be saved by now too.
            await wait_for(pilot, lambda: "stopping" in statuses)
            await wait_for(pilot, lambda: not app.training.running, timeout=60)
            state = app.training.state
            assert state.status == "interrupted", state.error
            assert [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]] == [
                "starting", "running", "stopping", "interrupted"]
            assert state.returncode == 130 and state.done is not None
            saved = state.done.step
            assert (paths.models_dir() / "halfway" / "train_state.pt").is_file()
            await drawn(pilot, screen)
            assert screen.query_one("#train-resume", Button).display
            assert f"Stopped at step {saved}" in status_text(screen)

            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: app.training.state.step is not None, timeout=60)
            resumed = app.training.state
            assert resumed.start is not None and resumed.start.start_step == saved
            steps = [s for s, _ in resumed.train_loss]  # one curve: saved steps, then the resumed ones
            assert len(steps) > saved and steps == list(range(1, len(steps) + 1))
            await pilot.press("ctrl+b")
            await wait_for(pilot, lambda: not app.training.running, timeout=60)
            assert app.training.state.status == "interrupted"
        finally:
            await stop_everything(app)


async def test_a_trainer_error_is_shown_in_its_words(tmp_path: Path) -> None:
    corpus = tmp_path / "binary"
    corpus.mkdir()
    (corpus / "photo.txt").write_bytes(bytes(range(256)) * 8)  # a .txt that is not text
    app = TrainHost()
    async with app.run_test(size=(120, 35)) as pilot:
        try:
            screen = await open_training(app, corpus=corpus)
            await fill(pilot, screen, steps="30", name="never")
            await pilot.press("ctrl+g")
            await wait_for(pilot, lambda: not app.training.running and app.training.state.status != "idle", timeout=60)
            await drawn(pilot, screen)
            assert app.training.state.status == "failed"
            text = status_text(screen)
            assert "Training failed" in text and "binary file" in text
            assert not screen.query_one("#train-start", Button).disabled  # ready for another try
        finally:
            await stop_everything(app)


# ----------------------------------------------------------------------------------------------- fake trainer


async def test_a_crash_without_an_error_event_shows_the_last_stderr_lines(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODE", "crash")
    app = TrainHost(TrainingSession(command=fake_trainer(tmp_path)))
    async with app.run_test(size=(120, 35)) as pilot:
        screen = await open_training(app, corpus=None)
        await fill(pilot, screen, name="crashy")
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: app.training.state.status == "failed", timeout=20)
        await drawn(pilot, screen)
        assert app.training.state.returncode == 1
        assert "RuntimeError: out of memory" in status_text(screen)


async def test_quit_while_training_can_stop_and_save(tmp_path: Path) -> None:
    app = TrainHost(TrainingSession(command=fake_trainer(tmp_path)))
    async with app.run_test(size=(120, 35)) as pilot:
        screen = await open_training(app, corpus=None)
        await fill(pilot, screen, steps="100000", name="long")
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: app.training.state.step is not None, timeout=20)
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitWhileTraining))
        await pilot.press("escape")  # not quitting after all
        assert app.training.running and app.is_running
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitWhileTraining))
        await pilot.click("#quit-stop")
        await wait_for(pilot, lambda: not app.is_running, timeout=20)
    assert app.training.state.status == "interrupted" and app.training.state.returncode == 130


async def test_quit_while_training_can_leave_it_running_and_a_new_app_reattaches(tmp_path: Path) -> None:
    command = fake_trainer(tmp_path)
    app = TrainHost(TrainingSession(command=command))
    async with app.run_test(size=(120, 35)) as pilot:
        screen = await open_training(app, corpus=None)
        await fill(pilot, screen, steps="100000", name="background")
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: app.training.state.step is not None, timeout=20)
        pid = app.training.state.pid
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitWhileTraining))
        await pilot.click("#quit-leave")
        await wait_for(pilot, lambda: not app.is_running, timeout=10)
    assert pid is not None
    try:
        os.kill(pid, 0)  # still training, in its own session
        again = TrainHost(TrainingSession(command=command))
        async with again.run_test(size=(120, 35)) as pilot:
            assert await again.training.reattach()
            seen = again.training.state
            await wait_for(pilot, lambda: seen.step is not None and seen.status == "running", timeout=10)
            assert seen.start is not None and seen.start.name == "background"
            again.training.cancel()  # a reattached run is stopped the same way
            await wait_for(pilot, lambda: not again.training.running, timeout=20)
            assert seen.status == "interrupted"
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


async def test_leaving_and_reopening_the_screen_keeps_the_form(tmp_path: Path) -> None:
    app = TrainHost(TrainingSession(command=fake_trainer(tmp_path)))
    async with app.run_test(size=(120, 35)) as pilot:
        screen = await open_training(app, corpus=tmp_path)
        screen.query_one("#train-name", Input).value = "kept"
        await pilot.press("escape")
        await app.push_screen("training")
        assert screen.query_one("#train-name", Input).value == "kept"
        assert RunState().status == "idle"
