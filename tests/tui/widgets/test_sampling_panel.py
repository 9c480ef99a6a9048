"""The sampling panel on its own: one input per field of the table, with the table's label, bounds and hint, and
exactly the table's values accepted."""

from __future__ import annotations

import math

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Input, Label, Static

from slmtui.core.sampling import SETTING_FIELDS, Sampling, SamplingField
from slmtui.tui.widgets.sampling_panel import SamplingPanel, format_value

pytestmark = pytest.mark.anyio


class PanelApp(App[None]):
    def compose(self) -> ComposeResult:
        yield SamplingPanel(id="sampling")


def hint(app: PanelApp) -> str:
    return str(app.query_one("#sampling-hint", Static).render())


async def test_every_setting_has_an_input_with_the_tables_label_and_hint() -> None:
    app = PanelApp()
    async with app.run_test(size=(60, 30)) as pilot:
        labels = [str(label.render()) for label in app.query(".sampling-label").results(Label)]
        assert labels == ["preset", *(f.label for f in SETTING_FIELDS), "choices"]
        for f in SETTING_FIELDS:
            box = app.query_one(f"#sampling-{f.name}", Input)
            assert box.value == format_value(f.default)
            assert box.tooltip == f.panel_hint and f.bounds in f.panel_hint
            box.focus()
            await pilot.pause()
            assert hint(app) == f"{f.label}: {f.panel_hint}"


def edge_values(f: SamplingField) -> list[tuple[object, bool]]:
    """(value, whether the table accepts it) at each bound and just past it."""
    out: list[tuple[object, bool]] = []
    for edge, outward in ((f.lo, -1), (f.hi, 1)):
        if edge is not None:
            inside = f.kind(edge)
            past = inside + outward if f.kind is int else math.nextafter(inside, outward * math.inf)
            out += [(inside, f.accepts(inside)), (past, f.accepts(past))]
    return out


@pytest.mark.parametrize("f", [f for f in SETTING_FIELDS if edge_values(f)], ids=lambda f: f.name)
async def test_the_panel_takes_exactly_the_values_in_the_tables_bounds(f: SamplingField) -> None:
    app = PanelApp()
    async with app.run_test(size=(60, 30)) as pilot:
        panel = app.query_one(SamplingPanel)
        box = app.query_one(f"#sampling-{f.name}", Input)
        for value, good in edge_values(f):
            panel.sampling = Sampling()
            await pilot.pause()
            box.value = repr(value)
            assert panel.commit(box) == good, (f.name, value)
            if good:
                assert getattr(panel.sampling, f.name) == value
            else:
                assert panel.sampling == Sampling()
                assert f"must be {f.wanted}" in hint(app) and box.has_class("-invalid")
