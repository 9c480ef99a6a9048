"""Training runs for the tests, with and without a screen (no tests in here).

- ``recorded_events``: a fixed, plausible run as the trainer's JSON lines (for the state, snapshots and the benchmark).
- ``FAKE_TRAINER``: a stand-in trainer script that replays such lines, saves on SIGINT like the real one and can
  be told to crash; it starts in milliseconds, so the app's process handling is tested without torch.
- ``write_corpus``: a few KB of English-like text, the same every time.
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

from trainer.events import DoneEvent, EvalEvent, SampleEvent, StartEvent, StepEvent, to_json


WORDS = ("the cat sat on a mat and then the dog ran to the old house by the river where a small boy lived "
         "with his grandmother who told him stories of the sea and ships and storms").split()


def write_corpus(folder: Path, *, files: int = 3, paragraphs: int = 12) -> Path:
    """A few KB of English-like text, the same every time."""
    rng = random.Random(0)
    folder.mkdir(parents=True)
    for i in range(files):
        text = "\n\n".join(" ".join(rng.choice(WORDS) for _ in range(60)).capitalize() + "." for _ in range(paragraphs))
        (folder / f"book{i}.txt").write_text(text + "\n", encoding="utf-8")
    return folder


def recorded_events(*, steps: int = 120, max_steps: int = 300, eval_every: int = 25, done: bool = False,
                    reason: str = "max_steps") -> list[str]:
    """A run of ``steps`` steps out of ``max_steps`` on a 1.2 MB corpus, as JSON lines; ``done``: it ends there, for
    ``reason``."""
    lines = [to_json(StartEvent(name="my-novels", path="/home/reader/.local/share/slmtui/models/my-novels",
                                n_params=7_340_032, corpus="/home/reader/books", corpus_bytes=1_234_567,
                                train_tokens=345_678, val_tokens=18_000, max_steps=max_steps, start_step=0,
                                batch_tokens=8192, device="cpu", dtype="float32"))]
    for step in range(1, steps + 1):
        loss = 2.2 + 6.8 * math.exp(-step / 35) + 0.05 * math.sin(step * 1.7)
        lines.append(to_json(StepEvent(step=step, max_steps=max_steps, epoch=step * 8192 / 345_678, loss=loss,
                                       lr=6e-4, tokens_per_s=4096.0, tokens_seen=step * 8192, elapsed_s=step * 2.0,
                                       eta_s=(max_steps - step) * 2.0)))
        if step % eval_every == 0:
            val = 2.4 + 6.6 * math.exp(-step / 38)
            lines.append(to_json(EvalEvent(step=step, val_loss=val, val_perplexity=math.exp(val), val_bpb=val / 2.9,
                                           best_val_loss=val, improved=True)))
            lines.append(to_json(SampleEvent(step=step, prompt="The",
                                             text=" little girl went down to the river, and the Tin Woodman said")))
    if done:
        lines.append(to_json(DoneEvent(step=steps, path="/home/reader/.local/share/slmtui/models/my-novels",
                                       reason=reason, best_val_loss=2.5, val_bpb=0.86, resume_command=None)))
    return lines


FAKE_TRAINER = r'''
"""A stand-in for `python -m trainer ... --progress jsonl`: replays step events every DELAY seconds."""
import json, os, signal, sys, time

args = sys.argv[1:]
mode = os.environ.get("FAKE_TRAINER_MODE", "run")
delay = float(os.environ.get("FAKE_TRAINER_DELAY", "0.05"))
name = args[args.index("--name") + 1] if "--name" in args else "fake"
out = args[args.index("--out") + 1] if "--out" in args else os.path.join(os.environ.get("SLMTUI_HOME", "."), name)
steps = int(args[args.index("--max-steps") + 1]) if "--max-steps" in args else 100000
start = int(os.environ.get("FAKE_TRAINER_START", "0")) if "--resume" in args else 0
stop = False

def on_sigint(signum, frame):
    global stop
    stop = True

signal.signal(signal.SIGINT, on_sigint)
emit = lambda **e: print(json.dumps(e), flush=True)
if mode == "crash":
    print("Traceback (most recent call last):\n  File \"loop.py\", line 1\nRuntimeError: out of memory", file=sys.stderr)
    sys.exit(1)
emit(event="start", name=os.path.basename(out), path=out, n_params=1000, corpus="bundled", corpus_bytes=100,
     train_tokens=1000, val_tokens=100, max_steps=steps, start_step=start, batch_tokens=64, device="cpu", dtype="float32")
step = start
while step < steps and not stop:
    time.sleep(delay)
    step += 1
    emit(event="step", step=step, max_steps=steps, epoch=step / 10, loss=5.0 / step ** 0.5, lr=1e-3,
         tokens_per_s=1000.0, tokens_seen=step * 64, elapsed_s=step * delay, eta_s=(steps - step) * delay)
resume = f"slm-train --resume --out {out}" if stop else None
emit(event="done", step=step, path=out, reason="interrupted" if stop else "max_steps", best_val_loss=None,
     val_bpb=None, resume_command=resume)
sys.exit(130 if stop else 0)
'''


def fake_trainer(tmp_path: Path) -> list[str]:
    """The command that runs the fake trainer (written into ``tmp_path``)."""
    script = tmp_path / "fake_trainer.py"
    script.write_text(FAKE_TRAINER)
    return [sys.executable, str(script)]
