"""Streamed generation speed: the engine's Generator against two peers, and N streams at once.

    python tests/bench/bench_generate.py [--json] [--repeat N] [--threads N] [--device cpu|cuda]

Part 1, the seed preset against its peers. Batch 1, a randomly initialised ``seed``-preset GPT (GPT-2 tokenizer, 128 context, 4 layers x 256,
4 heads), a 4-token prompt, 120 new tokens, temperature 0.8, top-k 40, top-p 0.9 (no repetition
penalty, which the peers do not apply either). Each contender is warmed up once, then timed ``--repeat``
times; the best run counts (the one least disturbed by whatever else the machine is doing).

- kv-cache: ``Generator.stream``, what the app and ``slmtui generate`` run (it also computes the 5
  alternatives and each token's probability for the UI), on the decoding path it chose at load.
- kv-cache, old path: the same on the path the engine used before issue 12 (the bf16 ``mv`` head on a
  CPU that has native bf16, else the exact model), for comparison.
- no-cache: the nanoGPT-style loop the project started from: re-run the whole (cropped) context for
  every new token (``model(idx)``, logits for every position), then temperature, top-k, top-p and a
  multinomial draw.
- no-cache, last: the same, but with nanoGPT's inference trick of running the LM head on the last
  position only (``last_only=True``): shown so the share of the LM head is visible; not a target.
- transformers: ``GPT2LMHeadModel`` of the same sizes, ``.generate(do_sample=True, ...)`` with its own
  KV cache; only when ``transformers`` is importable (it is never a dependency of slmtui).

In part 1 all contenders run with the same intra-op thread count (--threads, default 1, the engine's
decoding default for one stream; the Generator is told to keep that setting rather than apply its own).

Part 2, the bundled default model (8k BPE, context 256, 6 x 256): ``Generator.stream(..., n=N)`` for
N = 1, 2, 4, 8 continuations of one prompt, the app's default sampling (top-k 40, top-p 0.95, repetition
penalty 1.1), 120 new tokens each, on the engine's automatic choice of decoding path *and* thread count
per N (what the app gets; --threads does not apply): aggregate tok/s (N x 120 / wall time), ms per step
(one token of every stream) and the ratio to N=1; beside it the old path at N = 1 on one thread (the engine
before issue 12), in the same run. Then the time to the first token after a 250-token prompt (prefill and
one draw), and which path and thread count were chosen for each N, with the calibrations' timings.

Figures: tok/s = new tokens / wall time from the call to the last token (prefill included);
ms/token = mean time per token after the first; first token = time to the first event.
With --json the last line is one JSON object with those figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from slmtui.core.model_catalog import bundled_default  # noqa: E402
from slmtui.engine.decode_paths import EXACT  # noqa: E402
from slmtui.core.sampling import Sampling  # noqa: E402
from slmtui.engine.device import cpu_has_native_bf16  # noqa: E402
from slmtui.engine.generate import DECODE_THREADS, Generator  # noqa: E402
from slmtui.engine.model import GPT  # noqa: E402
from slmtui.engine.model_io import load_model_dir  # noqa: E402
from slmtui.engine.tokenizer import Tokenizer  # noqa: E402
from trainer.config import preset  # noqa: E402

PROMPT = "Once upon a time"  # 4 GPT-2 tokens: 4 + 120 fits the 128 context, as transformers requires
NEW_TOKENS = 120
TEMPERATURE, TOP_K, TOP_P = 0.8, 40, 0.9


@dataclass
class Timing:
    total_s: float
    first_s: float | None = None
    cpu_s: float | None = None
    """Process CPU time of the run: on a busy machine, what it cost without the waits for a core."""

    @property
    def tok_s(self) -> float:
        return NEW_TOKENS / self.total_s

    @property
    def ms_per_token(self) -> float | None:
        if self.first_s is None:
            return None
        return 1000 * (self.total_s - self.first_s) / (NEW_TOKENS - 1)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


OLD_PATH = "bf16-mv" if cpu_has_native_bf16() else EXACT
"""The decoding path the engine used before issue 12 on this machine: chosen by CPU flag."""
STREAMS = (1, 2, 4, 8)
LONG_PROMPT_TOKENS = 250


def bench_kv_cache(generator: Generator, device: torch.device, seed: int) -> Timing:
    sampling = Sampling(
        temperature=TEMPERATURE, top_k=TOP_K, top_p=TOP_P, repetition_penalty=1.0, max_new_tokens=NEW_TOKENS, seed=seed
    )
    sync(device)
    cpu = time.process_time()
    start = time.perf_counter()
    first = None
    n = 0
    for _event in generator.stream(PROMPT, sampling):
        if first is None:
            first = time.perf_counter() - start
        n += 1
    sync(device)
    assert n == NEW_TOKENS, n
    return Timing(time.perf_counter() - start, first, time.process_time() - cpu)


@torch.inference_mode()
def bench_no_cache(model: GPT, tokenizer: Tokenizer, device: torch.device, seed: int, *, last_only: bool = False) -> Timing:
    """nanoGPT's generate: the whole (cropped) context through the model for every token."""
    g = torch.Generator(device=device).manual_seed(seed)
    sync(device)
    cpu = time.process_time()
    start = time.perf_counter()
    first = None
    idx = torch.tensor([tokenizer.encode(PROMPT)], dtype=torch.long, device=device)
    decoder = tokenizer.stream_decoder()
    for _ in range(NEW_TOKENS):
        idx_cond = idx[:, -model.config.block_size :]
        logits, _ = model(idx_cond, last_only=last_only)
        logits = logits[:, -1, :] / TEMPERATURE
        v, _ = torch.topk(logits, TOP_K)
        logits[logits < v[:, [-1]]] = -float("inf")
        sorted_logits, sorted_idx = torch.sort(logits, descending=True)
        cum = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
        remove = cum - F.softmax(sorted_logits, dim=-1) >= TOP_P
        logits[0, sorted_idx[remove]] = -float("inf")
        probs = F.softmax(logits, dim=-1)
        idx_next = torch.multinomial(probs, num_samples=1, generator=g)
        idx = torch.cat((idx, idx_next), dim=1)
        decoder.push(int(idx_next))
        if first is None:
            first = time.perf_counter() - start
    sync(device)
    return Timing(time.perf_counter() - start, first, time.process_time() - cpu)


