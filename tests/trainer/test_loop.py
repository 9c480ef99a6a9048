"""trainer/loop.py in-process: schedule, optimizer groups, batches, exact resume, time budget.

The runs use the ``tiny`` preset (2 layers, 64 wide, 512-token BPE) on ~25 KB of a bundled book,
so a 30-step run takes a second or two on a busy CPU. One uninterrupted run (with dropout, so that
resuming has RNG state to restore) is shared by the tests as their reference.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from slmtui.core.errors import SlmError
from slmtui.core.model_folder import METRICS, TRAIN_STATE, read_model_info
from slmtui.engine.model import GPT
from slmtui.engine.model_io import load_model_dir
from trainer.config import PRESETS, TrainConfig, preset
from trainer.data import Batches
from trainer.events import CheckpointEvent, DoneEvent, EvalEvent, Event, StartEvent, StepEvent
from trainer.loop import RunSpec, lr_at, make_optimizer, train

from excerpts import book_excerpt

N_STEPS = 30


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "willows.txt"
    path.write_text(book_excerpt("grahame-wind-in-the-willows.txt", 24_000), encoding="utf-8")
    return path


class Recorder:
    """Collects events; optionally asks the run to stop once step ``stop_at`` is done."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.events: list[Event] = []
        self.stop_at = stop_at

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def should_stop(self) -> bool:
        return self.stop_at is not None and any(isinstance(e, StepEvent) and e.step >= self.stop_at for e in self.events)

    @property
    def losses(self) -> dict[int, float]:
        return {e.step: e.loss for e in self.events if isinstance(e, StepEvent)}

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def spec_for(out: Path, corpus: Path, *, resume: bool = False, dropout: float = 0.0, **train: object) -> RunSpec:
    cfg = replace(PRESETS["tiny"].train, **{"max_steps": N_STEPS, **train})  # type: ignore[arg-type]
    return RunSpec(out=out, corpus=corpus, model=replace(preset("tiny").model, dropout=dropout), train=cfg,
                   tokenizer="bpe:512", preset="tiny", resume=resume)


def run(spec: RunSpec, stop_at: int | None = None) -> tuple[Recorder, DoneEvent]:
    rec = Recorder(stop_at)
    done = train(spec, rec, should_stop=rec.should_stop)
    return rec, done


# --------------------------------------------------------------------------- pieces


def test_lr_warms_up_linearly_then_decays_by_cosine_to_the_floor() -> None:
    cfg = TrainConfig(lr=1e-3, warmup_steps=100, min_lr_ratio=0.1)
    assert lr_at(0, cfg, 1000) == pytest.approx(1e-5)
    assert lr_at(49, cfg, 1000) == pytest.approx(5e-4)
    assert lr_at(99, cfg, 1000) == pytest.approx(1e-3)
    assert lr_at(100, cfg, 1000) == pytest.approx(1e-3)
    assert lr_at(550, cfg, 1000) == pytest.approx(1e-4 + 0.5 * 9e-4)  # half-way down the cosine
    assert lr_at(1000, cfg, 1000) == pytest.approx(1e-4)
    assert lr_at(5000, cfg, 1000) == pytest.approx(1e-4)  # never below the floor
    lrs = [lr_at(s, cfg, 1000) for s in range(100, 1001)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_wsd_holds_the_peak_then_decays_linearly_to_the_floor() -> None:
    cfg = TrainConfig(lr=1e-3, warmup_steps=100, min_lr_ratio=0.1, schedule="wsd", decay_fraction=0.2)
    assert lr_at(49, cfg, 1000) == pytest.approx(5e-4)  # the same warmup as cosine's
    assert lr_at(100, cfg, 1000) == lr_at(799, cfg, 1000) == pytest.approx(1e-3)
    assert lr_at(900, cfg, 1000) == pytest.approx(1e-3 - 0.5 * 9e-4)  # half-way down the last fifth
    assert lr_at(1000, cfg, 1000) == lr_at(5000, cfg, 1000) == pytest.approx(1e-4)
    # Before its decay, the rate does not depend on the horizon: what makes a longer --max-steps exact on resume.
    assert [lr_at(s, cfg, 1000) for s in range(800)] == [lr_at(s, cfg, 4000) for s in range(800)]
    lrs = [lr_at(s, cfg, 1000) for s in range(100, 1001)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    with pytest.raises(SlmError, match="schedule"):
        TrainConfig(schedule="linear")


def test_a_short_run_shortens_its_warmup() -> None:
    """40 steps with the seed preset's 1000 warmup steps would never reach the peak."""
    cfg = PRESETS["seed"].train
    lrs = [lr_at(s, cfg, 40) for s in range(40)]
    assert max(lrs) == pytest.approx(cfg.lr)
    assert lrs[-1] < 0.2 * cfg.lr


def test_adamw_decays_matrices_only() -> None:
    model = GPT(preset("tiny").model)
    opt = make_optimizer(model, TrainConfig(weight_decay=0.1), torch.device("cpu"))
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    names = {id(p): n for n, p in model.named_parameters()}
    assert decayed, "no parameter is decayed"
    for pid, name in names.items():
        p = dict(model.named_parameters())[name]
        assert (pid in decayed) == (p.dim() >= 2), name
    assert all(g["weight_decay"] == 0 for g in opt.param_groups if any(p.dim() < 2 for p in g["params"]))
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))


