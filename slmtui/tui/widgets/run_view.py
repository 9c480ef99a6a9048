"""The training screen's live view: what the run is doing, its numbers, progress, loss chart and latest sample.

The screen calls ``draw(state)`` when the run's state moved; everything is set only when it changed, since an
update that re-lays out the screen is the costliest thing a live view can do four times a second.
"""

from __future__ import annotations

import math
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.widgets import ProgressBar, Static

from slmtui.format import human_duration
from slmtui.training.state import RunState
from slmtui.tui.widgets.training import LossChart, SampleText, Stat
from slmtui.tui.widgets.training_text import describe_status

PROGRESS_TOTAL = 1000
"""The bar's scale: ``RunState.fraction`` in thousandths (the bar shows whole percents)."""
CHART_REFRESH_S = 0.5
"""The chart is the costly part (plotext draws it whole, ~10 ms): twice a second is live enough."""


class RunView(Vertical):
    """Status, numbers, progress bar, loss chart and sample of the current (or last) run."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.stats: dict[str | None, Stat] = {}
        self._status: Text | None = None
        self._drawn_points = (-1, -1)
        self._chart_drawn_at = 0.0

    def compose(self) -> ComposeResult:
        yield Static("", id="train-status")
        with Grid(id="train-stats"):
            yield Stat("step", id="stat-step")
            yield Stat("epoch", id="stat-epoch")
            yield Stat("train loss", id="stat-loss")
            yield Stat("val loss", id="stat-val")
            yield Stat("perplexity", id="stat-ppl")
            yield Stat("tokens/s", id="stat-speed")
            yield Stat("elapsed", id="stat-elapsed")
            yield Stat("ETA", id="stat-eta")
        yield ProgressBar(total=None, show_eta=False, id="train-progress")
        yield LossChart(id="train-chart")
        with Horizontal(id="train-samples"):
            yield SampleText(id="train-sample-before", classes="sample-pane")
            yield SampleText(id="train-sample", classes="sample-pane")

    def on_mount(self) -> None:
        self.stats = {s.id: s for s in self.query(Stat)}

    def reset(self) -> None:
        """A new run: its chart is drawn from its first point."""
        self._drawn_points = (-1, -1)

    def draw(self, state: RunState) -> None:
        text = describe_status(state)
        status = self.query_one("#train-status", Static)
        if text != self._status:  # an update re-lays out the screen (heights are auto)
            self._status = text
            status.update(text)
        status.set_class(state.status == "failed", "-error")
        status.set_class(state.status == "done", "-done")
        step = state.step
        start = state.start
        stat = self.stats
        current, max_steps = state.steps
        stat["stat-step"].value = f"{current:,} / {max_steps:,}" if max_steps else (f"{current:,}" if start else "–")
        stat["stat-epoch"].value = f"{step.epoch:.2f}" if step else "–"
        stat["stat-loss"].value = f"{step.loss:.3f}" if step and math.isfinite(step.loss) else "–"
        if state.eval is not None:
            stat["stat-val"].value = f"{state.eval.val_loss:.3f}"
            stat["stat-ppl"].value = f"{state.eval.val_perplexity:,.1f}"
        else:
            stat["stat-val"].value = "–"
            train_ppl = math.exp(min(step.loss, 50)) if step and math.isfinite(step.loss) else None
            stat["stat-ppl"].value = f"{train_ppl:,.1f}" if train_ppl is not None else "–"
        stat["stat-speed"].value = f"{step.tokens_per_s:,.0f}" if step else "–"
        stat["stat-elapsed"].value = human_duration(step.elapsed_s) if step else "–"
        eta = step.eta_s if step and state.active else (0.0 if state.status == "done" else None)
        stat["stat-eta"].value = human_duration(eta) if eta is not None else "–"
        bar = self.query_one(ProgressBar)
        fraction = state.fraction
        if fraction is None:
            bar.update(total=None)  # the indeterminate pulse: preparing, steps unknown yet
        else:
            bar.update(total=PROGRESS_TOTAL, progress=round(fraction * PROGRESS_TOTAL))
        points = (len(state.train_loss), len(state.val_loss))
        now = time.monotonic()
        if points != self._drawn_points and (now - self._chart_drawn_at >= CHART_REFRESH_S or not state.active):
            self._drawn_points = points
            self._chart_drawn_at = now
            self.query_one(LossChart).draw(state.train_loss, state.val_loss)
        before = self.query_one("#train-sample-before", SampleText)
        shown = state.before_sample is not None and state.sample is not state.before_sample
        before.set_class(shown, "-shown")
        if state.before_sample is not None:
            before.border_title = "before: the starting model"
            before.text = _sample_text(state.before_sample.prompt, state.before_sample.text)
        sample = self.query_one("#train-sample", SampleText)
        if state.sample is not None:
            sample.border_title = f"sample at step {state.sample.step}"
            sample.text = _sample_text(state.sample.prompt, state.sample.text)
        else:
            sample.border_title = "sample"
            sample.text = Text("The model writes a few words here at every evaluation.", style="dim")



def _sample_text(prompt: str, text: str) -> Text:
    return Text.assemble((prompt, "bold"), text.replace("\n", " ⏎ "))
