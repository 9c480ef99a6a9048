"""The training screen's first path: teach the current model your books (a real tiny fine-tune), its before and
after, "Write with it", and what the screen says about bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from slmtui.core import paths
from slmtui.core.model_folder import read_model_info
from slmtui.training.state import TrainRequest
from slmtui.tui.screens.models import ModelsScreen
from slmtui.tui.screens.training import TrainingScreen
from slmtui.tui.widgets.training import SampleText
from slmtui.tui.widgets.training_form import FINETUNE, TrainingForm
from trainer.config import before_after

from test_training import drawn, status_text, stop_everything
from training_helpers import TrainHost
from tui_helpers import wait_for

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def write_book(folder: Path, chars: int = 12_000) -> Path:
    """About ``chars`` of a bundled novel, in whole paragraphs."""
    text = (paths.BUNDLED_CORPUS_DIR / "grahame-wind-in-the-willows.txt").read_text(encoding="utf-8")
    paragraphs, kept = text.split("\n\n")[40:], []
    while sum(len(p) for p in kept) < chars:
        kept.append(paragraphs[len(kept)])
    folder.mkdir(parents=True)
    (folder / "willows.txt").write_text("\n\n".join(kept) + "\n", encoding="utf-8")
    return folder


async def open_finetune(app: TrainHost, corpus: Path, parent: str) -> TrainingScreen:
    screen = TrainingScreen(app.training, corpus=corpus, device="cpu", current_model=lambda: parent)
    app.install_screen(screen, "training")
    await app.push_screen("training")
    return screen


def test_the_request_asks_for_init_from_without_a_preset(tmp_path: Path) -> None:
    request = TrainRequest(corpus=tmp_path, init_from="default", name="mine", time_limit_s=600, tokenizer="bpe:9")
    assert request.argv() == ["--init-from", "default", "--corpus", str(tmp_path), "--name", "mine",
                              "--time-limit", "600s", "--progress", "jsonl"]


async def test_teach_your_books_runs_init_from_shows_before_and_after_and_writes_with_it(
        tiny_model_dir: Path, tmp_path: Path) -> None:
    books = write_book(tmp_path / "books")
    app = TrainHost()
    async with app.run_test(size=(120, 35)) as pilot:
        try:
            screen = await open_finetune(app, books, "tiny")
            form = screen.query_one(TrainingForm)
            assert form.path() == FINETUNE, "fine-tuning is the first path"
            await wait_for(pilot, lambda: screen.parent_model is not None and screen.corpus_size is not None)
            assert "Teach tiny your books" in str(screen.query_one("#path-finetune").label)
            assert "passes over your" in str(screen.query_one("#train-estimate").render())
            screen.query_one("#train-minutes", Input).value = "4s"
            screen.query_one("#train-name", Input).value = "mine"
            await wait_for(pilot, lambda: screen._request()[0] is not None)
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
        screen = await open_finetune(app, books, "no-such-model")
        await wait_for(pilot, lambda: screen.corpus_size is not None)
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
            screen = await open_finetune(app, books, "tiny")
            screen.query_one("#train-name", Input).value = "never"
            await wait_for(pilot, lambda: screen._request()[0] is not None)
            await pilot.press("ctrl+g")
            await wait_for(pilot, lambda: not app.training.running and app.training.state.status != "idle",
                           timeout=60)
            await drawn(pilot, screen)
            assert app.training.state.status == "failed"
            assert "too small to hold out" in status_text(screen)
            assert not (paths.models_dir() / "never").exists()
        finally:
            await stop_everything(app)
