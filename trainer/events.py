"""Progress events <-> JSON lines: the one contract between the trainer and the TUI.

One JSON object per line, ``{"event": "start" | "step" | "eval" | "sample" | "checkpoint" | "done" |
"error", ...}``. The TUI reads the trainer's stdout line by line and turns each back into a dataclass.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class StartEvent:
    """The run as planned: what is trained on what, and for how long."""

    name: str
    path: str
    n_params: int
    corpus: str
    corpus_bytes: int
    train_tokens: int
    val_tokens: int
    max_steps: int
    start_step: int
    batch_tokens: int
    device: str
    dtype: str
    event: str = "start"


@dataclass(frozen=True)
class StepEvent:
    step: int
    max_steps: int
    epoch: float
    loss: float
    lr: float
    tokens_per_s: float
    tokens_seen: int
    elapsed_s: float
    eta_s: float | None
    event: str = "step"


@dataclass(frozen=True)
class EvalEvent:
    step: int
    val_loss: float
    val_perplexity: float
    val_bpb: float
    best_val_loss: float
    improved: bool
    before: bool = False
    """The starting model of a fine-tune (--init-from) scored at step 0, before any training: the "before"."""
    heldout_loss: float | None = None
    """On whole books the run never trains on (--val-books); None without them."""
    heldout_bpb: float | None = None
    event: str = "eval"


@dataclass(frozen=True)
class SampleEvent:
    step: int
    prompt: str
    text: str
    event: str = "sample"


@dataclass(frozen=True)
class CheckpointEvent:
    step: int
    path: str
    event: str = "checkpoint"


@dataclass(frozen=True)
class DoneEvent:
    step: int
    path: str
    reason: str
    """max_steps, epochs, time_limit, early_stop, or interrupted (resumable)."""
    best_val_loss: float | None
    val_bpb: float | None
    resume_command: str | None
    parent_val_bpb: float | None = None
    """A fine-tune's parent on the same held-out text (its step-0 score): the run's "before"."""
    heldout_bpb: float | None = None
    event: str = "done"


@dataclass(frozen=True)
class ErrorEvent:
    message: str
    event: str = "error"


Event = StartEvent | StepEvent | EvalEvent | SampleEvent | CheckpointEvent | DoneEvent | ErrorEvent
EVENT_TYPES: dict[str, type] = {
    cls.event: cls  # type: ignore[attr-defined]
    for cls in (StartEvent, StepEvent, EvalEvent, SampleEvent, CheckpointEvent, DoneEvent, ErrorEvent)
}


def to_json(event: Event) -> str:
    return json.dumps(asdict(event), ensure_ascii=False)


def from_json(line: str) -> Event:
    """Parse one line; unknown keys are ignored so an older TUI can read a newer trainer.

    Anything that is not an event (a stray print, a torn line, a missing field) raises ValueError,
    the one exception a reader has to catch.
    """
    data = json.loads(line)
    if not isinstance(data, dict) or data.get("event") not in EVENT_TYPES:
        raise ValueError(f"not a trainer event: {line[:80]!r}")
    cls = EVENT_TYPES[data["event"]]
    known = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in known})
    except TypeError as e:  # a required field is missing
        raise ValueError(f"not a complete {data['event']} event ({e}): {line[:80]!r}") from e
