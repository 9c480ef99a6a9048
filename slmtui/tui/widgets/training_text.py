"""The training screen's words: the run being trained and what it is doing, drawn from ``RunState``."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text

from slmtui.format import BUNDLED_CORPUS, human_duration, params
from slmtui.training.state import RunState
from trainer.config import DEFAULT_EPOCHS, FINETUNE_EPOCHS, PRESETS


def describe_run(state: RunState) -> Text:
    """The run being trained, for the side panel while the form is hidden."""
    request, start = state.request, state.start
    rows: list[tuple[str, str]] = []
    name = (start.name if start else request.resume.name if request and request.resume
            else request.name if request else None)
    rows.append(("model", name or "…"))
    if start is not None:
        rows.append(("corpus", BUNDLED_CORPUS if start.corpus == "bundled" else Path(start.corpus).name))
    elif request is not None and request.resume is None:
        rows.append(("corpus", BUNDLED_CORPUS if request.corpus is None else request.corpus.name))
    if request is not None and request.init_from:
        rows.append(("from", Path(request.init_from).name))
        rows.append(("budget", human_duration(request.time_limit_s) if request.time_limit_s else
                     f"{FINETUNE_EPOCHS:g} passes"))
    elif request is not None and request.resume is None:
        rows.append(("preset", request.preset))
        recipe = PRESETS.get(request.preset)
        rows.append(("tokenizer", request.tokenizer or (recipe.tokenizer if recipe else "?")))
        budget = (f"{request.max_steps:,} steps" if request.max_steps else
                  human_duration(request.time_limit_s) if request.time_limit_s else
                  f"{request.epochs or DEFAULT_EPOCHS:g} epochs")
        rows.append(("budget", budget))
    elif request is not None:
        rows.append(("run", "resumed"))
    if start is not None:
        rows.append(("size", f"{params(start.n_params)} params"))
        rows.append(("device", f"{start.device} {start.dtype}"))
    text = Text()
    for label, value in rows:
        text.append(f"{label:<10}", style="dim")
        text.append(f"{value}\n")
    text.rstrip()
    return text


def describe_status(state: RunState) -> Text:
    """One or two lines on what the run is doing, in words."""
    start, done, request = state.start, state.done, state.request
    name = (start.name if start else request.resume.name if request and request.resume
            else request.name if request and request.name else "the model")
    warnings = Text("".join(f"\nskipped {w.removeprefix('skipped ')}" for w in state.warnings[-2:]), style="dim")
    if state.status == "idle":
        return Text("Teach the model you write with your own books (recommended: minutes on a laptop), or "
                    "train a new one from scratch (hours). Start with ctrl+g; it trains in the background: "
                    "Escape to write meanwhile.")
    if state.status == "starting":
        return Text.assemble(f"Starting {name}: reading the corpus, building the tokenizer…", warnings)
    if state.status == "running" and start is not None:
        corpus = f"the {BUNDLED_CORPUS}" if start.corpus == "bundled" else Path(start.corpus).name
        resumed = f", resumed at step {start.start_step:,}" if start.start_step else ""
        change = f"\n{state.change} (before → latest)" if state.change else ""
        return Text.assemble("Training ", (name, "bold"), f" on {corpus}: {params(start.n_params)} parameters, "
                             f"{start.train_tokens:,} tokens{resumed}{change}", warnings)
    if state.status == "stopping":
        return Text("Stopping: the trainer is saving the run…")
    if state.status == "done" and done is not None:
        val = f", validation loss {done.best_val_loss:.3f}" if done.best_val_loss is not None else ""
        bpb = f" ({done.val_bpb:.2f} bits/byte)" if done.val_bpb is not None else ""
        change = Text.assemble("\n", (state.change, "bold")) if state.change else Text()
        return Text.assemble(f"Done ({done.reason.replace('_', ' ')}): ", (Path(done.path).name, "bold"),
                             f" saved at step {done.step:,}{val}{bpb}. Write with it (ctrl+o), or find it on the "
                             "models screen.", change)
    if state.status == "interrupted" and done is not None:
        return Text(f"Stopped at step {done.step:,} and saved. Resume (ctrl+r) continues from there.")
    if state.status == "failed":
        return Text.assemble(("Training failed:\n", "bold"), state.error or "the trainer stopped without saying why")
    return Text(state.status)
