"""Per-step cost of the logit rules (slmtui/engine/logit_rules.py) beside a plain sampling step.

    python tests/bench/bench_logit_rules.py [--json] [--repeat N]

The shipped model's vocabulary (8192 tokens), random logits, one thread. For windows of 256 and 512 tokens of
a book (Peter and Wendy) and for 1 and 4 rows, the median time of one call of:

- filter_logits: the plain step the rules sit beside (top-k 40, temperature 0.8, top-p 0.95; per row);
- repetition penalty: sampling.apply_repetition_penalty_rows at 1.1;
- DRY (prose): apply_dry_rows at 0.8 / 1.75 / 2 on the book's window; DRY (loop): on a window that repeats one
  30-token sentence (every token has hundreds of repeats: its worst case);
- XTC: apply_xtc on filter_logits' candidates (firing; threshold 0.1), per row;
- bans: PhraseBan.apply_rows with 10 phrases after the window's text;
- bias: apply_logit_bias with 10 words.

Then what a change of setting costs once (building the breaker mask, the vocabulary index, the bans, the bias).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from slmtui.engine import logit_rules as lr  # noqa: E402
from slmtui.core.model_catalog import bundled_default  # noqa: E402
from slmtui.engine.model_io import load_tokenizer  # noqa: E402
from slmtui.core.model_folder import read_model_info  # noqa: E402
from slmtui.core.paths import BUNDLED_CORPUS_DIR  # noqa: E402
from slmtui.core.sampling import Sampling  # noqa: E402
from slmtui.engine.sampling import apply_repetition_penalty_rows, filter_logits  # noqa: E402

PHRASES = ("suddenly", "once upon a time", "Peter Pan", "the dark", "shivered", "a chill ran down",
           "Captain Hook", "never again", "little", "Wendy said")
BIASES = tuple((w, 3.0) for w in ("dragon", "castle", "sword", "moon", "river", "forest", "king", "ship", "Hook", "fairy"))


def median_us(fn: Callable[[], object], repeat: int) -> float:
    for _ in range(max(3, repeat // 10)):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e6 * statistics.median(times)


def once_ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - start)


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", action="store_true", help="end with one JSON object on the last line")
    parser.add_argument("--repeat", type=int, default=300, help="timed calls per figure (the median counts)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tok = load_tokenizer(read_model_info(bundled_default()))
    vocab = tok.n_vocab
    book = (BUNDLED_CORPUS_DIR / "barrie-peter-and-wendy.txt").read_text(encoding="utf-8")
    ids = tok.encode(book[20_000:60_000])
    sentence = ids[3000:3030]

    build = {
        "breaker mask": once_ms(lambda: lr.dry_breaker_mask(lr.vocabulary_bytes(tok), ("\n", ":", '"', "*"))),
        "vocabulary index": once_ms(lambda: lr.VocabIndex(lr.vocabulary_bytes(tok))),
    }
    index = lr.vocab_index(tok)
    build["bans (10 phrases)"] = once_ms(lambda: lr.PhraseBan(index, PHRASES))
    build["bias (10 words)"] = once_ms(lambda: lr.logit_bias_vector.__wrapped__(tok, BIASES))
    breaker = lr.tokenizer_breakers(tok, ("\n", ":", '"', "*"))
    ban = lr.phrase_ban(tok, PHRASES)
    bias = lr.logit_bias_vector(tok, BIASES)
    assert ban is not None
    s = Sampling()
    dry = dict(multiplier=lr.DRY_ON_MULTIPLIER, base=1.75, allowed_length=2)
    g = torch.Generator().manual_seed(0)

    print(f"{cpu_name()}, torch {torch.__version__}, 1 thread; vocabulary {vocab}; median of {args.repeat} calls, us")
    header = f"{'':22}" + "".join(f"{f'ctx {n}, {r} row' + ('s' if r > 1 else ''):>16}" for n in (256, 512) for r in (1, 4))
    print(header)
    results: dict[str, dict[str, float]] = {}
    columns = []
    for n in (256, 512):
        for rows in (1, 4):
            key = f"ctx{n}_rows{rows}"
            columns.append(key)
            window = torch.tensor([ids[1000 + 97 * r : 1000 + 97 * r + n] for r in range(rows)])
            loop = torch.tensor([(sentence * (n // len(sentence) + 1))[r : r + n] for r in range(rows)])
            tails = [lr.TextTail(tok.decode(row.tolist())) for row in window]
            logits = torch.randn(rows, vocab, generator=g) * 3
            candidates = [filter_logits(logits[r], s) for r in range(rows)]
            figures = {
                "filter_logits": lambda: [filter_logits(logits[r], s) for r in range(rows)],
                "repetition penalty": lambda: apply_repetition_penalty_rows(logits, window, 1.1),
                "DRY (prose)": lambda: lr.apply_dry_rows(logits, window, breaker, **dry),
                "DRY (loop)": lambda: lr.apply_dry_rows(logits, loop, breaker, **dry),
                "XTC": lambda: [lr.apply_xtc(i, p, threshold=0.1, fires=True) for i, p in candidates],
                "bans": lambda: ban.apply_rows(logits, tails),
                "bias": lambda: lr.apply_logit_bias(logits, bias),
            }
            for name, fn in figures.items():
                results.setdefault(name, {})[key] = median_us(fn, args.repeat)
    for name, row in results.items():
        print(f"{name:22}" + "".join(f"{row[c]:16.1f}" for c in columns))
    print("\nonce per change of setting, ms: " + ", ".join(f"{k} {v:.1f}" for k, v in build.items()))
    if args.json:
        print(json.dumps({"cpu": cpu_name(), "vocab": vocab, "step_us": results, "build_ms": build}))


if __name__ == "__main__":
    main()
