"""Training throughput: our loop against a plain fp32 loop of the same model, and MFU.

    python tests/bench/bench_train.py [--seconds 30] [--rounds 3] [--presets seed,default] [--json]

For each preset (architecture and training settings of ``slm-train --preset``) on the bundled corpus:

- **ours**: ``trainer.loop.train`` itself, with the settings the trainer picks by default (bf16 autocast
  on a CPU with AVX512-BF16/AMX, AdamW with decay groups, clipping, the memmap batches). Tokens/s come
  from its own step events (the time of each optimizer step, data included), after a warm-up.
- **baseline**: the same model written the way the original trained it: plain ``torch.optim.AdamW`` over
  all parameters, fp32, no autocast, clipping, random windows from the same tokens.

MFU is achieved FLOP/s over the peak matmul rate measured here, in this run (a large fp32 and bf16
matmul); model FLOPs per token = 6 N + 12 n_layer n_embd block_size (N: the weights used in matmuls,
the LM head included, the embedding lookups not; the second term is attention, as in nanoGPT and
PaLM's appendix B). Both peaks are printed; each MFU line names the peak it divides by: ours against the
peak of the dtype its matmuls run in (bf16 under autocast), the baseline against fp32, and ours against
fp32 too, since that is the peak a plain loop could reach. The load average is printed with the
figures: on a shared machine, a reading taken beside other work is not a reading of this code alone.

Both loops use torch's default thread count (``--threads`` to change it; on a machine where another
job holds a core, one thread can beat two that keep waiting for each other). The first run of a preset tokenises the bundled corpus
(and trains the default preset's BPE) into the user cache; that is not timed. ``--json`` prints one
JSON object on the last line: tokens_per_s, baseline_tokens_per_s, mfu, peak_gflops (the headline
preset's, ``default`` when measured), and every preset's details.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from slmtui.core import paths  # noqa: E402
from slmtui.core.gpt_config import GPTConfig  # noqa: E402
from slmtui.engine.device import pick_device  # noqa: E402
from slmtui.engine.model import GPT  # noqa: E402
from trainer.config import PRESETS, preset  # noqa: E402
from trainer.corpus import corpus_fingerprint, read_corpus, split_documents  # noqa: E402
from trainer.data import cache_key, tokenize_corpus  # noqa: E402
from trainer.events import StartEvent, StepEvent  # noqa: E402
from trainer.loop import RunSpec, pick_dtype, train  # noqa: E402
from trainer.tokenizers import build_tokenizer  # noqa: E402

WARMUP_STEPS = 3
MIN_TIMED_STEPS = 5
"""A very busy machine still gets this many timed steps per loop, however long they take."""


def log(*args: object) -> None:
    print(*args, flush=True)


# --------------------------------------------------------------------------- peak matmul rate


def matmul_gflops(dtype: torch.dtype, *, n: int = 2048, seconds: float = 3.0) -> float:
    """Best observed GFLOP/s of an n x n x n matmul (2 n^3 FLOPs) in ``dtype``."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    for _ in range(2):
        a @ b
    best = math.inf
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


# --------------------------------------------------------------------------- model FLOPs


def flops_per_token(config: GPTConfig) -> int:
    model = GPT(config)
    embeddings = {id(model.transformer.wpe.weight)} if "wpe" in model.transformer else set()
    if not config.tie_embeddings:
        embeddings.add(id(model.transformer.wte.weight))  # a lookup; the (untied) LM head is a matmul
    n = sum(p.numel() for p in model.parameters() if id(p) not in embeddings)
    return 6 * n + 12 * config.n_layer * config.n_embd * config.block_size


# --------------------------------------------------------------------------- the data, as the trainer has it


def training_tokens(preset_name: str) -> tuple[np.ndarray, int]:
    """The bundled corpus's training tokens for the preset's tokenizer (from the cache after the first run)."""
    cfg = PRESETS[preset_name].train
    corpus = read_corpus(paths.BUNDLED_CORPUS_DIR)
    fingerprint = corpus_fingerprint(corpus)
    train_texts, val_texts = split_documents(corpus, val_fraction=cfg.val_fraction)
    tokenizer = build_tokenizer(PRESETS[preset_name].tokenizer, train_texts,
                                cache_key=f"{fingerprint[:16]}-v{cfg.val_fraction}")
    data = tokenize_corpus(train_texts, val_texts, tokenizer,
                           key=cache_key(fingerprint, tokenizer, cfg.val_fraction))
    return data.train, tokenizer.n_vocab