def bench_streams(generator: Generator, n: int, seed: int, prompt: str = PROMPT) -> Timing:
    """Wall and CPU seconds to stream NEW_TOKENS tokens in each of n continuations (default sampling)."""
    sampling = Sampling(max_new_tokens=NEW_TOKENS, seed=seed)
    cpu = time.process_time()
    start = time.perf_counter()
    count = sum(1 for _ in generator.stream(prompt, sampling, n=n))
    elapsed = time.perf_counter() - start
    assert count == n * NEW_TOKENS, count
    return Timing(elapsed, None, time.process_time() - cpu)


def bench_first_token(generator: Generator, prompt: list[int], seed: int) -> float:
    """Seconds from the call to the first event after a long prompt: the prefill and one draw."""
    start = time.perf_counter()
    next(iter(generator.stream(prompt, Sampling(max_new_tokens=1, seed=seed))))
    return time.perf_counter() - start


def long_prompt(tokenizer: Tokenizer, n: int) -> list[int]:
    """n tokens of a bundled book (from its middle, past the licence)."""
    from slmtui.core.paths import BUNDLED_CORPUS_DIR

    text = (BUNDLED_CORPUS_DIR / "baum-wonderful-wizard-of-oz.txt").read_text(encoding="utf-8")
    ids = tokenizer.encode(text[50_000:60_000])
    return ids[:n]


