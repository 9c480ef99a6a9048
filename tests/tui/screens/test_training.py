"""TrainingScreen (slmtui/tui/screens/training.py): real tiny runs of the trainer from the screen, both paths (teach
the current model your books, or train from scratch), and a fake trainer for the edges.

The real runs (a few KB of text, preset tiny, 30 steps; a 12 KB book for a fine-tune) take seconds each; the fake
trainer starts in milliseconds and covers what a real one makes slow to reach (crashes, quitting while training,
reattaching).
"""

from __future__ import annotations

import os
import shutil
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
from slmtui.training.state import RunState
from slmtui.core.model_folder import read_model_info
from slmtui.training.plan import FINETUNE
from slmtui.tui.screens.training import TrainingScreen
from slmtui.tui.screens.training_dialogs import QuitWhileTraining
from slmtui.tui.widgets.training import SampleText
from slmtui.tui.widgets.training_form import TrainingForm
from tests.training_runs import fake_trainer, write_corpus
from trainer.config import before_after

from training_helpers import TrainHost, screen_lines
from tui_helpers import wait_for

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The trainer child inherits this: on a busy 2-core machine a second OpenMP thread only waits."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


async def open_training(app: TrainHost, *, corpus: Path | None, parent: str | None = None) -> TrainingScreen:
    """The screen as SlmApp installs it (the form outlives a visit); ``parent``: the model being written with."""
    screen = TrainingScreen(app.training, corpus=corpus, device="cpu", current_model=lambda: parent)
    app.install_screen(screen, "training")
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
    await wait_for(pilot, lambda: screen.setup.survey is not None and screen.request()[0] is not None)


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


def write_book(folder: Path, chars: int = 12_000) -> Path:
    """About ``chars`` of a bundled novel, in whole paragraphs."""
    text = (paths.BUNDLED_CORPUS_DIR / "grahame-wind-in-the-willows.txt").read_text(encoding="utf-8")
    paragraphs, kept = text.split("\n\n")[40:], []
    while sum(len(p) for p in kept) < chars:
        kept.append(paragraphs[len(kept)])
    folder.mkdir(parents=True)
    (folder / "willows.txt").write_text("\n\n".join(kept) + "\n", encoding="utf-8")
    return folder


# ------------------------------------------------------------------------------------------------------ real runs


@pytest.mark.slow
async def test_a_run_started_from_the_screen_reaches_done_and_the_model_writes(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "books")
    app = TrainHost()
    async with app.run_test(size=(120, 35)) as pilot:
        try:
            screen = await open_training(app, corpus=corpus)
            await wait_for(pilot, lambda: screen.setup.survey is not None)
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


@pytest.mark.slow
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


# ------------------------------------------------------------------------------------- teach the model your books


@pytest.mark.slow
async def test_teach_your_books_runs_init_from_shows_before_and_after_and_writes_with_it(
        tiny_model_dir: Path, tmp_path: Path) -> None:
    books = write_book(tmp_path / "books")
    app = TrainHost()
    async with app.run_test(size=(120, 35)) as pilot:
        try:
            screen = await open_training(app, corpus=books, parent="tiny")
            form = screen.query_one(TrainingForm)
            assert form.path() == FINETUNE, "fine-tuning is the first path"
            await wait_for(pilot, lambda: screen.setup.survey is not None and screen.setup.survey.parent is not None)
            assert str(screen.query_one("#train-parent").render()) == "starting from tiny"
            assert "passes over your" in str(screen.query_one("#train-estimate").render())
            screen.query_one("#train-minutes", Input).value = "4s"
            screen.query_one("#train-name", Input).value = "mine"
            await wait_for(pilot, lambda: screen.request()[0] is not None)
            await pilot.press("ctrl+g")
            await wait_for(pilot, lambda: app.training.state.request is not None)
            argv = app.training.state.request.argv()
            assert argv[:2] == ["--init-from", "tiny"] and "--preset" not in argv
            await wait_for(pilot, lambda: not app.training.running and app.training.state.status != "starting",
                           timeout=120)
            state = app.training.state
            assert state.status == "done", state.error
            assert state.before is not None and state.before.step == 0, "step 0 reports the parent's score"
            t = read_model_info(paths.models_dir() / "mine").training
            assert t["parent_val_bpb"] == pytest.approx(state.before.val_bpb)
            await drawn(pilot, screen)
            assert before_after(t["parent_val_bpb"], t["val_bpb"]) in status_text(screen)
            before = screen.query_one("#train-sample-before", SampleText)
            assert before.has_class("-shown") and "before" in str(before.border_title)
            assert state.before_sample is not None and state.before_sample.step == 0
            assert before.text.plain.startswith("The") and len(before.text.plain) > 3
            assert state.sample is not None and state.sample.step > 0, "beside the last evaluation's sample"
            assert screen.query_one("#train-sample", SampleText).border_title == f"sample at step {state.sample.step}"

            await pilot.press("ctrl+o")  # one key: write with it
            assert app.active_models == ["mine"]
            assert app.screen is not screen

            models = ModelsScreen(active="mine")  # the model card lists its parent and its before and after
            await app.push_screen(models)
            await wait_for(pilot, lambda: models.selected() is not None and models.selected().name == "mine")
            detail = str(models.query_one("#models-detail").render())
            assert f"fine-tuned from tiny · {before_after(t['parent_val_bpb'], t['val_bpb'])}" in detail
        finally:
            await stop_everything(app)