# --------------------------------------------------------------------------- ours


def bench_ours(preset_name: str, seconds: float) -> dict[str, object]:
    """trainer.loop.train on the bundled corpus, stopped ``seconds`` after its warm-up steps."""
    cfg = replace(PRESETS[preset_name].train, max_steps=10**6, eval_interval=10**9, eval_windows=4)
    steps: list[StepEvent] = []
    started: list[StartEvent] = []
    warm: list[float] = []  # wall clock when the warm-up ended

    def emit(event: object) -> None:
        if isinstance(event, StartEvent):
            started.append(event)
        elif isinstance(event, StepEvent):
            steps.append(event)
            if len(steps) == WARMUP_STEPS:
                warm.append(time.perf_counter())

    def should_stop() -> bool:
        timed = len(steps) - WARMUP_STEPS
        return bool(warm) and time.perf_counter() - warm[0] >= seconds and timed >= MIN_TIMED_STEPS

    out = Path(tempfile.mkdtemp(prefix="bench-train-")) / preset_name
    try:
        train(RunSpec(out=out, corpus=paths.BUNDLED_CORPUS_DIR, model=preset(preset_name).model, train=cfg,
                      tokenizer=PRESETS[preset_name].tokenizer, preset=preset_name), emit, should_stop=should_stop)
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
    first, last = steps[WARMUP_STEPS - 1], steps[-1]
    # elapsed_s sums the loop's own step times (batch, forward, backward, clip, optimizer step).
    tok_s = (last.tokens_seen - first.tokens_seen) / (last.elapsed_s - first.elapsed_s)
    return {"tokens_per_s": tok_s, "steps": len(steps) - WARMUP_STEPS, "dtype": started[0].dtype,
            "batch_tokens": started[0].batch_tokens, "n_params": started[0].n_params}


# --------------------------------------------------------------------------- the baseline