def make_transformers_bench(device: torch.device) -> tuple[Callable[[int], Timing], str] | None:
    try:
        import transformers
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        return None
    transformers.logging.set_verbosity_error()
    config = GPT2Config(vocab_size=50257, n_positions=128, n_embd=256, n_layer=4, n_head=4)
    model = GPT2LMHeadModel(config).to(device).eval()
    ids = torch.tensor([Tokenizer.gpt2().encode(PROMPT)], device=device)
    mask = torch.ones_like(ids)

    def run(seed: int) -> Timing:
        torch.manual_seed(seed)
        sync(device)
        cpu = time.process_time()
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                ids, attention_mask=mask, do_sample=True, top_k=TOP_K, top_p=TOP_P, temperature=TEMPERATURE,
                max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, pad_token_id=50256,
            )
        sync(device)
        assert out.shape[1] - ids.shape[1] == NEW_TOKENS
        return Timing(time.perf_counter() - start, None, time.process_time() - cpu)

    return run, transformers.__version__


def best(runs: list[Timing]) -> Timing:
    return min(runs, key=lambda t: t.total_s)


def main() -> int:
    ap = argparse.ArgumentParser(description="Benchmark streamed generation (batch 1).")
    ap.add_argument("--json", action="store_true", help="end with one JSON object on the last line")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per contender; the best counts (default 5)")
    ap.add_argument("--threads", type=int, default=DECODE_THREADS,
                    help=f"torch.set_num_threads for every contender (default {DECODE_THREADS}, the engine's decoding default)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    args = ap.parse_args()
    app_threads = torch.get_num_threads()  # torch's own default, what the app runs with
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(0)
    model = GPT(preset("seed").model).to(device).eval()
    tokenizer = Tokenizer.gpt2()
    hf = make_transformers_bench(device)
    if hf is None:
        print("note: transformers is not installed, so that peer is skipped (pip install transformers; "
              "it is a bench peer, never a dependency of slmtui)")
    start = time.perf_counter()
    seed_gen = Generator(model, tokenizer, num_threads=None)  # the bench's --threads, like the peers
    seed_load_ms = 1000 * (time.perf_counter() - start)
    seed_old = Generator(model, tokenizer, num_threads=None, path=OLD_PATH)

    results: dict[str, list[Timing]] = {
        "kv-cache": [], "kv-cache, old path": [], "no-cache": [], "no-cache, last": [], "transformers": []
    }
    contenders: dict[str, Callable[[int], Timing]] = {
        "kv-cache": lambda seed: bench_kv_cache(seed_gen, device, seed),
        "kv-cache, old path": lambda seed: bench_kv_cache(seed_old, device, seed),
        "no-cache": lambda seed: bench_no_cache(model, tokenizer, device, seed),
        "no-cache, last": lambda seed: bench_no_cache(model, tokenizer, device, seed, last_only=True),
    }
    if hf is not None:
        contenders["transformers"] = hf[0]
    for fn in contenders.values():  # warm up: allocator, kernels, first-call caches
        fn(0)
    for r in range(args.repeat):  # interleaved, so a busy spell hurts every contender alike
        for name, fn in contenders.items():
            results[name].append(fn(r + 1))

    kv, nc, ncl = best(results["kv-cache"]), best(results["no-cache"]), best(results["no-cache, last"])
    tf = best(results["transformers"]) if results["transformers"] else None
    print(f"slmtui generation bench: seed preset ({model.num_params() / 1e6:.1f}M params), batch 1, "
          f"{len(tokenizer.encode(PROMPT))}-token prompt + {NEW_TOKENS} new tokens, "
          f"T={TEMPERATURE} top-k={TOP_K} top-p={TOP_P}")
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"best of {args.repeat}, load average {load_average()}")
    print()
    print(f"{'':20}{'tok/s':>9}{'ms/token':>10}{'first token':>13}{'median tok/s':>14}{'CPU-time tok/s':>16}")
    for name, runs in results.items():
        if not runs:
            print(f"{name:20}{'(transformers not installed)':>46}")
            continue
        b = best(runs)
        med = statistics.median(t.tok_s for t in runs)
        ms = f"{b.ms_per_token:.2f}" if b.ms_per_token is not None else "-"
        first = f"{1000 * b.first_s:.1f} ms" if b.first_s is not None else "-"
        cpu_best = max(NEW_TOKENS / t.cpu_s for t in runs if t.cpu_s)
        print(f"{name:20}{b.tok_s:9.1f}{ms:>10}{first:>13}{med:14.1f}{cpu_best:16.1f}")
    print()

    def cpu_tok_s(name: str) -> float:
        return max(NEW_TOKENS / t.cpu_s for t in results[name] if t.cpu_s)

    print(f"kv-cache vs no-cache:     {kv.tok_s / nc.tok_s:.1f}x   (vs no-cache, last: {kv.tok_s / ncl.tok_s:.1f}x)")
    if tf is not None:
        print(f"kv-cache vs transformers: {kv.tok_s / tf.tok_s:.1f}x (transformers {hf[1] if hf else ''})")
    print(f"seed preset path: {seed_gen.path_for(1)} ({seed_gen.choices[1].reason}; "
          f"Generator built in {seed_load_ms:.0f} ms with its calibration)")

    # Part 2: the bundled default model, N streams, with torch's default setting around the Generator as in
    # the app (the Generator sets its chosen count around each step and gives this one back between).
    torch.set_num_threads(app_threads)
    default = load_model_dir(bundled_default(), device=device)
    start = time.perf_counter()
    gen = Generator(default.model, default.tokenizer)  # automatic path and threads, as the app's
    default_load_ms = 1000 * (time.perf_counter() - start)
    start = time.perf_counter()
    for n in STREAMS:
        gen.threads_for(n)  # calibrate every N (path, then threads) before timing anything
    calibrate_ms = 1000 * (time.perf_counter() - start)
    old = Generator(default.model, default.tokenizer, num_threads=DECODE_THREADS, path=OLD_PATH)
    stream_runs: dict[int, list[Timing]] = {n: [] for n in STREAMS}
    old_runs: list[Timing] = []
    bench_streams(old, 1, 0)
    for n in STREAMS:
        bench_streams(gen, n, 0)
    for r in range(args.repeat):
        old_runs.append(bench_streams(old, 1, r + 1))
        for n in STREAMS:
            stream_runs[n].append(bench_streams(gen, n, r + 1))
    prompt = long_prompt(default.tokenizer, LONG_PROMPT_TOKENS)
    first_runs = [bench_first_token(gen, prompt, r) for r in range(args.repeat + 1)][1:]
    first_old = [bench_first_token(old, prompt, r) for r in range(args.repeat + 1)][1:]

    old_tok_s = NEW_TOKENS / min(t.total_s for t in old_runs)
    old_cpu_tok_s = NEW_TOKENS / min(t.cpu_s or float("inf") for t in old_runs)
    step_ms = {n: 1000 * min(t.total_s for t in stream_runs[n]) / NEW_TOKENS for n in STREAMS}
    tok_s = {n: n * NEW_TOKENS / min(t.total_s for t in stream_runs[n]) for n in STREAMS}
    stream_cpu = {n: n * NEW_TOKENS / min(t.cpu_s or float("inf") for t in stream_runs[n]) for n in STREAMS}
    print()
    print(f"default model ({default.model.num_params() / 1e6:.1f}M params, {default.tokenizer.n_vocab} tokens, "
          f"context {default.model.config.block_size}): {NEW_TOKENS} new tokens per stream, default sampling, best of {args.repeat}")
    print(f"{'':20}{'agg tok/s':>10}{'ms/step':>9}{'vs N=1':>8}{'CPU-time tok/s':>16}{'vs N=1':>8}{'path':>9}{'threads':>9}")
    print(f"{'old path, N=1':20}{old_tok_s:10.1f}{1000 * min(t.total_s for t in old_runs) / NEW_TOKENS:9.2f}{'':>8}"
          f"{old_cpu_tok_s:16.1f}{'':>8}{OLD_PATH:>9}{DECODE_THREADS:>9}")
    for n in STREAMS:
        print(f"{f'N={n}':20}{tok_s[n]:10.1f}{step_ms[n]:9.2f}{tok_s[n] / tok_s[1]:7.2f}x"
              f"{stream_cpu[n]:16.1f}{stream_cpu[n] / stream_cpu[1]:7.2f}x{gen.path_for(n):>9}{gen.threads_for(n):>9}")
    print(f"N=1 vs the old path: {tok_s[1] / old_tok_s:.2f}x (CPU time {stream_cpu[1] / old_cpu_tok_s:.2f}x); "
          f"N=4 vs N=1: {tok_s[4] / tok_s[1]:.2f}x aggregate (CPU time {stream_cpu[4] / stream_cpu[1]:.2f}x)")
    print(f"first token after a {len(prompt)}-token prompt: {1000 * min(first_runs):.1f} ms "
          f"(old path {1000 * min(first_old):.1f} ms)")
    print(f"Generator built in {default_load_ms:.0f} ms (load-time calibration at N=1 included); "
          f"N=2, 4, 8 calibrated in {calibrate_ms:.0f} ms; load average {load_average()} at the end")
    for n in STREAMS:
        print(f"  N={n}: {gen.path_for(n)}: {gen.choices[n].reason}")
        print(f"  {'':{len(str(n)) + 3}}{gen.threads_for(n)} thread(s): {threads_why(gen, n)}")

    if args.json:
        print(json.dumps({
            "kv_cache_tok_s": round(kv.tok_s, 2),
            "no_cache_tok_s": round(nc.tok_s, 2),
            "no_cache_last_only_tok_s": round(ncl.tok_s, 2),
            "transformers_tok_s": round(tf.tok_s, 2) if tf else None,
            "kv_cache_old_path_tok_s": round(best(results["kv-cache, old path"]).tok_s, 2),
            "first_token_ms": round(1000 * kv.first_s, 3) if kv.first_s is not None else None,
            "ms_per_token": round(kv.ms_per_token, 3) if kv.ms_per_token is not None else None,
            "cpu_time_tok_s": {name: round(cpu_tok_s(name), 2) for name, runs in results.items() if runs},
            "speedup_vs_no_cache": round(kv.tok_s / nc.tok_s, 2),
            "speedup_vs_transformers": round(kv.tok_s / tf.tok_s, 2) if tf else None,
            "default_tok_s": {str(n): round(tok_s[n], 2) for n in STREAMS},
            "default_ms_per_step": {str(n): round(step_ms[n], 3) for n in STREAMS},
            "default_cpu_time_tok_s": {str(n): round(stream_cpu[n], 2) for n in STREAMS},
            "default_baseline_tok_s": round(old_tok_s, 2),
            "default_baseline_cpu_time_tok_s": round(old_cpu_tok_s, 2),
            "first_token_ms_250": round(1000 * min(first_runs), 2),
            "first_token_ms_250_baseline": round(1000 * min(first_old), 2),
            "path": gen.path_for(1),
            "paths": {
                "seed": seed_gen.path_for(1),
                "default": {str(n): gen.path_for(n) for n in STREAMS},
                "baseline": OLD_PATH,
                "why": {str(n): gen.choices[n].reason for n in STREAMS},
            },
            "default_threads": {str(n): gen.threads_for(n) for n in STREAMS},
            "default_threads_why": {str(n): threads_why(gen, n) for n in STREAMS},
            "default_n4_vs_n1": round(tok_s[4] / tok_s[1], 3),
            "calibration_ms": {"seed": round(seed_load_ms, 1), "default": round(default_load_ms, 1),
                               "default_n2_n4_n8": round(calibrate_ms, 1)},
            "load_average": load_average(),
            "threads": args.threads,
            "device": str(device),
            "torch": torch.__version__,
            "transformers": hf[1] if hf else None,
        }))
    return 0


def threads_why(gen: Generator, n: int) -> str:
    choice = gen.thread_choices.get(n)
    return choice.reason if choice is not None else "not measured (a GPU, or a thread count was given)"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


if __name__ == "__main__":
    raise SystemExit(main())
