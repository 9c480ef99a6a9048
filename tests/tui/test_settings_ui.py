"""The app and config.toml, and the training and models screens reached from the real app (SlmApp)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual.widgets import Input

from slmtui.core import paths
from slmtui.core.sampling import Sampling
from slmtui.settings import load_settings
from slmtui.tui.app import SlmApp
from slmtui.tui.screens.models import ModelsScreen
from slmtui.tui.screens.training import TrainingScreen
from slmtui.tui.screens.writer import WriterScreen

from tui_helpers import wait_for

pytestmark = pytest.mark.anyio

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
        assert app.theme == "nord"
        sampling = app.screen.session.sampling
        assert (sampling.temperature, sampling.top_k, sampling.top_p) == (Sampling().temperature, Sampling().top_k, 0.5)
        assert app.screen.query_one("#sampling-top_p", Input).value == "0.5"


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
