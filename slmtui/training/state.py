"""A training run as the app knows it: the request that starts it and the state folded from its events.

Pure data and a reducer (``RunState.apply``), no process and no Textual: tests replay recorded events into it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import trainer.events as trainer_events
from trainer.config import DEFAULT_PRESET, before_after
from trainer.events import CheckpointEvent, DoneEvent, ErrorEvent, EvalEvent, Event, SampleEvent, StartEvent, StepEvent


@dataclass(frozen=True)
class TrainRequest:
    """One run as the training screen describes it; ``argv`` turns it into the trainer's flags."""

    corpus: Path | None = None
    """A folder of .txt/.md files or one file; None: the bundled novels."""
    preset: str = DEFAULT_PRESET
    """What slm-train trains when given none (the training form always names one)."""
    tokenizer: str | None = None
    """gpt2 or bpe:N; None: the preset's default."""
    name: str | None = None
    """Saved as <user data>/models/NAME; None: the trainer picks one from the corpus."""
    init_from: str | None = None
    """Fine-tune this model (a name or folder) instead of training from scratch: ``--init-from``, with the
    trainer's fine-tune defaults (``trainer.config.finetune_config``); preset and tokenizer are the parent's."""
    max_steps: int | None = None
    time_limit_s: float | None = None
    epochs: float | None = None
    resume: Path | None = None
    """Continue the run saved in this model folder (``--resume --out``); the other fields but the budget are
    ignored then, as the trainer reads them from the saved state."""
    extra: tuple[str, ...] = ()
    """More flags, passed as they are (tests use ``--eval-interval``)."""

    def argv(self) -> list[str]:
        if self.resume is not None:
            args = ["--resume", "--out", str(self.resume)]
        else:
            args = ["--init-from", self.init_from] if self.init_from else ["--preset", self.preset]
            if self.corpus is not None:
                args += ["--corpus", str(self.corpus)]
            if self.tokenizer and not self.init_from:
                args += ["--tokenizer", self.tokenizer]
            if self.name:
                args += ["--name", self.name]
        if self.max_steps is not None:
            args += ["--max-steps", str(self.max_steps)]
        if self.time_limit_s is not None:
            args += ["--time-limit", f"{self.time_limit_s:g}s"]
        if self.epochs is not None and self.resume is None:
            args += ["--epochs", f"{self.epochs:g}"]
        return [*args, *self.extra, "--progress", "jsonl"]


@dataclass
class RunState:
    """Everything the training screen shows about the current (or last) run, built from its events.

    Only the event loop changes it; ``version`` goes up on every change, so a screen redraws only when
    something is new.
    """

    status: str = "idle"
    """idle, starting, running, stopping, done, interrupted (saved, resumable) or failed."""
    request: TrainRequest | None = None
    start: StartEvent | None = None
    step: StepEvent | None = None
    eval: EvalEvent | None = None
    sample: SampleEvent | None = None
    before: EvalEvent | None = None
    """A fine-tune's parent scored at step 0 (``EvalEvent.before``)."""
    before_sample: SampleEvent | None = None
    """What the parent wrote at step 0, shown beside the latest sample."""
    checkpoint: CheckpointEvent | None = None
    done: DoneEvent | None = None
    error: str | None = None
    """What went wrong, in the trainer's words (its error event, else the last lines of its stderr)."""
    warnings: list[str] = field(default_factory=list)
    train_loss: list[tuple[int, float]] = field(default_factory=list)
    val_loss: list[tuple[int, float]] = field(default_factory=list)
    returncode: int | None = None
    pid: int | None = None
    run_dir: Path | None = None
    started_at: float = 0.0
    version: int = 0

    @property
    def active(self) -> bool:
        return self.status in ("starting", "running", "stopping")

    @property
    def resumable(self) -> Path | None:
        """The model folder to resume, when the run stopped early and saved."""
        if self.done is not None and self.done.resume_command and self.status == "interrupted":
            return Path(self.done.path)
        return None

    @property
    def change(self) -> str | None:
        """A fine-tune's before and after on the held-out text, in words (``trainer.config.before_after``)."""
        after = self.done.val_bpb if self.done is not None else self.eval.val_bpb if self.eval else None
        before = self.before.val_bpb if self.before is not None else self.done.parent_val_bpb if self.done else None
        return before_after(before, after)  # while it runs: the latest evaluation; at the end: the best

    @property
    def steps(self) -> tuple[int, int]:
        """(the step reached, the steps planned); 0 planned: not known yet (the trainer is preparing)."""
        step, start = self.step, self.start
        planned = step.max_steps if step else start.max_steps if start else 0
        reached = step.step if step else start.start_step if start else 0
        if self.done is not None:
            reached = self.done.step
        return reached, planned

    @property
    def fraction(self) -> float | None:
        """How far the run is, 0 to 1, for the progress bar; None: not known yet. A finished run is whole: a time
        budget, the planned passes or early stopping end it before the last step planned (at 98%, say), and
        "Done" beside a bar short of its end would be a contradiction."""
        if self.status == "done":
            return 1.0
        reached, planned = self.steps
        if planned:
            return min(1.0, reached / planned)
        return None if self.active else 0.0

    @property
    def out(self) -> Path | None:
        for ev in (self.done, self.checkpoint, self.start):
            if ev is not None:
                return Path(ev.path)
        return None

    def apply(self, event: Event) -> None:
        """Fold one trainer event into the state."""
        if isinstance(event, StartEvent):
            self.start = event
            self.status = "running"
            # A resumed run starts where the saved one stopped: keep the curve up to there, drop the rest.
            self.train_loss = [p for p in self.train_loss if p[0] <= event.start_step]
            self.val_loss = [p for p in self.val_loss if p[0] <= event.start_step]
        elif isinstance(event, StepEvent):
            self.step = event
            if math.isfinite(event.loss):
                self.train_loss.append((event.step, event.loss))
        elif isinstance(event, EvalEvent):
            self.eval = event
            if event.before:
                self.before = event
            self.val_loss.append((event.step, event.val_loss))
        elif isinstance(event, SampleEvent):
            self.sample = event
            if self.before is not None and event.step == self.before.step and self.before_sample is None:
                self.before_sample = event
        elif isinstance(event, CheckpointEvent):
            self.checkpoint = event
        elif isinstance(event, DoneEvent):
            self.done = event
            self.status = "interrupted" if event.resume_command else "done"
        elif isinstance(event, ErrorEvent):
            self.error = event.message
            self.status = "failed"
        self.version += 1


def read_history(path: Path) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(step, training loss) and (step, validation loss) from a model folder's metrics.jsonl (trainer events)."""
    train: list[tuple[int, float]] = []
    val: list[tuple[int, float]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return train, val
    for line in lines:
        try:
            event = trainer_events.from_json(line)
        except (ValueError, TypeError):
            continue
        if isinstance(event, StepEvent) and math.isfinite(event.loss):
            train.append((event.step, event.loss))
        elif isinstance(event, EvalEvent):
            val.append((event.step, event.val_loss))
    return train, val