async def test_a_model_that_cannot_be_read_is_said_on_the_screen(tmp_path: Path) -> None:
    books = write_book(tmp_path / "books")
    app = TrainHost()
    async with app.run_test(size=(120, 35)) as pilot:
        screen = await open_training(app, corpus=books, parent="no-such-model")
        await wait_for(pilot, lambda: screen.setup.survey is not None)
        assert "no model named 'no-such-model'" in str(screen.query_one("#train-estimate").render())
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert app.training.state.status == "idle", "nothing started"


async def test_the_trainer_refusing_a_fine_tune_is_shown_in_its_words(tiny_model_dir: Path, tmp_path: Path) -> None:
    books = tmp_path / "note"
    books.mkdir()
    (books / "note.txt").write_text("One line, which cannot be split into training and held-out text.\n")
    app = TrainHost()
    async with app.run_test(size=(120, 35)) as pilot:
        try:
            screen = await open_training(app, corpus=books, parent="tiny")
            screen.query_one("#train-name", Input).value = "never"
            await wait_for(pilot, lambda: screen.request()[0] is not None)
            await pilot.press("ctrl+g")
            await wait_for(pilot, lambda: not app.training.running and app.training.state.status != "idle",
                           timeout=60)
            await drawn(pilot, screen)
            assert app.training.state.status == "failed"
            assert "too small to hold out" in status_text(screen)
            assert not (paths.models_dir() / "never").exists()
        finally:
            await stop_everything(app)


# --------------------------------------------------------------------------------------------------- fake trainer


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


# ---------------------------------------------------------------------------------------------- at 80x24 (issue 24)


async def test_at_80x24_start_is_in_sight_and_the_model_taught_is_named_whole(tiny_model_dir: Path,
                                                                             tmp_path: Path) -> None:
    """Issue 24 item 11: at 80x24 the Start button was below the fold of the scrolling form, and the first path
    read "Teach trial-books your b…" (the parent's name inside a label cut at the panel's width)."""
    books = write_book(tmp_path / "books")
    shutil.copytree(tiny_model_dir, paths.models_dir() / "trial-books")
    app = TrainHost()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_training(app, corpus=books, parent="trial-books")
        await wait_for(pilot, lambda: screen.setup.survey is not None and screen.setup.survey.parent is not None)
        await pilot.pause()
        start = screen.query_one("#train-start", Button)
        x, y = start.region.center
        assert 0 <= y < 23 and app.screen.get_widget_at(x, y)[0] is start, "Start can be seen and clicked"
        text = "\n".join(screen_lines(app))
        assert "starting from trial-books" in text and "…" not in text.split("Your books")[0], text


async def test_the_name_box_suggests_nothing_before_the_books_are_chosen(tmp_path: Path) -> None:
    """Issue 24 item 12: a fresh screen offered "default-bundled", a name for teaching the bundled novels, which
    the fine-tune refuses; it is named after the books once they are chosen."""
    app = TrainHost()
    async with app.run_test(size=(120, 35)) as pilot:
        screen = await open_training(app, corpus=None)
        await wait_for(pilot, lambda: screen.setup.survey is not None)
        await pilot.pause()
        name = screen.query_one("#train-name", Input)
        form = screen.query_one(TrainingForm)
        assert "bundled" not in name.placeholder and form.model_name() == ""
        assert "bundled" not in str(screen.query_one("#train-estimate").render()).split("choose")[0]
        form.set_corpus(write_book(tmp_path / "my-books"))
        await wait_for(pilot, lambda: form.model_name() == "my-books")
        assert name.placeholder == "my-books"
        form.set_path("scratch")  # from scratch the bundled novels are a corpus, and named after it
        form.set_corpus(None)
        await wait_for(pilot, lambda: form.model_name().endswith("-bundled"))


async def test_the_first_box_has_the_focus_and_shows_it(tmp_path: Path) -> None:
    """Issue 24 item 13: the screen opens typing into the books field, again when it is left and reopened, and the
    field shows it has the focus plainly: a compact field has no border to light up, and the stock focus (5% more
    grey) was hard to tell from the fields around it; the focused one is tinted with the theme's primary colour."""
    app = TrainHost()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_training(app, corpus=None)
        await pilot.pause()
        corpus = screen.query_one("#train-corpus", Input)
        assert app.focused is corpus
        await pilot.press("escape")
        await app.push_screen("training")
        await pilot.pause()
        assert app.focused is corpus
        other = screen.query_one("#train-minutes", Input)
        lit = corpus.background_colors[1].tint(corpus.styles.background_tint)  # as it is drawn
        unlit = other.background_colors[1].tint(other.styles.background_tint)
        assert lit.hsl.s - unlit.hsl.s > 0.3, (lit, unlit)