def test_batches_are_a_pure_function_of_seed_and_step_and_shard_by_rank() -> None:
    import numpy as np

    data = np.arange(5000, dtype=np.uint16)
    whole = Batches(data, block_size=16, batch_size=8, seed=7)
    x1, y1 = whole.get(3)
    x2, y2 = Batches(data, block_size=16, batch_size=8, seed=7).get(3)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert torch.equal(y1[:, :-1], x1[:, 1:])  # targets are the inputs shifted by one
    assert not torch.equal(whole.get(4)[0], x1)
    assert not torch.equal(Batches(data, block_size=16, batch_size=8, seed=8).get(3)[0], x1)
    halves = [Batches(data, block_size=16, batch_size=4, seed=7, rank=r, world_size=2).get(3)[0] for r in (0, 1)]
    assert torch.equal(torch.cat(halves), x1)  # two ranks see exactly the single process's batch


def test_batches_take_any_integer_seed_and_distinct_seeds_differ() -> None:
    """--seed 2**64 used to overflow, and 1 and 2**32 + 1 drew the same batches."""
    import numpy as np

    data = np.arange(5000, dtype=np.uint16)
    firsts = [Batches(data, block_size=16, batch_size=8, seed=s).get(0)[0] for s in (1, 2**32 + 1, 2**64, -5)]
    assert all(not torch.equal(a, b) for i, a in enumerate(firsts) for b in firsts[i + 1:])


# --------------------------------------------------------------------------- a run


@pytest.fixture(scope="module")
def reference(corpus_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Recorder, DoneEvent, Path]:
    """One uninterrupted 30-step run with dropout 0.1, in its own SLMTUI_HOME."""
    home = tmp_path_factory.mktemp("reference-home")
    out = home / "models" / "ref"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLMTUI_HOME", str(home))
        rec, done = run(spec_for(out, corpus_file, dropout=0.1))
    return rec, done, out


def test_run_reports_and_saves(reference: tuple[Recorder, DoneEvent, Path]) -> None:
    rec, done, out = reference
    (start,) = rec.of(StartEvent)
    assert start.max_steps == N_STEPS and start.start_step == 0 and start.batch_tokens == 8 * 64
    assert sorted(rec.losses) == list(range(1, N_STEPS + 1))
    assert rec.losses[N_STEPS] < rec.losses[1] - 0.5, "the loss did not fall"
    assert [e.step for e in rec.of(EvalEvent)] == [25, N_STEPS]  # every eval_interval, and at the end
    assert done.reason == "max_steps" and done.resume_command is None and done.step == N_STEPS
    assert math.isfinite(done.best_val_loss) and done.best_val_loss == min(e.val_loss for e in rec.of(EvalEvent))
    assert rec.events[-1] == done and rec.of(CheckpointEvent)
    assert sorted(p.name for p in out.parent.iterdir()) == ["ref"]  # no temporary folder left
    steps = [json.loads(line) for line in (out / METRICS).read_text().splitlines()]
    assert [s["step"] for s in steps if s["event"] == "step"] == list(range(1, N_STEPS + 1))
    info = load_model_dir(out).info
    assert info.training["val_loss"] == pytest.approx(done.best_val_loss)
    assert info.training["steps"] == N_STEPS and info.training["tokens_seen"] == N_STEPS * 8 * 64


