"""Streamed generation speed: the engine's KV-cached Generator against two peers.

    python tests/bench/bench_generate.py [--json] [--repeat N] [--threads N] [--device cpu|cuda]

Batch 1, a randomly initialised ``seed``-preset GPT (GPT-2 tokenizer, 128 context, 4 layers x 256,
4 heads), a 4-token prompt, 120 new tokens, temperature 0.8, top-k 40, top-p 0.9 (no repetition
penalty, which the peers do not apply either). Each contender is warmed up once, then timed ``--repeat``
times; the best run counts (the one least disturbed by whatever else the machine is doing).

- kv-cache: ``Generator.stream``, what the app and ``slmtui generate`` run (it also computes the 5
  alternatives and each token's probability for the UI).
- no-cache: the nanoGPT-style loop the project started from: re-run the whole (cropped) context for
  every new token (``model(idx)``, logits for every position), then temperature, top-k, top-p and a
  multinomial draw.
- no-cache, last: the same, but with nanoGPT's inference trick of running the LM head on the last
  position only (``last_only=True``): shown so the share of the LM head is visible; not a target.
- transformers: ``GPT2LMHeadModel`` of the same sizes, ``.generate(do_sample=True, ...)`` with its own
  KV cache; only when ``transformers`` is importable (it is never a dependency of slmtui).

All contenders run with the same intra-op thread count (--threads, default 1, the engine's own
decoding default; the Generator is told to keep that setting rather than apply its own).

Figures: tok/s = new tokens / wall time from the call to the last token (prefill included);
ms/token = mean time per token after the first; first token = time to the first event.
With --json the last line is one JSON object with those figures.
"""

from __future__ import annotations

import argparse
import json
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

from slmtui.engine import GPT, Generator, Sampling, Tokenizer, preset  # noqa: E402
from slmtui.engine.generate import DECODE_THREADS  # noqa: E402

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


def bench_kv_cache(model: GPT, tokenizer: Tokenizer, device: torch.device, seed: int) -> Timing:
    sampling = Sampling(
        temperature=TEMPERATURE, top_k=TOP_K, top_p=TOP_P, repetition_penalty=1.0, max_new_tokens=NEW_TOKENS, seed=seed
    )
    generator = Generator(model, tokenizer, num_threads=None)  # the bench's --threads, like the peers
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
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(0)
    model = GPT(preset("seed")).to(device).eval()
    tokenizer = Tokenizer.gpt2()
    hf = make_transformers_bench(device)

    results: dict[str, list[Timing]] = {"kv-cache": [], "no-cache": [], "no-cache, last": [], "transformers": []}
    contenders: dict[str, Callable[[int], Timing]] = {
        "kv-cache": lambda seed: bench_kv_cache(model, tokenizer, device, seed),
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
          f"best of {args.repeat}")
    print()
    print(f"{'':16}{'tok/s':>9}{'ms/token':>10}{'first token':>13}{'median tok/s':>14}{'CPU-time tok/s':>16}")
    for name, runs in results.items():
        if not runs:
            print(f"{name:16}{'(transformers not installed)':>46}")
            continue
        b = best(runs)
        med = statistics.median(t.tok_s for t in runs)
        ms = f"{b.ms_per_token:.2f}" if b.ms_per_token is not None else "-"
        first = f"{1000 * b.first_s:.1f} ms" if b.first_s is not None else "-"
        cpu_best = max(NEW_TOKENS / t.cpu_s for t in runs if t.cpu_s)
        print(f"{name:16}{b.tok_s:9.1f}{ms:>10}{first:>13}{med:14.1f}{cpu_best:16.1f}")
    print()
    def cpu_tok_s(name: str) -> float:
        return max(NEW_TOKENS / t.cpu_s for t in results[name] if t.cpu_s)

    print(f"kv-cache vs no-cache:     {kv.tok_s / nc.tok_s:.1f}x   (vs no-cache, last: {kv.tok_s / ncl.tok_s:.1f}x)")
    if tf is not None:
        print(f"kv-cache vs transformers: {kv.tok_s / tf.tok_s:.1f}x (transformers {hf[1] if hf else ''})")
    if args.json:
        print(json.dumps({
            "kv_cache_tok_s": round(kv.tok_s, 2),
            "no_cache_tok_s": round(nc.tok_s, 2),
            "no_cache_last_only_tok_s": round(ncl.tok_s, 2),
            "transformers_tok_s": round(tf.tok_s, 2) if tf else None,
            "first_token_ms": round(1000 * kv.first_s, 3) if kv.first_s is not None else None,
            "ms_per_token": round(kv.ms_per_token, 3) if kv.ms_per_token is not None else None,
            "cpu_time_tok_s": {name: round(cpu_tok_s(name), 2) for name, runs in results.items() if runs},
            "speedup_vs_no_cache": round(kv.tok_s / nc.tok_s, 2),
            "speedup_vs_transformers": round(kv.tok_s / tf.tok_s, 2) if tf else None,
            "threads": torch.get_num_threads(),
            "device": str(device),
            "torch": torch.__version__,
            "transformers": hf[1] if hf else None,
        }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
