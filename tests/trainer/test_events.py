"""trainer/events.py: the JSON-lines contract between the trainer and the TUI."""

from __future__ import annotations

import dataclasses
import json

import pytest

from trainer.events import (
    EVENT_TYPES,
    CheckpointEvent,
    DoneEvent,
    ErrorEvent,
    EvalEvent,
    SampleEvent,
    StartEvent,
    StepEvent,
    from_json,
    to_json,
)

EXAMPLES = [
    StartEvent(name="m", path="/x/m", n_params=169728, corpus="bundled", corpus_bytes=25598, train_tokens=10588,
               val_tokens=505, max_steps=50, start_step=0, batch_tokens=512, device="cpu", dtype="bfloat16"),
    StepEvent(step=3, max_steps=50, epoch=0.15, loss=6.0650267, lr=0.0027421729424061793, tokens_per_s=15500.5,
              tokens_seen=1536, elapsed_s=0.25, eta_s=12.5),
    StepEvent(step=3, max_steps=0, epoch=0.15, loss=6.0, lr=0.003, tokens_per_s=1.0, tokens_seen=1, elapsed_s=0.1,
              eta_s=None),
    EvalEvent(step=25, val_loss=5.12, val_perplexity=167.2, val_bpb=3.4, best_val_loss=5.12, improved=True),
    SampleEvent(step=25, prompt="The", text=" Mole said, ‘Oh—\n\n“quite” so!’ 🐀"),
    CheckpointEvent(step=25, path="/x/m"),
    DoneEvent(step=50, path="/x/m", reason="interrupted", best_val_loss=4.96, val_bpb=3.29,
              resume_command="slm-train --resume --out /x/m"),
    DoneEvent(step=0, path="/x/m", reason="max_steps", best_val_loss=None, val_bpb=None, resume_command=None),
    ErrorEvent(message="corpus not found: /nope"),
]


def test_examples_cover_every_event_type() -> None:
    assert {e.event for e in EXAMPLES} == set(EVENT_TYPES)
    assert set(EVENT_TYPES) == {"start", "step", "eval", "sample", "checkpoint", "done", "error"}


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.event)
def test_round_trip(event: object) -> None:
    line = to_json(event)  # type: ignore[arg-type]
    assert "\n" not in line  # one event, one line, even with newlines in a sample's text
    data = json.loads(line)
    assert data["event"] == event.event  # type: ignore[attr-defined]
    back = from_json(line)
    assert back == event
    assert type(back) is type(event)


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.event)
def test_unknown_keys_are_ignored(event: object) -> None:
    """A newer trainer may add fields; an older TUI must still read its events."""
    data = json.loads(to_json(event))  # type: ignore[arg-type]
    data["added_in_a_later_version"] = {"nested": [1, 2]}
    data["zzz"] = None
    assert from_json(json.dumps(data)) == event


def test_text_stays_readable() -> None:
    """Non-ASCII text is written as itself, not as \\u escapes, so logs stay readable."""
    line = to_json(SampleEvent(step=1, prompt="É", text="‘naïve’"))
    assert "‘naïve’" in line and "É" in line


@pytest.mark.parametrize(
    "line",
    ['{"event": "bogus", "step": 1}', '{"step": 1}', "[1, 2]", '"step"', "null", "not json at all", "{"],
)
def test_not_an_event_is_a_value_error(line: str) -> None:
    with pytest.raises(ValueError):
        from_json(line)


def test_missing_required_field_is_a_value_error() -> None:
    """ValueError is the one exception a reader of the trainer's stdout has to catch."""
    data = json.loads(to_json(EXAMPLES[1]))
    del data["loss"]
    with pytest.raises(ValueError, match="step"):
        from_json(json.dumps(data))


def test_events_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        EXAMPLES[1].loss = 0.0  # type: ignore[misc]