def test_resumed_run_matches_an_uninterrupted_one(
    reference: tuple[Recorder, DoneEvent, Path], corpus_file: Path, tmp_path: Path
) -> None:
    """Stopped at step 13 (between evaluations) and resumed: the same losses, step for step.

    Dropout is on, so this also checks that the RNG state is saved and restored.
    """
    ref, ref_done, _ = reference
    out = tmp_path / "run"
    first, done = run(spec_for(out, corpus_file, dropout=0.1), stop_at=13)
    assert done.reason == "interrupted" and done.step == 13
    assert done.resume_command == f"slm-train --resume --out {out}"
    assert max(first.losses) == 13
    for step in range(1, 14):
        assert first.losses[step] == pytest.approx(ref.losses[step], abs=1e-4), step

    state = torch.load(out / TRAIN_STATE, map_location="cpu", weights_only=True)
    assert state["step"] == 13 and state["tokens_seen"] == 13 * 8 * 64
    assert isinstance(state["optimizer"], dict) and isinstance(state["rng_cpu"], torch.Tensor)

    # A resume takes everything from the saved state; whatever the spec says about the run is ignored.
    resumed, done2 = run(RunSpec(out=out, corpus=Path("/nonexistent"), model=preset("seed").model,
                                 train=PRESETS["seed"].train, resume=True))
    assert resumed.of(StartEvent)[0].start_step == 13
    assert sorted(resumed.losses) == list(range(14, N_STEPS + 1))
    for step in range(14, N_STEPS + 1):
        assert resumed.losses[step] == pytest.approx(ref.losses[step], abs=1e-4), step
    assert [(e.step, round(e.val_loss, 4)) for e in resumed.of(EvalEvent)] == \
        [(e.step, round(e.val_loss, 4)) for e in ref.of(EvalEvent)]
    assert done2.best_val_loss == pytest.approx(ref_done.best_val_loss, abs=1e-4)
    # metrics.jsonl holds each step once: the first part's and the resumed part's.
    lines = [json.loads(line) for line in (out / METRICS).read_text().splitlines()]
    assert [m["step"] for m in lines if m["event"] == "step"] == list(range(1, N_STEPS + 1))
    info = load_model_dir(out).info
    assert info.training["steps"] == N_STEPS and info.training["tokens_seen"] == N_STEPS * 8 * 64


def test_resume_after_stopping_at_an_evaluation(
    reference: tuple[Recorder, DoneEvent, Path], corpus_file: Path, tmp_path: Path
) -> None:
    """Stopped right after the step-25 evaluation: the early-stopping count and best model carry over."""
    ref, ref_done, _ = reference
    out = tmp_path / "run"
    _, done = run(spec_for(out, corpus_file, dropout=0.1), stop_at=25)
    assert done.step == 25
    resumed, done2 = run(spec_for(out, corpus_file, resume=True))
    assert resumed.losses[N_STEPS] == pytest.approx(ref.losses[N_STEPS], abs=1e-4)
    assert [e.step for e in resumed.of(EvalEvent)] == [N_STEPS]  # step 25's evaluation is not repeated
    assert done2.reason == "max_steps" and done2.resume_command is None
    assert done2.best_val_loss == pytest.approx(ref_done.best_val_loss, abs=1e-4)


