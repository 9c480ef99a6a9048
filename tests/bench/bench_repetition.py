"""How much the bundled default model repeats itself, with DRY and XTC off and on (issue 21).

    python tests/bench/bench_repetition.py [--prompts N] [--tokens N] [--settings off,dry,...] [--json]

For each setting, one continuation of ``--tokens`` (default 300) tokens from each of ``--prompts`` (default 20)
different story openings, seed i for prompt i (the same seeds for every setting), on the exact decoding path
with one thread, all else the app's default sampling (temperature 0.8, top-k 40, top-p 0.95, repetition
penalty 1.1). Printed per setting, each the mean over the continuations:

- rep-4: the share of the continuation's word 4-grams that already occurred earlier in it (a loop scores
  high; words are whitespace-separated, lowercased);
- distinct-2: distinct word bigrams / all word bigrams of the continuation (1 = never a repeated pair);
- own bpb: the model's own bits per byte on the text it wrote: -log2 of each token's probability (the
  model's softmax at temperature 1, before any sampling rule: ``TokenEvent.prob``), summed, over the UTF-8
  bytes written. A repeat is easy to predict, so a looping text scores low;
- tok/s, for the record (the rules' cost).

Then two samples per setting (the first 400 characters of prompts 0 and 1). The figures rest on the seeds and
the machine's float rounding only (the exact path), so a rerun prints the same numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from slmtui.core.model_catalog import bundled_default  # noqa: E402
from slmtui.core.sampling import Sampling  # noqa: E402
from slmtui.engine.generate import Generator  # noqa: E402
from slmtui.engine.model_io import load_model_dir  # noqa: E402

PROMPTS = (
    "Once upon a time there was a little girl who lived at the edge of a great forest.",
    "The old sailor sat by the fire and began his story.",
    "It was the night before the king's birthday, and the whole castle was awake.",
    "Tom had never seen the sea before.",
    "\"Where are you going?\" asked the fox.",
    "The wind blew hard across the hills, and the shepherd gathered his sheep.",
    "In a small house at the end of the lane lived a tailor and his three sons.",
    "The children ran down to the river as soon as the sun came up.",
    "Long ago, when the world was young, the animals could talk.",
    "Mary opened the letter with trembling hands.",
    "The ship had been at sea for forty days when the storm came.",
    "There was once a poor miller who had a beautiful daughter.",
    "The snow fell all night, and in the morning the village was white.",
    "\"I will find the golden key,\" said the youngest prince.",
    "Peter climbed the tall tree to look over the garden wall.",
    "The teacher looked up from her desk and saw that the room was empty.",
    "Deep in the mountains there was a cave that no one dared to enter.",
    "The little boat drifted slowly towards the island.",
    "When the clock struck twelve, the doll on the shelf opened her eyes.",
    "My grandmother always told me never to go into the woods alone.",
)
FAITHFUL = {"temperature": 0.5, "top_k": 20, "top_p": 0.9, "min_p": 0.05, "repetition_penalty": 1.15}
SETTINGS: dict[str, dict[str, float]] = {
    "off": {},
    "dry 0.4": {"dry_multiplier": 0.4},
    "dry 0.8": {"dry_multiplier": 0.8},
    "dry 1.2": {"dry_multiplier": 1.2},
    "xtc 0.1/0.5": {"xtc_threshold": 0.1, "xtc_probability": 0.5},
    "dry 0.8 + xtc": {"dry_multiplier": 0.8, "xtc_threshold": 0.1, "xtc_probability": 0.5},
    "rep 1.0": {"repetition_penalty": 1.0},
    "rep 1.0 + dry 0.8": {"repetition_penalty": 1.0, "dry_multiplier": 0.8},
    "rep 1.0 + dry 0.4": {"repetition_penalty": 1.0, "dry_multiplier": 0.4},
    "faithful": FAITHFUL,
    "faithful + dry 0.8": {**FAITHFUL, "dry_multiplier": 0.8},
    "greedy": {"temperature": 0.0, "repetition_penalty": 1.0},
    "greedy + dry 0.8": {"temperature": 0.0, "repetition_penalty": 1.0, "dry_multiplier": 0.8},
}


def words(text: str) -> list[str]:
    return text.lower().split()


def repeated_4grams(text: str) -> float:
    """The share of word 4-grams that occurred earlier in the same text (0 for fewer than 4 words)."""
    w = words(text)
    grams = [tuple(w[i:i + 4]) for i in range(len(w) - 3)]
    seen: set[tuple[str, ...]] = set()
    repeats = 0
    for g in grams:
        repeats += g in seen
        seen.add(g)
    return repeats / len(grams) if grams else 0.0


def distinct_2(text: str) -> float:
    w = words(text)
    pairs = [tuple(w[i:i + 2]) for i in range(len(w) - 1)]
    return len(set(pairs)) / len(pairs) if pairs else 1.0


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def run_setting(gen: Generator, base: Sampling, n_prompts: int) -> dict[str, object]:
    texts, rep4, dist2, bits, nbytes, produced = [], [], [], 0.0, 0, 0
    start = time.perf_counter()
    for i, prompt in enumerate(PROMPTS[:n_prompts]):
        s = dataclasses.replace(base, seed=i)
        pieces, own = [], 0.0
        for event in gen.stream(prompt, s):
            pieces.append(event.text)
            own += -math.log2(max(event.prob, 1e-30))
            produced += 1
        text = "".join(pieces)
        texts.append(text)
        rep4.append(repeated_4grams(text))
        dist2.append(distinct_2(text))
        bits += own
        nbytes += len(text.encode("utf-8"))
    elapsed = time.perf_counter() - start
    return {"rep4": sum(rep4) / len(rep4), "distinct2": sum(dist2) / len(dist2), "own_bpb": bits / max(nbytes, 1),
            "tok_s": produced / elapsed, "samples": [PROMPTS[i] + texts[i] for i in range(min(2, len(texts)))],
            "rep4_each": rep4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--prompts", type=int, default=20, help="continuations per setting (at most 20)")
    parser.add_argument("--tokens", type=int, default=300, help="tokens per continuation")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated names from: "
                        + ", ".join(SETTINGS))
    parser.add_argument("--json", action="store_true", help="end with one JSON object on the last line")
    args = parser.parse_args()
    torch.set_num_threads(1)
    loaded = load_model_dir(bundled_default())
    gen = Generator(loaded.model, loaded.tokenizer, path="exact", num_threads=1)
    n = min(args.prompts, len(PROMPTS))
    names = [name.strip() for name in args.settings.split(",") if name.strip()]
    print(f"bundled default model, {n} prompts x {args.tokens} tokens, exact path, 1 thread, on {cpu_name()}")
    print(f"{'setting':<16}{'rep-4':>8}{'distinct-2':>12}{'own bpb':>10}{'tok/s':>8}")
    results: dict[str, dict[str, object]] = {}
    for name in names:
        base = Sampling(max_new_tokens=args.tokens, **SETTINGS[name])  # type: ignore[arg-type]
        r = results[name] = run_setting(gen, base, n)
        print(f"{name:<16}{r['rep4']:>8.4f}{r['distinct2']:>12.3f}{r['own_bpb']:>10.3f}{r['tok_s']:>8.1f}",
              flush=True)
    for name, r in results.items():
        for k, sample in enumerate(r["samples"]):  # type: ignore[arg-type]
            print(f"\n--- {name}, sample {k + 1}:\n{sample[:400]}")
    if args.json:
        print(json.dumps({name: {k: v for k, v in r.items() if k != "samples"} for name, r in results.items()}))


if __name__ == "__main__":
    main()
