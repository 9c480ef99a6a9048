"""training_metrics.png: training loss and validation perplexity, as the original plotted them.

matplotlib is optional (the ``plot`` extra), so it is imported only when a plot is drawn, and a
missing matplotlib means no plot rather than an error. The figure is drawn on an Agg canvas
without pyplot: no global backend or figure registry is touched, so it is safe from any thread.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable
from pathlib import Path

from slmtui.core.atomic import write_bytes_atomic

PLOT_FILE = "training_metrics.png"


def _series(lines: Iterable[str]) -> tuple[list[tuple[int, float]], list[tuple[int, float, float]]]:
    """(step, loss) of step events and (step, val_loss, val_perplexity) of eval events.

    Lines that are not events (a torn last line, a newer event type) are skipped: a plot is a
    convenience and never the reason a checkpoint fails.
    """
    steps: list[tuple[int, float]] = []
    evals: list[tuple[int, float, float]] = []
    for line in lines:
        try:
            data = json.loads(line)
            if data.get("event") == "step":
                steps.append((int(data["step"]), float(data["loss"])))
            elif data.get("event") == "eval":
                evals.append((int(data["step"]), float(data["val_loss"]), float(data["val_perplexity"])))
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
    return steps, evals


def render_metrics_png(lines: Iterable[str]) -> bytes | None:
    """The plot of metrics.jsonl's lines as PNG bytes; None without matplotlib or without steps."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    steps, evals = _series(lines)
    if not steps:
        return None

    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_ppl = fig.subplots(1, 2)
    # Fixed margins rather than a layout engine: it is redrawn at every checkpoint, and constrained
    # layout would double the time each drawing takes.
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.92, wspace=0.22)

    x, y = zip(*steps)
    ax_loss.plot(x, y, color="tab:blue", alpha=0.35, linewidth=0.8, label="training loss")
    if len(y) >= 40:
        # The per-step loss is noisy (one batch each): a debiased EMA over ~5% of the run (at most 50
        # steps) shows the trend without lagging behind it.
        beta = 1.0 - 1.0 / min(50.0, len(y) / 20)
        smoothed, ema, n = [], 0.0, 0
        for v in y:
            if math.isfinite(v):
                ema, n = beta * ema + (1.0 - beta) * v, n + 1
            smoothed.append(ema / (1.0 - beta**n) if n else math.nan)
        ax_loss.plot(x, smoothed, color="tab:blue", linewidth=1.5, label="training loss (smoothed)")
    if evals:
        ex, ev_loss, ev_ppl = zip(*evals)
        marker = "o-" if len(evals) <= 60 else "-"  # dots for a few evaluations, a line for many
        ax_loss.plot(ex, ev_loss, marker, color="tab:orange", markersize=3, label="validation loss")
        ax_ppl.plot(ex, ev_ppl, marker, color="tab:green", markersize=3)
        if max(ev_ppl) > 10 * min(ev_ppl):
            ax_ppl.set_yscale("log")  # perplexity falls by orders of magnitude early on
    else:
        ax_ppl.text(0.5, 0.5, "no evaluation yet", ha="center", va="center", transform=ax_ppl.transAxes)
    ax_loss.set(title="Loss", xlabel="step", ylabel="cross-entropy (nats/token)")
    ax_loss.legend(loc="upper right", fontsize="small")
    ax_ppl.set(title="Validation perplexity", xlabel="step", ylabel="perplexity")
    for ax in (ax_loss, ax_ppl):
        ax.grid(True, alpha=0.3)

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def plot_metrics(metrics_jsonl: Path, out_png: Path) -> bool:
    """Draw ``metrics_jsonl`` (training loss, validation perplexity) into ``out_png``.

    Returns False, writing nothing, when matplotlib is not installed (``pip install slmtui[plot]``)
    or the file holds no training steps.
    """
    lines = Path(metrics_jsonl).read_text(encoding="utf-8").splitlines()
    png = render_metrics_png(lines)
    if png is None:
        return False
    write_bytes_atomic(Path(out_png), png)
    return True
