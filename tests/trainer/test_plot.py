"""trainer/plot.py: training_metrics.png from metrics.jsonl, only when matplotlib is installed."""

from __future__ import annotations

import math
import struct
import sys
from pathlib import Path

import pytest

from trainer.events import EvalEvent, SampleEvent, StepEvent, to_json
from trainer.plot import plot_metrics, render_metrics_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _metrics_lines(n_steps: int = 120, eval_every: int = 30) -> list[str]:
    lines = []
    for s in range(1, n_steps + 1):
        loss = 2.0 + 4.0 * math.exp(-s / 40) + 0.1 * math.sin(s)
        lines.append(to_json(StepEvent(step=s, max_steps=n_steps, epoch=s / 50, loss=loss, lr=1e-3,
                                       tokens_per_s=1e4, tokens_seen=512 * s, elapsed_s=0.03 * s, eta_s=1.0)))
        if s % eval_every == 0:
            val = loss + 0.2
            lines.append(to_json(EvalEvent(step=s, val_loss=val, val_perplexity=math.exp(val), val_bpb=val / 1.5,
                                           best_val_loss=val, improved=True)))
            lines.append(to_json(SampleEvent(step=s, prompt="The", text=" end")))
    return lines


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
    return width, height


def test_plot_metrics_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("\n".join(_metrics_lines()) + "\n", encoding="utf-8")
    out = tmp_path / "training_metrics.png"
    assert plot_metrics(metrics, out) is True
    width, height = _png_size(out.read_bytes())
    assert width > height >= 200  # two panels side by side
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl", "training_metrics.png"]  # no temp file


def test_plot_draws_loss_and_validation_perplexity(monkeypatch: pytest.MonkeyPatch) -> None:
    """The two panels of the original's plot: training loss, and validation perplexity."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    drawn: list[Figure] = []
    original = Figure.savefig

    def spy(self: Figure, *args: object, **kwargs: object) -> None:
        drawn.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    lines = _metrics_lines(n_steps=120, eval_every=30)
    assert render_metrics_png(lines) is not None
    (fig,) = drawn
    loss_ax, ppl_ax = fig.axes
    assert "loss" in loss_ax.get_title().lower() and "perplexity" in ppl_ax.get_title().lower()
    # The raw training loss: every step, as logged.
    raw = loss_ax.get_lines()[0]
    assert list(raw.get_xdata()) == list(range(1, 121))
    # Validation perplexity at each evaluation.
    (ppl,) = ppl_ax.get_lines()
    assert list(ppl.get_xdata()) == [30, 60, 90, 120]
    assert list(ppl.get_ydata()) == pytest.approx([math.exp(2.0 + 4.0 * math.exp(-s / 40) + 0.1 * math.sin(s) + 0.2)
                                                   for s in (30, 60, 90, 120)])


def test_torn_or_foreign_lines_are_skipped(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    lines = _metrics_lines(40, 20)
    lines[5] = lines[5][:17]  # a torn line
    lines.insert(3, '{"event": "step", "step": "x"}')
    lines.insert(3, '{"event": "from-the-future", "step": 3}')
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("\n".join(lines), encoding="utf-8")
    assert plot_metrics(metrics, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG_SIGNATURE


def test_nothing_to_plot(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("", encoding="utf-8")
    assert plot_metrics(metrics, tmp_path / "p.png") is False
    assert not (tmp_path / "p.png").exists()


def test_without_matplotlib_it_does_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The `plot` extra is optional: no matplotlib, no plot, no error."""
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib...` raise ImportError
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("\n".join(_metrics_lines()), encoding="utf-8")
    assert render_metrics_png(_metrics_lines()) is None
    assert plot_metrics(metrics, tmp_path / "p.png") is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]