def bench_baseline(config: GPTConfig, data: np.ndarray, *, batch_size: int, lr: float, seconds: float) -> dict[str, object]:
    """The original's way: plain AdamW on every parameter, fp32, no autocast, clip 1.0."""
    torch.manual_seed(1337)
    device = pick_device("auto")
    model = GPT(config).to(device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    T = config.block_size

    def get_batch() -> tuple[torch.Tensor, torch.Tensor]:
        ix = torch.randint(len(data) - T - 1, (batch_size,)).tolist()
        x = torch.stack([torch.from_numpy(data[i : i + T].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(data[i + 1 : i + 1 + T].astype(np.int64)) for i in ix])
        return x.to(device), y.to(device)

    times: list[float] = []
    warm_end = None
    while warm_end is None or time.perf_counter() - warm_end < seconds or len(times) < WARMUP_STEPS + MIN_TIMED_STEPS:
        t0 = time.perf_counter()
        x, y = get_batch()
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        loss.item()  # the original printed it: a sync point, as in our loop
        times.append(time.perf_counter() - t0)
        if len(times) == WARMUP_STEPS:
            warm_end = time.perf_counter()
    timed = times[WARMUP_STEPS:]
    return {"tokens_per_s": batch_size * T * len(timed) / sum(timed), "steps": len(timed), "dtype": "float32"}


# --------------------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=30.0, help="timed seconds per loop and preset, after warm-up")
    p.add_argument("--rounds", type=int, default=3, help="turns each loop takes, alternating (best round counts)")
    p.add_argument("--presets", default="seed,default", help="comma-separated presets (the last is the headline)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's default, as the trainer runs)")
    p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.presets.split(",") if n.strip()]

    device = pick_device("auto")
    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, "
        f"trainer dtype {str(pick_dtype('auto', device)).removeprefix('torch.')}")
    peak = {"float32": matmul_gflops(torch.float32), "bfloat16": matmul_gflops(torch.bfloat16)}
    log(f"peak matmul (2048^3), measured here now: fp32 {peak['float32']:.0f} GFLOP/s, bf16 {peak['bfloat16']:.0f} GFLOP/s")
    log(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min) on {os.cpu_count()} CPUs")

    results: dict[str, dict[str, object]] = {}
    for name in names:
        t0 = time.perf_counter()
        data, n_vocab = training_tokens(name)
        config = replace(preset(name).model, vocab_size=n_vocab)
        setup = time.perf_counter() - t0
        fpt = flops_per_token(config)
        log(f"\n{name}: {config.n_layer}x{config.n_embd}, context {config.block_size}, vocab {n_vocab}, "
            f"{fpt / 1e6:.1f} MFLOP/token; {len(data):,} training tokens (ready in {setup:.1f} s)")
        cfg = PRESETS[name].train
        # The loops take turns (ours, baseline, ours, ...), each round seconds/rounds long: load from other
        # work then falls on both alike, and each loop's figure is its best round, the least disturbed.
        rounds_ours, rounds_base = [], []
        for r in range(args.rounds):
            rounds_ours.append(bench_ours(name, args.seconds / args.rounds))
            rounds_base.append(bench_baseline(config, data, batch_size=cfg.batch_size, lr=cfg.lr,
                                              seconds=args.seconds / args.rounds))
            log(f"  round {r + 1}: ours {rounds_ours[-1]['tokens_per_s']:.0f} tok/s, baseline "
                f"{rounds_base[-1]['tokens_per_s']:.0f} tok/s (load average {os.getloadavg()[0]:.2f})")
        # The peaks again, after the rounds: a busy moment at the start must not pass for the machine's peak.
        for dt, key in ((torch.float32, "float32"), (torch.bfloat16, "bfloat16")):
            peak[key] = max(peak[key], matmul_gflops(dt))
        log(f"  peak matmul, best of the readings so far: fp32 {peak['float32']:.0f} GFLOP/s, bf16 {peak['bfloat16']:.0f} GFLOP/s")
        ours = max(rounds_ours, key=lambda d: d["tokens_per_s"])  # type: ignore[arg-type, return-value]
        base = max(rounds_base, key=lambda d: d["tokens_per_s"])  # type: ignore[arg-type, return-value]
        ours["gflops"] = ours["tokens_per_s"] * fpt / 1e9  # type: ignore[operator]
        ours["mfu"] = ours["gflops"] / peak[str(ours["dtype"])]  # type: ignore[operator]
        ours["mfu_fp32_peak"] = ours["gflops"] / peak["float32"]  # type: ignore[operator]
        short = "bf16" if ours["dtype"] == "bfloat16" else "fp32" if ours["dtype"] == "float32" else str(ours["dtype"])
        also = f", {100 * ours['mfu_fp32_peak']:.1f}% of the fp32 peak" if ours["dtype"] != "float32" else ""
        log(f"  ours      {ours['tokens_per_s']:8.0f} tok/s  ({ours['dtype']}, {ours['steps']} steps)  "
            f"{ours['gflops']:6.1f} GFLOP/s  MFU {100 * ours['mfu']:.1f}% of the {short} peak{also}")
        base["gflops"] = base["tokens_per_s"] * fpt / 1e9  # type: ignore[operator]
        base["mfu"] = base["gflops"] / peak["float32"]  # type: ignore[operator]
        log(f"  baseline  {base['tokens_per_s']:8.0f} tok/s  (float32, {base['steps']} steps)  "
            f"{base['gflops']:6.1f} GFLOP/s  MFU {100 * base['mfu']:.1f}% of the fp32 peak")
        speedup = ours["tokens_per_s"] / base["tokens_per_s"]  # type: ignore[operator]
        log(f"  speed-up  {speedup:.2f}x  (load average now {os.getloadavg()[0]:.2f})")
        results[name] = {"ours": ours, "baseline": base, "speedup": speedup, "flops_per_token": fpt,
                         "vocab_size": n_vocab, "block_size": config.block_size}

    head = results["default" if "default" in results else names[-1]]
    ours, base = head["ours"], head["baseline"]  # type: ignore[assignment]
    summary = {
        "tokens_per_s": ours["tokens_per_s"],  # type: ignore[index]
        "baseline_tokens_per_s": base["tokens_per_s"],  # type: ignore[index]
        "speedup": head["speedup"],
        "mfu": ours["mfu"],  # type: ignore[index]
        "baseline_mfu": base["mfu"],  # type: ignore[index]
        "peak_gflops": peak[str(ours["dtype"])],  # type: ignore[index]
        "peak_gflops_fp32": peak["float32"],
        "peak_gflops_bf16": peak["bfloat16"],
        "mfu_peak": str(ours["dtype"]),  # type: ignore[index]
        "loadavg": os.getloadavg(),
        "threads": torch.get_num_threads(),
        "presets": results,
    }
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
