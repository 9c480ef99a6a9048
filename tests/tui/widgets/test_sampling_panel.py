"""The sampling panel on its own: one input per field of the table, with the table's label, bounds and hint, and
exactly the table's values accepted."""

from __future__ import annotations

import math

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Collapsible, Input, Label, Static
from textual.widgets._collapsible import CollapsibleTitle

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


async def test_the_list_settings_are_edited_as_one_line() -> None:
    """Banned phrases, biases and DRY's breakers: comma between, escapes for a comma or a newline, each item
    checked in the table's words; a bad one is refused and the sampling kept."""
    app = PanelApp()
    async with app.run_test(size=(60, 40)) as pilot:
        panel = app.query_one(SamplingPanel)
        breakers = app.query_one("#sampling-dry_breakers", Input)
        assert breakers.value == '\\n, :, ", *'  # the default, as the box shows it
        bans = app.query_one("#sampling-banned_phrases", Input)
        bans.value = "the sea,  Café , a\\, b"
        assert panel.commit(bans)
        assert panel.sampling.banned_phrases == ("the sea", "Café", "a, b")
        bias = app.query_one("#sampling-logit_bias", Input)
        bias.value = "dragon=5, castle=-100"
        assert panel.commit(bias) and panel.sampling.logit_bias == (("dragon", 5.0), ("castle", -100.0))
        panel.sampling = Sampling(logit_bias=(("x=y", 1.5),), dry_breakers=(",", "\n"))
        await pilot.pause()
        assert bias.value == "x=y=1.5" and breakers.value == "\\,, \\n"
        kept = panel.sampling
        bias.value = "dragon=500"
        assert not panel.commit(bias) and panel.sampling == kept
        assert "the bias of 'dragon' must be a number from -100 to 100" in hint(app) and bias.has_class("-invalid")
        bans.value = "x" * 81
        assert not panel.commit(bans) and "a banned phrase must be 1 to 80 characters" in hint(app)
        bans.value = ""
        assert panel.commit(bans) and panel.sampling.banned_phrases == ()


async def test_the_rules_fold_away_and_open_from_the_keyboard() -> None:
    """DRY, XTC, bans and biases live in a fold (the panel stays short at 80x24) whose title says which are on."""
    app = PanelApp()
    async with app.run_test(size=(60, 40)) as pilot:
        panel = app.query_one(SamplingPanel)
        fold = app.query_one("#sampling-rules", Collapsible)
        assert fold.collapsed
        assert fold.title == "rules: DRY, XTC, bans off"
        fold.query_one(CollapsibleTitle).focus()
        await pilot.press("enter")
        assert not fold.collapsed
        box = app.query_one("#sampling-dry_multiplier", Input)
        box.focus()
        await pilot.press("ctrl+a", *"0.8", "enter")  # select_on_focus: typing replaces the value
        await pilot.pause()
        assert panel.sampling.dry_multiplier == 0.8
        panel.sampling = Sampling(dry_multiplier=0.8, xtc_probability=0.5, banned_phrases=("a", "b"),
                                  logit_bias=(("c", 1.0),))
        await pilot.pause()
        assert fold.title == "rules: dry 0.8 · xtc 0.5 · 2 banned · 1 biased"
