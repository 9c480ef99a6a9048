"""The training loop: AdamW, warmup + cosine, clipping, mixed precision, eval, early stop, resume, DDP.

Everything a run needs is in ``RunSpec``; everything it reports goes through ``emit`` as events
(trainer/events.py). A run is resumable at any moment it has saved: ``train_state.pt`` holds the
latest weights, optimizer, schedule, RNG and counters, and batch s is a pure function of (seed, s).

Over 400 lines because ``_train`` is one function by design: the run's state (model, optimizer, counters, best
weights) is shared by its closures ``summary``, ``checkpoint`` and ``evaluate``; DDP (distributed.py) and the
held-out scoring (scoring.py) live beside it.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from slmtui.core.errors import SlmError, gist
from slmtui.core.gpt_config import GPTConfig
from slmtui.core.model_folder import METRICS, TRAIN_STATE
from slmtui.core.model_target import check_model_target
from slmtui.core.seeds import torch_seed
from slmtui.engine.decode_paths import EXACT
from slmtui.engine.device import cpu_bf16_matmul_is_faster, pick_device
from slmtui.engine.evaluate import evaluate_ids, token_byte_lengths
from slmtui.engine.generate import Generator
from slmtui.core.sampling import Sampling
from slmtui.engine.memory import check_fits, training_bytes
from slmtui.engine.model import GPT
from slmtui.engine.model_io import load_model_dir, save_model_dir
from trainer.config import TrainConfig, inherited_recipe
from trainer.corpus import choose_books, corpus_fingerprint, corpus_label, corpus_path, read_corpus, split_corpus
from trainer.data import Batches, cache_key, tokenize_corpus
from trainer.distributed import Distributed
from trainer.events import CheckpointEvent, DoneEvent, EvalEvent, Event, SampleEvent, StartEvent, StepEvent, to_json
from trainer.optim import Optimizers
from trainer.optim import make_optimizer as build_optimizer
from trainer.plot import PLOT_FILE, render_metrics_png
from trainer.preflight import check_name, check_space, check_writable
from trainer.scoring import cap_windows, score_in_full
from trainer.tokenizers import build_tokenizer
from trainer.train_state import ResumeState

REPLACE_HINT = "choose another --name or --out, or continue its run with --resume"
"""How a user asks for an existing model folder to be replaced: only by continuing its own run."""


@dataclass(frozen=True)
class RunSpec:
    """One training run, resolved from the command line."""

    out: Path
    corpus: Path
    model: GPTConfig
    train: TrainConfig
    tokenizer: str = "gpt2"
    preset: str = "custom"
    init_from: Path | None = None
    device: str = "auto"
    resume: bool = False
    block_size: int | None = None
    """A fine-tune's context when shorter than its parent's (the position table is cut to it)."""
    dropout: float | None = None
    """A fine-tune's dropout when it differs from its parent's (dropout is a training setting, not a shape)."""


@dataclass
class _Progress:
    step: int = 0
    tokens_seen: int = 0
    elapsed_s: float = 0.0
    best_val_loss: float | None = None
    best_val_bpb: float | None = None
    best_heldout_loss: float | None = None
    best_heldout_bpb: float | None = None
    """The held-out figures of the evaluation that kept the best weights (chosen on val loss)."""
    bad_evals: int = 0
    max_steps: int = 0
    metrics: list[str] = field(default_factory=list)
    parent_val_loss: float | None = None
    parent_val_bpb: float | None = None
    """A fine-tune's parent scored on the same held-out text at step 0: the "before" of its before and after."""


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "fp32":
        return torch.float32
    if name == "bf16":
        return torch.bfloat16
    if name == "fp16":
        if device.type != "cuda":
            raise SlmError("--dtype fp16 needs a CUDA GPU (use bf16 or fp32 on this device)")
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_bf16_matmul_is_faster():
        return torch.bfloat16
    return torch.float32


