"""The models screen: list, make active, rename, delete (never the bundled model), add a folder by path (the
folder operations themselves are tested in tests/core/test_model_catalog.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from slmtui.core import paths
from slmtui.core.gpt_config import GPTConfig
from slmtui.core.model_folder import ModelInfo
from slmtui.core.tokenizer_spec import ENDOFTEXT, GPT2_PATTERN, TokenizerSpec
from slmtui.engine.model_io import save_model_dir
from slmtui.engine.model import GPT
from slmtui.engine.tokenizer import Tokenizer
from slmtui.tui.modals import AskScreen, ConfirmScreen
from slmtui.format import fine_tuned
from slmtui.tui.screens.models import ModelsScreen

from training_helpers import TrainHost, screen_lines
from tui_helpers import wait_for

pytestmark = pytest.mark.anyio


def fixed_info(name: str, *, bundled: bool = False, vocab: int = 8192, **training: object) -> ModelInfo:
    """A model as model.toml would describe it, at a path that is the same on every machine."""
    config = GPTConfig(vocab_size=vocab, block_size=256, n_layer=6, n_head=4, n_embd=256, dropout=0.0,
                       tie_embeddings=True)
    spec = TokenizerSpec(name=f"bpe-{vocab}", pattern=GPT2_PATTERN, special_tokens={ENDOFTEXT: vocab - 1}, n_vocab=vocab)
    base = Path("/opt/slmtui/assets/models") if bundled else Path("/home/reader/.local/share/slmtui/models")
    return ModelInfo(path=base / name, config=config, tokenizer=spec, training=dict(training), bundled=bundled)


FIXED_MODELS = [
    fixed_info("my-novels", corpus="/home/reader/books", corpus_bytes=1_234_567, preset="default", steps=4000,
               tokens_seen=32_768_000, val_loss=2.4512, val_bpb=0.8123, wall_time_s=5400.0, device="cpu",
               created="2026-03-14T09:26:53+00:00", stopped="max_steps"),
    fixed_info("poems", vocab=512, corpus="/home/reader/poems", preset="tiny", steps=300, val_loss=3.9, val_bpb=1.71,
               created="2026-03-15T21:02:00+00:00", stopped="interrupted"),
    fixed_info("default", bundled=True, corpus="bundled", corpus_bytes=7_123_456, preset="default", steps=20000,
               val_loss=2.1234, val_bpb=0.7456, created="2026-02-01T12:00:00+00:00", stopped="early_stop"),
]


def test_models_screen_snapshot(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = TrainHost()

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        screen = ModelsScreen(active="my-novels", lister=lambda: list(FIXED_MODELS))
        await app.push_screen(screen)
        await wait_for(pilot, lambda: len(screen.models) == 3)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 30), run_before=run_before)


FAMILY = [
    fixed_info("treasure", corpus="/home/reader/books/stevenson-treasure-island.txt", corpus_bytes=365_398,
               preset="default", tokenizer_arg="bpe:8192", steps=175, tokens_seen=716_800, val_loss=3.9012,
               val_bpb=1.4411, wall_time_s=600.0, device="cpu", created="2026-03-14T09:26:53+00:00",
               stopped="time_limit", resumable=False, parent="/opt/slmtui/assets/models/default",
               parent_val_bpb=1.6293),
    fixed_info("default", bundled=True, corpus="bundled", corpus_bytes=22_656_073, preset="default", steps=2398,
               tokens_seen=19_644_416, val_loss=3.8670, val_bpb=1.3531, heldout_books=["a.txt", "b.txt"],
               heldout_bpb=1.5056, wall_time_s=7474.3, device="cpu", created="2026-02-01T12:00:00+00:00",
               stopped="early_stop"),
]
"""A bundled default and a fine-tune of it, as the trainer records them."""


def family_app() -> tuple[TrainHost, Callable[..., Awaitable[None]]]:
    app = TrainHost()

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        screen = ModelsScreen(active="treasure", lister=lambda: list(FAMILY))
        await app.push_screen(screen)
        await wait_for(pilot, lambda: len(screen.models) == 2)
        await pilot.pause()

    return app, run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 35)], ids=["80x24", "120x35"])
def test_models_screen_with_a_fine_tune_snapshot(snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app, run_before = family_app()
    assert snap_compare(app, terminal_size=size, run_before=run_before)


async def test_at_80_columns_the_score_the_parent_and_the_change_are_shown() -> None:
    """Issue 24 item 8: the table was cut at "Bits/" at 80 columns, and a fine-tune's parent and its before and
    after (which ``slmtui models`` prints) were not in the table; the details say them as the CLI does
    (``format.fine_tuned``)."""
    app, run_before = family_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await run_before(pilot)
        lines = screen_lines(app)
        header = next(line for line in lines if "Model" in line and "Params" in line)
        assert "Bits/byte" in header and "From" in header and "Created" in header, header
        row = next(line for line in lines if "treasure" in line)
        assert "1.441" in row and "default" in row and "2026-03-14 09:26" in row, row
        text = " ".join(" ".join(lines).split())
        assert fine_tuned(FAMILY[0]) == "fine-tuned from default · your books: 1.63 → 1.44 bits per byte"
        assert fine_tuned(FAMILY[0]) in text and "stopped early" not in text, text
        await pilot.press("down")  # the bundled one: its score on the held-out books too
        await pilot.pause()
        text = " ".join(" ".join(screen_lines(app)).split())
        assert "2 held-out books 1.506 bits/byte" in text, text


def save_tiny(name: str, tiny_model: GPT, tokenizer: Tokenizer, base: Path | None = None) -> Path:
    return save_model_dir((base or paths.models_dir()) / name, tiny_model, tokenizer,
                          training={"val_loss": 3.0, "val_bpb": 1.5, "created": "2026-01-02T00:00:00+00:00"})


# --------------------------------------------------------------------------------------------- the screen


async def test_make_active_rename_and_delete_from_the_screen(
    tiny_model_dir: Path, tiny_model: GPT, byte_tokenizer: Tokenizer
) -> None:
    save_tiny("second", tiny_model, byte_tokenizer)
    app = TrainHost()
    async with app.run_test(size=(120, 30)) as pilot:
        screen = ModelsScreen(active="tiny")
        await app.push_screen(screen)
        await wait_for(pilot, lambda: {"second", "tiny"} <= {m.name for m in screen.models})
        names = [m.name for m in screen.models]
        table = screen.query_one(DataTable)
        assert table.get_row_at(names.index("tiny"))[0] == "●"  # the active one is marked

        table.move_cursor(row=names.index("second"))
        await pilot.press("enter")
        assert app.active_models == ["second"]
        await wait_for(pilot, lambda: table.get_row_at(names.index("second"))[0] == "●")

        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, AskScreen))
        app.screen.query_one(Input).value = "renamed"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "renamed" in {m.name for m in screen.models})
        assert (paths.models_dir() / "renamed" / "model.toml").is_file()
        assert not (paths.models_dir() / "second").exists()
        assert app.active_models == ["second", "renamed"]  # the active model follows its new name

        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.click("#yes")
        await wait_for(pilot, lambda: "renamed" not in {m.name for m in screen.models})
        assert not (paths.models_dir() / "renamed").exists()
        assert app.active_models[-1] is None  # the active model is gone: back to the bundled one


async def test_the_bundled_model_cannot_be_deleted() -> None:
    app = TrainHost()
    async with app.run_test(size=(120, 30)) as pilot:
        screen = ModelsScreen(active=None, lister=lambda: [fixed_info("default", bundled=True)])
        await app.push_screen(screen)
        await wait_for(pilot, lambda: len(screen.models) == 1)
        await pilot.press("d")
        await pilot.pause()
        assert app.screen is screen  # no confirmation asked: nothing to confirm
        assert any("cannot be deleted" in n.message for n in app._notifications)
