"""The training screen's live widgets: a number with its label, and the loss chart."""

from __future__ import annotations

import math
import threading

from rich.text import Text
from textual import work
from textual.reactive import reactive
from textual.widget import Widget
from textual.worker import get_current_worker
from textual_plotext import PlotextPlot

CHART_POINTS = 400
"""At most this many training-loss points are drawn (a braille chart has about two per column)."""


class Stat(Widget):
    """One live number with its label above it.

    Drawn by ``render`` rather than made of Labels: a Label's ``update`` re-lays out the whole screen, which
    several times a second is the most expensive thing this screen could do; a reactive only repaints.
    """

    COMPONENT_CLASSES = {"stat--label", "stat--value"}

    value: reactive[str] = reactive("–")
    """What the number reads now."""

    def __init__(self, label: str, *, id: str) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id, classes="stat")
        self.label = label

    def render(self) -> Text:
        return Text.assemble((self.label, self.get_component_rich_style("stat--label")), "\n",
                             (self.value, self.get_component_rich_style("stat--value")),
                             no_wrap=True, overflow="ellipsis")


class SampleText(Widget):
    """The model's latest sample. A fixed height and a reactive, not a Static: updating a Static re-lays out
    the whole screen, and a sample comes at every evaluation."""

    text: reactive[Text] = reactive(Text, always_update=False)
    """What it wrote, the prompt in bold."""

    def render(self) -> Text:
        return self.text


SMOOTHING = 0.8
"""Weight of the past in the training-loss curve (TensorBoard's slider): a batch's loss is noisy."""


def smooth(points: list[tuple[int, float]], weight: float = SMOOTHING) -> list[tuple[int, float]]:
    """Exponential moving average, debiased so the curve starts at the first loss rather than at zero."""
    out, avg = [], 0.0
    for n, (step, value) in enumerate(points, 1):
        avg = weight * avg + (1 - weight) * value
        out.append((step, avg / (1 - weight**n)))
    return out


class LossChart(PlotextPlot):
    """Training loss (a line) and validation loss (points) against the step.

    plotext draws the whole chart in Python (10-30 ms), and PlotextPlot would do it inside ``render``, on the
    event loop, every time the widget repaints. Here a thread worker builds it once per ``draw`` (or resize)
    and ``render`` returns the finished text, so the loop only pastes it in.
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self._data: tuple[list[tuple[int, float]], list[tuple[int, float]]] = ([], [])
        self._rendered: Text | None = None
        self._builds = 0
        """Builds asked for so far: only the latest one's chart is shown, whichever thread finishes last."""
        self._lock = threading.Lock()
        """One build at a time: a cancelled thread worker still runs to its end, and the plot is not thread-safe."""

    def on_mount(self) -> None:
        super().on_mount()
        self.draw([], [])

    def on_resize(self) -> None:
        self._build()

    def draw(self, train: list[tuple[int, float]], val: list[tuple[int, float]]) -> None:
        train = smooth(train)
        if len(train) > CHART_POINTS:  # the mean of each bucket: the curve keeps its shape, the cost stays flat
            size = math.ceil(len(train) / CHART_POINTS)
            buckets = [train[i : i + size] for i in range(0, len(train), size)]
            train = [(bucket[-1][0], sum(v for _, v in bucket) / len(bucket)) for bucket in buckets]
        self._data = (list(train), list(val))
        self._build()

    def _build(self) -> None:
        """Build the chart in a thread, from what is read here, on the event loop: the widget's size and the app's
        theme are not thread-safe (reading ``size`` while the layout is stale arranges the screen, in that thread)."""
        width, height = self.size
        if not width or not height:
            return
        self._builds += 1
        self._build_in_thread(self._builds, width, height, self._data, self._get_plotext_theme_name(self.app.theme))

    @work(thread=True, exclusive=True, group="loss-chart")
    def _build_in_thread(self, build: int, width: int, height: int,
                         data: tuple[list[tuple[int, float]], list[tuple[int, float]]], theme: str) -> None:
        train, val = data
        with self._lock:
            plt = self.plt
            plt.clear_data()
            plt.xlabel("step")
            legend = height >= 12  # in a small chart the legend would hide the curves
            if train:
                plt.plot([s for s, _ in train], [v for _, v in train], label="train (smoothed)" if legend else None,
                         marker="braille", color="cyan")
            if val:
                plt.plot([s for s, _ in val], [v for _, v in val], label="validation" if legend else None,
                         marker="dot", color="orange")
            plt.title("" if train or val else "loss: waiting for the first step")
            plt.plotsize(width, height)
            plt._set_size(width, height)  # as PlotextPlot.render does (textual-plotext issue 5)
            plt.theme(theme)
            text = Text.from_ansi(plt.build())
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show, build, text)

    def _show(self, build: int, text: Text) -> None:
        if build != self._builds:
            return  # a later build is on its way (a cancelled worker may still get here between its check and this)
        self._rendered = text
        self.refresh()

    def render(self) -> Text:
        return self._rendered if self._rendered is not None else Text("")