PLOT_EVERY_S = 60.0
"""Mid-run saves redraw training_metrics.png at most this often and keep the last drawing between (matplotlib
takes ~0.3 s a drawing on the training thread; a test's run that saves 32 times spent half its time there); the
last save of a run always draws it anew. metrics.jsonl is written whole at every save."""

FIRST_PACE_STEPS = 5
"""A time budget's first horizon is estimated after this many steps (the first, which pays for warming up, excluded)."""


def warmup_for(cfg: TrainConfig, max_steps: int) -> int:
    """The warmup a run of max_steps gets: the configured one, cut to a tenth of a run too short for it."""
    return min(cfg.warmup_steps, max(max_steps // 10, 1)) if max_steps < cfg.warmup_steps * 2 else cfg.warmup_steps


def lr_at(step: int, cfg: TrainConfig, max_steps: int, warmup: int | None = None) -> float:
    """Linear warmup to lr, then down to lr * min_lr_ratio at max_steps: by cosine, or (wsd) flat until the last
    ``decay_fraction`` of the steps and linear from there.

    A run passes its warmup, fixed when the run starts (a time budget's, at its first horizon): a horizon
    re-estimated later must not shorten a warmup already under way, which would jump the learning rate.
    """
    warmup = warmup_for(cfg, max_steps) if warmup is None else warmup
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    min_lr = cfg.lr * cfg.min_lr_ratio
    if cfg.schedule == "wsd":
        decay_start = max(warmup, max_steps - decay_steps(cfg, max_steps))
        if step < decay_start:
            return cfg.lr
        progress = min(1.0, (step - decay_start) / max(1, max_steps - decay_start))
        return cfg.lr - progress * (cfg.lr - min_lr)
    progress = min(1.0, (step - warmup) / max(1, max_steps - warmup))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - min_lr)


def decay_steps(cfg: TrainConfig, max_steps: int) -> int:
    """A wsd run's decay: its last ``decay_fraction`` of max_steps."""
    return round(cfg.decay_fraction * max_steps)


def make_optimizer(model: GPT, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer | Optimizers:
    """The run's optimizer (trainer/optim.py): AdamW with decay on matrices only, or Muon + AdamW."""
    return build_optimizer(model, kind=cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay,
                           betas=(cfg.beta1, cfg.beta2), device=device, fused=cfg.fused)


def train(spec: RunSpec, emit: Callable[[Event], None], *, should_stop: Callable[[], bool] = lambda: False,
          warn: Callable[[str], None] = lambda m: None) -> DoneEvent:
    """Run (or resume) one training run to its end; returns the done event it also emitted."""
    device = pick_device(spec.device)
    ddp = Distributed(device)
    try:
        done = _train(spec, emit if ddp.is_main else (lambda e: None), should_stop, warn, ddp)
        # Rank 0 still scores and saves after the loop; a rank that tore its process group down meanwhile
        # could abort ("terminate called without an active exception") and take the run down with it.
        ddp.barrier()
        return done
    finally:
        ddp.close()


def _train(spec: RunSpec, emit: Callable[[Event], None], should_stop: Callable[[], bool],
           warn: Callable[[str], None], ddp: Distributed) -> DoneEvent:
    device = ddp.device
    # Before anything is read, tokenised or trained: may this run write its model there at all?
    # (A resumed run's corpus is known once its state is read: checked again below.)
    check_name(spec.out)  # then the rest that would fail only at the save, after the training (preflight.py)
    check_model_target(spec.out, replace_model=spec.resume, corpus=None if spec.resume else spec.corpus,
                       how_to_replace=REPLACE_HINT)
    check_writable(spec.out)
    state = ResumeState.load(spec.out) if spec.resume else None
    try:
        cfg = TrainConfig.from_dict(state.train_config) if state else spec.train
    except (TypeError, ValueError) as e:
        raise SlmError(f"{spec.out / TRAIN_STATE}: train_config is not valid ({e})") from e
    if state and (spec.train.max_steps or spec.train.time_limit_s):
        # A resumed run may get a new budget for this invocation (and a longer horizon).
        cfg = replace(cfg, time_limit_s=spec.train.time_limit_s, max_steps=spec.train.max_steps or cfg.max_steps)
    elif state:
        cfg = replace(cfg, time_limit_s=None)
    corpus_dir = corpus_path(state.corpus) if state else spec.corpus
    tokenizer_arg = state.tokenizer_arg if state else spec.tokenizer
    preset_name: str | None = (state.preset or spec.preset) if state else spec.preset
    if state:
        check_model_target(spec.out, replace_model=True, corpus=corpus_dir)

    corpus = read_corpus(corpus_dir)
    for skipped in corpus.skipped:
        warn(f"skipped {skipped.name}: {skipped.reason}")
    fingerprint = corpus_fingerprint(corpus)
    if state and state.corpus_fingerprint != fingerprint:
        raise SlmError(f"the corpus at {corpus_dir} changed since this run started; start a new run instead of --resume")
    heldout_books = state.heldout_books if state else choose_books(corpus, cfg.val_books) if cfg.val_books else ()
    split = split_corpus(corpus, val_fraction=cfg.val_fraction, heldout_books=tuple(heldout_books))
    train_texts, val_texts = split.train, split.val
    split_key = f"{fingerprint[:16]}-v{cfg.val_fraction}" + (f"-h{_books_hash(split.heldout_books)}" if split.heldout_books else "")

    parent: str | None = None
    if spec.resume:
        loaded = load_model_dir(spec.out)
        tokenizer, model_config = loaded.tokenizer, loaded.info.config
        parent = loaded.info.training.get("parent")  # type: ignore[assignment]
        if parent:
            preset_name = state.preset if state else None  # a fine-tune's is its parent's, or none: never --preset's
        if parent and not Path(parent).exists():
            # Resuming needs nothing of the parent: this folder holds the weights, tokenizer and its step-0 score.
            warn(f"the parent model {parent} is gone; the run continues from its own saved state")
    elif spec.init_from is not None:
        loaded = load_model_dir(spec.init_from)
        tokenizer, model_config = loaded.tokenizer, loaded.info.config
        parent = str(spec.init_from)
        # A fine-tune keeps its parent's shape and tokenizer: its record says so, not what --preset and the
        # preset's tokenizer would have built (a BPE fine-tune of `default` is not "seed" with "gpt2").
        preset_name, tokenizer_arg = inherited_recipe(loaded.info.training, loaded.info.tokenizer.name)
        if spec.block_size is not None and spec.block_size < model_config.block_size:
            model_config = replace(model_config, block_size=spec.block_size)
        if spec.dropout is not None:
            model_config = replace(model_config, dropout=spec.dropout)
    else:
        # The BPE learns from the training split only, so its cache key names the split too.
        tokenizer = build_tokenizer(tokenizer_arg, train_texts, cache_key=split_key)
        model_config = replace(spec.model, vocab_size=tokenizer.n_vocab)

    data = tokenize_corpus(train_texts, val_texts, tokenizer, heldout_texts=split.heldout,
                           key=cache_key(fingerprint, tokenizer, cfg.val_fraction, split.heldout_books))
    batches = Batches(data.train, block_size=model_config.block_size, batch_size=cfg.batch_size, seed=cfg.seed,
                      rank=ddp.rank, world_size=ddp.world_size)
    if not data.val_docs:
        raise SlmError(f"the corpus at {corpus_dir} is too small to hold out validation text: its held-out part "
                       f"({sum(len(t) for t in val_texts):,} characters) is under two tokens")
    batch_tokens = batches.global_batch * model_config.block_size
    if cfg.evals_per_pass:
        steps_per_pass = len(data.train) / batch_tokens
        cfg = replace(cfg, eval_interval=min(cfg.eval_interval, max(1, int(steps_per_pass / cfg.evals_per_pass))))
    max_steps = state.max_steps if state and not spec.train.max_steps else cfg.max_steps or 0
    if not max_steps and cfg.epochs:
        max_steps = max(1, math.ceil(cfg.epochs * len(data.train) / batch_tokens))
    if not max_steps and not cfg.time_limit_s:
        raise SlmError("give a training budget: --max-steps, --epochs or --time-limit")
    if state and state.max_steps and max_steps and max_steps != state.max_steps and state.step < max_steps:
        before, after = lr_at(state.step, cfg, state.max_steps), lr_at(state.step, cfg, max_steps)
        if not math.isclose(before, after, rel_tol=1e-9):
            warn(f"the new horizon ({max_steps} steps, was {state.max_steps}) moves the learning rate at step "
                 f"{state.step} from {before:.3g} to {after:.3g} (a --schedule wsd run resumed before its decay "
                 "keeps its rate)")

    check_fits(f"training {model_config.param_count:,} parameters at batch {cfg.batch_size} x context "
               f"{model_config.block_size}", training_bytes(model_config, batch_size=cfg.batch_size), device)
    if ddp.is_main:
        check_space(spec.out, model_config)
    torch.manual_seed(torch_seed(cfg.seed) + ddp.rank)
    model = GPT(model_config)
    if spec.init_from is not None and not spec.resume:
        weights = loaded.model.state_dict()
        if "transformer.wpe.weight" in weights:  # learned positions: a shorter context keeps their first rows
            weights["transformer.wpe.weight"] = weights["transformer.wpe.weight"][: model_config.block_size]
        model.load_state_dict(weights)
    model.to(device)
    optimizer = make_optimizer(model, cfg, device)
    progress = _Progress(max_steps=max_steps)
    if state:
        try:
            model.load_state_dict(state.model)
            optimizer.load_state_dict(state.optimizer)
            torch.set_rng_state(state.rng_cpu)
        except (RuntimeError, ValueError, KeyError, TypeError) as e:
            raise SlmError(f"{spec.out / TRAIN_STATE} does not fit the model in {spec.out} ({gist(e)})") from e
        progress = _Progress(step=state.step, tokens_seen=state.tokens_seen, elapsed_s=state.elapsed_s,
                             best_val_loss=state.best_val_loss, best_val_bpb=state.best_val_bpb,
                             best_heldout_loss=state.best_heldout_loss, best_heldout_bpb=state.best_heldout_bpb,
                             bad_evals=state.bad_evals, max_steps=max_steps, metrics=_read_metrics(spec.out, state.step),
                             parent_val_loss=_number(loaded.info.training.get("parent_val_loss")),
                             parent_val_bpb=_number(loaded.info.training.get("parent_val_bpb")))
        if device.type == "cuda" and state.rng_cuda is not None:
            torch.cuda.set_rng_state(state.rng_cuda)
    best_weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if state:
        best_weights = {k: v.clone() for k, v in loaded.model.state_dict().items()}

    dtype = pick_dtype(cfg.dtype, device)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    if scaler is not None and isinstance(optimizer, Optimizers):
        raise SlmError("--optimizer muon trains in bf16 or fp32, not fp16: use --dtype bf16")
    step_model: torch.nn.Module = model
    if cfg.compile:
        step_model = torch.compile(model)  # type: ignore[assignment]
    if ddp.enabled:
        step_model = DistributedDataParallel(step_model, device_ids=[device.index] if device.type == "cuda" else None)

    byte_lengths = token_byte_lengths(tokenizer)
    val_docs = [d.tolist() for d in data.val_docs]
    heldout_docs = [d.tolist() for d in data.heldout_docs]
    start_step = progress.step
    emit(StartEvent(name=spec.out.name, path=str(spec.out), n_params=model.num_params(), corpus=corpus_label(corpus_dir),
                    corpus_bytes=corpus.n_bytes, train_tokens=len(data.train), val_tokens=data.val_tokens,
                    max_steps=max_steps, start_step=start_step, batch_tokens=batch_tokens, device=str(device),
                    dtype=str(dtype).removeprefix("torch.")))

    def summary(reason: str, resumable: bool) -> dict[str, object]:
        return {
            "preset": preset_name, "corpus": corpus_label(corpus_dir), "corpus_sha256": fingerprint, "corpus_bytes": corpus.n_bytes,
            "val_fraction": cfg.val_fraction, "tokenizer_arg": tokenizer_arg, "steps": progress.step,
            "tokens_seen": progress.tokens_seen, "val_loss": progress.best_val_loss, "val_bpb": progress.best_val_bpb,
            "heldout_books": list(split.heldout_books), "heldout_loss": progress.best_heldout_loss,
            "heldout_bpb": progress.best_heldout_bpb, "eval_windows": cfg.eval_windows, **final_scores,
            "wall_time_s": round(progress.elapsed_s, 1), "device": str(device), "dtype": str(dtype).removeprefix("torch."),
            "world_size": ddp.world_size, "stopped": reason, "resumable": resumable,
            "parent": parent,
            "parent_val_loss": progress.parent_val_loss, "parent_val_bpb": progress.parent_val_bpb,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "train_config": asdict(cfg),
        }

    plot_png: bytes | None = None  # the last training_metrics.png drawn, and when (PLOT_EVERY_S)
    plot_drawn_at = -math.inf
    saved = False  # once this run has written the folder, it is this run's to replace
    saved_step = state.step if state else None
    """The step of the last good save in spec.out: what a failed save leaves the user."""

    def checkpoint(reason: str, *, resumable: bool = True) -> None:
        """Save the run; ``resumable``: whether ``--resume`` would go on from here (mid-run: yes, to the end)."""
        nonlocal saved
        if not ddp.is_main:
            return
        train_state = ResumeState(
            model={k: v.detach().cpu() for k, v in model.state_dict().items()},
            optimizer=optimizer.state_dict(), step=progress.step, tokens_seen=progress.tokens_seen,
            elapsed_s=progress.elapsed_s, best_val_loss=progress.best_val_loss, best_val_bpb=progress.best_val_bpb,
            bad_evals=progress.bad_evals, max_steps=progress.max_steps, rng_cpu=torch.get_rng_state(),
            rng_cuda=torch.cuda.get_rng_state() if device.type == "cuda" else None, train_config=asdict(cfg),
            corpus=corpus_label(corpus_dir), corpus_fingerprint=fingerprint, tokenizer_arg=tokenizer_arg, preset=preset_name,
            heldout_books=list(split.heldout_books), best_heldout_loss=progress.best_heldout_loss,
            best_heldout_bpb=progress.best_heldout_bpb,
        )
        if progress.best_val_loss is None:
            # Not evaluated yet: the newest weights are the best we know.
            best_weights.update({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
        best = GPT(model_config)
        best.load_state_dict(best_weights)
        metrics = ("\n".join(progress.metrics) + "\n").encode() if progress.metrics else b""
        extra_files = {TRAIN_STATE: train_state.save(), METRICS: metrics}
        nonlocal plot_png, plot_drawn_at
        if reason != "running" or time.perf_counter() - plot_drawn_at >= PLOT_EVERY_S:
            plot_png = render_metrics_png(progress.metrics)  # None without matplotlib (the `plot` extra)
            plot_drawn_at = time.perf_counter()
        if plot_png is not None:
            extra_files[PLOT_FILE] = plot_png
        nonlocal saved_step
        try:
            save_model_dir(spec.out, best, tokenizer, training=summary(reason, resumable), extra_files=extra_files,
                           replace_model=spec.resume or saved, corpus=corpus_dir)
        except SlmError as e:  # the disk filled, or the folder turned read-only, during the run
            if not isinstance(e.__cause__, OSError):
                raise  # the place taken meanwhile: the error says where the new model is kept
            kept = (f"the last good save (step {saved_step:,}) is kept in {spec.out}" if saved_step is not None
                    else "nothing of this run was saved")
            raise SlmError(f"{e}; {kept}", exit_code=e.exit_code) from e
        saved, saved_step = True, progress.step
        emit(CheckpointEvent(step=progress.step, path=str(spec.out)))

    final_scores: dict[str, object] = {}

    def evaluate(before: bool = False) -> None:
        model.eval()
        result = evaluate_ids(model, cap_windows(val_docs, model_config.block_size, cfg.eval_windows), byte_lengths)
        held = (evaluate_ids(model, cap_windows(heldout_docs, model_config.block_size, cfg.eval_windows), byte_lengths)
                if heldout_docs else None)
        improved = progress.best_val_loss is None or result.loss < progress.best_val_loss
        if improved:
            progress.best_val_loss, progress.best_val_bpb = result.loss, result.bits_per_byte
            progress.best_heldout_loss = held.loss if held else None
            progress.best_heldout_bpb = held.bits_per_byte if held else None
            progress.bad_evals = 0
            best_weights.update({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
        else:
            progress.bad_evals += 1
        if before:
            progress.parent_val_loss, progress.parent_val_bpb = result.loss, result.bits_per_byte
        ev = EvalEvent(step=progress.step, val_loss=result.loss, val_perplexity=result.perplexity,
                       val_bpb=result.bits_per_byte, best_val_loss=progress.best_val_loss, improved=improved,
                       heldout_loss=held.loss if held else None, heldout_bpb=held.bits_per_byte if held else None,
                       before=before)
        progress.metrics.append(to_json(ev))
        emit(ev)
        text = "".join(e.text for e in Generator(model, tokenizer, path=EXACT).stream(
            cfg.sample_prompt, Sampling(seed=cfg.seed, max_new_tokens=cfg.sample_tokens)))
        emit(SampleEvent(step=progress.step, prompt=cfg.sample_prompt, text=text))
        model.train()

    if spec.init_from is not None and not spec.resume and ddp.is_main:
        evaluate(before=True)  # the parent on the user's held-out text: the "before"; also the best so far
    model.train()
    time_horizon = not max_steps
    warmup = cfg.warmup_steps if time_horizon else warmup_for(cfg, max_steps)
    # A time budget's horizon never goes past max_passes (the run then ends early, its schedule done).
    pass_cap = math.ceil(cfg.max_passes * len(data.train) / batch_tokens) if cfg.max_passes and time_horizon else 0
    if pass_cap:
        max_steps = progress.max_steps = max(pass_cap, progress.step + 1)
    first_step_s = 0.0
    run_start = time.perf_counter()
    recent: deque[float] = deque(maxlen=20)
    reason = "max_steps"
    while True:
        if max_steps and progress.step >= max_steps:
            if time_horizon:
                reason = "epochs" if pass_cap and progress.step >= pass_cap else "time_limit"
            else:
                reason = "epochs" if cfg.epochs and not cfg.max_steps else "max_steps"
            break
        run_elapsed = time.perf_counter() - run_start
        if ddp.any(should_stop()):
            reason = "interrupted"
            break
        if cfg.time_limit_s and ddp.any(run_elapsed >= cfg.time_limit_s):
            reason = "time_limit"
            break
        t0 = time.perf_counter()
        steps_this_run = progress.step - start_step
        if time_horizon and (steps_this_run == FIRST_PACE_STEPS or steps_this_run >= 20 and steps_this_run % 10 == 0):
            # Only a time budget: the schedule's horizon is where the time runs out at the pace so far
            # (evaluations included), estimated after a few steps and again every 10 as the pace changes.
            pace = (run_elapsed - first_step_s) / (steps_this_run - 1)
            # Each rank times itself; rank 0's estimate is everyone's, or the ranks would disagree on
            # the learning rate (replicas drift apart) and on the last step (one waits for the other forever).
            estimate = progress.step + max(1, int((cfg.time_limit_s - run_elapsed) / pace))
            max_steps = progress.max_steps = ddp.broadcast(min(estimate, pass_cap) if pass_cap else estimate)
            if steps_this_run == FIRST_PACE_STEPS:
                # The first horizon fixes the warmup, cut as warmup_for cuts a step budget's: a preset's 200
                # steps in a budget that buys 207 would spend it all climbing. Never below the steps taken,
                # and never changed again (a later estimate must not jump the rate).
                warmup = min(warmup, max(warmup_for(cfg, max_steps), progress.step + 1))
        lr = lr_at(progress.step, cfg, max_steps or 10**9, warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = batches.get(progress.step)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast:
            _, loss = step_model(x, y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = ddp.mean(float(loss.detach()))
        dt = time.perf_counter() - t0
        recent.append(dt)
        progress.step += 1
        progress.tokens_seen += batch_tokens
        progress.elapsed_s += dt
        if progress.step == start_step + 1:
            first_step_s = time.perf_counter() - run_start
        tok_s = batch_tokens * len(recent) / sum(recent)
        eta = (max_steps - progress.step) * sum(recent) / len(recent) if max_steps else None
        if cfg.time_limit_s:
            eta = min(eta if eta is not None else math.inf, cfg.time_limit_s - (time.perf_counter() - run_start))
        ev = StepEvent(step=progress.step, max_steps=max_steps, epoch=progress.tokens_seen / len(data.train), loss=loss_value,
                       lr=lr, tokens_per_s=tok_s, tokens_seen=progress.tokens_seen,
                       elapsed_s=progress.elapsed_s, eta_s=eta)
        progress.metrics.append(to_json(ev))
        emit(ev)
        if not math.isfinite(loss_value):
            raise SlmError(f"the loss became {loss_value} at step {progress.step}: lower --lr and start again")
        if progress.step % cfg.eval_interval == 0:
            if ddp.is_main:
                t_eval = time.perf_counter()
                evaluate()
                progress.elapsed_s += time.perf_counter() - t_eval
            if not (max_steps and progress.step >= max_steps):  # the last step's checkpoint follows the loop
                checkpoint("running")
            if ddp.any(progress.bad_evals >= cfg.patience):
                reason = "early_stop"
                break

    # Stopped before the schedule's end (Ctrl+C, or this invocation's time ran out before its fixed
    # horizon): resumable. A run whose horizon came from its time budget has finished its schedule.
    resumable = reason == "interrupted" or (reason == "time_limit" and not time_horizon and progress.step < max_steps)
    # A finished run is scored at its last step; an interrupted one is not, so that resuming it replays
    # exactly the evaluations (and early-stopping counts) of an uninterrupted run.
    if ddp.is_main and not resumable and progress.step > start_step and progress.step % cfg.eval_interval:
        evaluate()
    if ddp.is_main and not resumable and progress.step > start_step:
        final_scores.update(score_in_full(best_weights, model_config, val_docs, heldout_docs, byte_lengths))
    checkpoint(reason, resumable=resumable)
    resume = f"slm-train --resume --out {spec.out}" if resumable else None
    done = DoneEvent(step=progress.step, path=str(spec.out), reason=reason,
                     best_val_loss=final_scores.get("val_loss", progress.best_val_loss),  # type: ignore[arg-type]
                     val_bpb=final_scores.get("val_bpb", progress.best_val_bpb),  # type: ignore[arg-type]
                     heldout_bpb=final_scores.get("heldout_bpb", progress.best_heldout_bpb),  # type: ignore[arg-type]
                     resume_command=resume, parent_val_bpb=progress.parent_val_bpb)
    emit(done)
    return done


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _books_hash(names: tuple[str, ...]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:8]


def _read_metrics(out: Path, up_to_step: int) -> list[str]:
    """The metrics a resumed run keeps: those of the steps it is resuming after."""
    path = out / METRICS
    if not path.is_file():
        return []
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= up_to_step:
                kept.append(line)
        except ValueError:
            continue
    return kept