def test_a_wsd_run_resumed_with_a_longer_horizon_matches_one_planned_that_long(corpus_file: Path, tmp_path: Path) -> None:
    """Planned for 30 steps, stopped at 13 (its decay starts at 24), resumed for 40: step for step the run that
    was planned for 40 from the start, and no warning; a cosine run's rate would move, and the user is told."""
    ref, _ = run(spec_for(tmp_path / "ref", corpus_file, schedule="wsd", max_steps=40))
    out = tmp_path / "run"
    run(spec_for(out, corpus_file, schedule="wsd", max_steps=30), stop_at=13)
    warnings: list[str] = []
    rec = Recorder()
    train(spec_for(out, corpus_file, resume=True, max_steps=40), rec, warn=warnings.append)
    assert sorted(rec.losses) == list(range(14, 41)) and not warnings
    for step in range(14, 41):
        assert rec.losses[step] == pytest.approx(ref.losses[step], abs=1e-4), step

    cosine = tmp_path / "cosine"
    run(spec_for(cosine, corpus_file, max_steps=30), stop_at=13)
    train(spec_for(cosine, corpus_file, resume=True, max_steps=40), Recorder(), warn=warnings.append)
    assert len(warnings) == 1 and "moves the learning rate at step 13" in warnings[0]


def test_resume_without_a_saved_run_is_a_clear_error(tmp_path: Path) -> None:
    from slmtui.core.errors import SlmError

    with pytest.raises(SlmError, match="nothing to resume"):
        run(spec_for(tmp_path / "nothing", tmp_path, resume=True))
    assert not (tmp_path / "nothing").exists()


class FakeClock:
    """The loop's clock, moving 10 ms each time it is read: the same steps fit in a budget on any machine."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 0.01
        return self.now


def test_time_budget_alone_sets_the_schedule(corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With only --time-limit, the cosine is stretched over the steps that fit in the time."""
    import trainer.loop

    monkeypatch.setattr(trainer.loop, "time", FakeClock())
    # No evaluation inside the budget: its cost, unknown before the first one, would cut the run short.
    rec, done = run(spec_for(tmp_path / "t", corpus_file, max_steps=None, time_limit_s=3.0, eval_interval=10_000))
    steps = rec.of(StepEvent)
    assert done.reason == "time_limit"
    assert len(steps) > 20, "too few steps to estimate the pace"
    assert steps[-1].elapsed_s < 3.0 + 1.0
    peak = PRESETS["tiny"].train.lr
    assert max(s.lr for s in steps) == pytest.approx(peak)
    assert steps[-1].lr < 0.6 * peak, "the schedule's horizon was not brought in to the time limit"


def fox_corpus(tmp_path: Path, paragraphs: int = 300) -> Path:
    """A small corpus a bpe:300 tokenizer can learn: many short passes' worth of one sentence, numbered."""
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n\n".join(f"Paragraph {i}: the quick brown fox jumps over the lazy dog." for i in range(paragraphs)))
    return corpus


def time_budget_lrs(tmp_path: Path, cfg: TrainConfig) -> list[float]:
    """The learning rate of every step of a tiny run with ``cfg`` (a time budget: patch the loop's clock first)."""
    lrs: list[float] = []
    spec = RunSpec(out=tmp_path / "m", corpus=fox_corpus(tmp_path), model=preset("tiny").model, train=cfg, tokenizer="bpe:300",
                   preset="tiny")
    train(spec, lambda e: lrs.append(e.lr) if isinstance(e, StepEvent) else None)
    return lrs


def test_a_time_budget_never_jumps_the_learning_rate_during_warmup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With only --time-limit the horizon is re-estimated every 10 steps; a warmup that fits must go on unchanged."""
    import trainer.loop

    monkeypatch.setattr(trainer.loop, "time", FakeClock())
    cfg = replace(PRESETS["tiny"].train, warmup_steps=40, time_limit_s=5.0, eval_interval=1000)
    lrs = time_budget_lrs(tmp_path, cfg)
    warm = lrs[: min(len(lrs), 40)]
    assert len(lrs) > 80, "the budget must hold twice the warmup, or the warmup is cut (next test)"
    assert all(b - a == pytest.approx(cfg.lr / 40) for a, b in zip(warm, warm[1:]))


def test_a_time_budget_too_short_for_its_warmup_cuts_it_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A preset's warmup longer than half the steps a budget buys is cut at the first horizon, as a step
    budget's is, and the rate then climbs evenly to its peak: the run does not spend its budget warming up."""
    import trainer.loop

    monkeypatch.setattr(trainer.loop, "time", FakeClock())
    cfg = replace(PRESETS["tiny"].train, warmup_steps=1000, time_limit_s=8.0, eval_interval=1000)
    lrs = time_budget_lrs(tmp_path, cfg)
    top = lrs.index(max(lrs))
    assert max(lrs) == pytest.approx(cfg.lr), "the run never reached its peak rate"
    assert top < len(lrs) // 4, f"the warmup took {top} of the run's {len(lrs)} steps"
    first = trainer.loop.FIRST_PACE_STEPS
    climb = [b - a for a, b in zip(lrs[first:top + 1], lrs[first + 1:top + 1])]
    assert climb and all(d == pytest.approx(climb[0]) for d in climb), "the rate jumped after the cut"


@pytest.mark.slow
def test_a_small_corpus_is_evaluated_at_least_as_often_as_asked_per_pass(tmp_path: Path) -> None:
    """evals_per_pass shrinks the interval for a corpus the run passes through many times (and never widens it)."""
    corpus = fox_corpus(tmp_path, paragraphs=100)
    def spec(out: str, **train: object) -> RunSpec:
        return replace(spec_for(tmp_path / out, corpus, patience=100, **train), tokenizer="bpe:300")

    rec, _ = run(spec("m", evals_per_pass=2.0, eval_interval=25, max_steps=24))
    (start,) = rec.of(StartEvent)
    interval = int(start.train_tokens / start.batch_tokens / 2)
    assert 1 <= interval < 25, "the corpus is too big for this test"
    assert [e.step for e in rec.of(EvalEvent)] == list(range(interval, 25, interval)) + ([24] if 24 % interval else [])
    saved = read_model_info(tmp_path / "m").training["train_config"]
    assert saved["eval_interval"] == interval, "model.toml records the interval the run used"
    rec, _ = run(spec("big", evals_per_pass=0.01, eval_interval=10, max_steps=20))
    assert [e.step for e in rec.of(EvalEvent)] == [10, 20], "a larger interval than asked is never used"


def test_resume_state_round_trips_and_refuses_a_foreign_file(tmp_path: Path) -> None:
    from trainer.train_state import ResumeState

    state = ResumeState(model={"w": torch.ones(2)}, optimizer={"state": {}, "param_groups": []}, step=7,
                        tokens_seen=70, elapsed_s=1.5, best_val_loss=None, best_val_bpb=None, bad_evals=0,
                        max_steps=10, rng_cpu=torch.get_rng_state(), rng_cuda=None, train_config={"lr": 0.1},
                        corpus="bundled", corpus_fingerprint="abc", tokenizer_arg="bpe:512", preset="tiny")
    (tmp_path / TRAIN_STATE).write_bytes(state.save())
    back = ResumeState.load(tmp_path)
    assert back.step == 7 and back.preset == "tiny" and torch.equal(back.model["w"], torch.ones(2))
    torch.save({"step": 1}, tmp_path / TRAIN_STATE)
    with pytest.raises(SlmError, match="not a slmtui training state"):
        ResumeState.load(tmp_path)


def test_mid_run_saves_redraw_the_plot_at_most_once_a_minute_and_the_last_save_always(
        tmp_path: Path, corpus_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each save writes training_metrics.png, but matplotlib draws it only when PLOT_EVERY_S has passed since the
    last drawing (here never, in a run of seconds) and at the run's last save, with every step in it."""
    import trainer.loop

    drawn: list[int] = []

    def draw(lines: list[str]) -> bytes:
        drawn.append(sum('"event": "step"' in line for line in lines))
        return b"\x89PNG drawing %d" % len(drawn)

    monkeypatch.setattr(trainer.loop, "render_metrics_png", draw)
    out = tmp_path / "m"
    rec, done = run(spec_for(out, corpus_file, eval_interval=5))
    assert len(rec.of(CheckpointEvent)) == N_STEPS // 5
    assert drawn == [5, N_STEPS], "the first save draws, the next mid-run ones keep it, the last draws every step"
    assert (out / "training_metrics.png").read_bytes() == b"\x89PNG drawing 2"
