"""A banned phrase the bundled default model likes to write, before and after the ban (issue 21).

    python tests/bench/bench_bans.py [--n N] [--tokens N] [--phrase TEXT] [--json]

Continuations with seeds 0..N-1 (``--n``, default 200), seed i from opening i mod 5 (the first five openings
of bench_repetition.py), ``--tokens`` (default 70) tokens each, the app's default sampling (``Sampling()``:
temperature 0.8, top-k 40, top-p 0.95, repetition penalty 1.1), the exact path, one thread. The phrase is
``--phrase``, or else the word pair found in the most of these continuations with bans off (two words of
letters or digits with one space between, neither a small word such as "the" or "said", not in an opening).

Then exactly the seeds whose continuation held the phrase run again with ``banned_phrases=(phrase,)``, and
none may hold it. "Holds" is what a ban promises (README, "Keeping the story on track"): the phrase in any
case (ASCII letters either way), as whole words (no letter or digit right before or after it), anywhere in
the model's text, whichever tokens it is split into, or begun in the opening and finished by the model. The
check reads the decoded text, not the tokens, so an occurrence across token boundaries counts. Also printed,
as information: continuations that hold the phrase's letters at all, inside other words too ("said they"
for "said the"), which a ban does not forbid.

Printed: the phrase and the tokens it takes after a space, how many of N held it before, how many of those held it after (must be 0), the tokens
written, the wall time, and two before/after samples. Exits 1 if any banned text appears.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_repetition import PROMPTS as OPENINGS

from slmtui.core.model_catalog import bundled_default
from slmtui.core.sampling import Sampling
from slmtui.engine.generate import Generator
from slmtui.engine.model_io import load_model_dir

PROMPTS = OPENINGS[:5]
SMALL = frozenset((
    "a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "by", "for", "with", "from", "as", "into",
    "that", "this", "it", "its", "he", "she", "they", "we", "you", "i", "his", "her", "their", "our", "my", "your",
    "him", "them", "me", "us", "was", "were", "is", "are", "be", "been", "had", "has", "have", "do", "did", "not",
    "no", "so", "then", "there", "here", "up", "out", "down", "over", "all", "one", "said", "if", "when", "what",
))
"""Words too common to make a phrase of their own: a found phrase has none of them ("said Dorothy" has one)."""


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (it can be just "AMD EPYC"), with torch's vector level, whether
    it has bf16 and AMX, and its cores."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    lines = info.splitlines()
    name = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "unknown CPU")
    flags = set(next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), []))
    extras = [f if f in flags else "no " + f for f in ("avx512_bf16", "amx_tile")]
    cores = sum(ln.startswith("processor") for ln in lines)
    return f"{name} ({torch.backends.cpu.get_cpu_capability()}, {', '.join(extras)}, {cores} cores)"


def matcher(phrase: str) -> re.Pattern[str]:
    """The phrase as a ban sees it: any case of its ASCII letters, whole words (ASCII letters and digits)."""
    # In a lookahead, so that every occurrence is found, overlapping ones too; group 1 is the occurrence.
    return re.compile(r"(?=(?<![A-Za-z0-9])(" + re.escape(phrase) + r")(?![A-Za-z0-9]))", re.IGNORECASE)


def holds(pattern: re.Pattern[str], prompt: str, text: str) -> bool:
    """Whether the model's text holds the phrase: an occurrence that ends in ``text`` (one begun in the prompt
    counts too). Searched in prompt + text, so a token boundary inside the phrase hides nothing."""
    return any(m.end(1) > len(prompt) for m in pattern.finditer(prompt + text))


def holds_letters(phrase: str, prompt: str, text: str) -> bool:
    """Whether the phrase's letters end in ``text`` in any case, inside other words too (a ban allows those)."""
    return phrase.lower() in (prompt[len(prompt) - len(phrase) + 1:] + text).lower()


def word_pairs(text: str) -> set[str]:
    """The word pairs of a text, each written as it would be banned: two words with one space between."""
    return {f"{a} {b}".lower() for a, b in re.findall(r"(?=(?<![A-Za-z0-9])([A-Za-z0-9]+) ([A-Za-z0-9]+)"
                                                      r"(?![A-Za-z0-9]))", text)}


def pick_phrase(prompts: list[str], texts: list[str]) -> tuple[str, int]:
    """The word pair held by the most continuations (as a ban counts), no small word in it, not in a prompt."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(word_pairs(text))
    opening = " ".join(prompts).lower()
    candidates = [(p, c) for p, c in counts.most_common(200)
                  if not any(w in SMALL for w in p.split()) and p not in opening]
    best, best_n = "", -1
    for phrase, _ in candidates[:30]:
        pattern = matcher(phrase)
        n = sum(holds(pattern, pr, t) for pr, t in zip(prompts, texts))
        if n > best_n:
            best, best_n = phrase, n
    return best, best_n


def run(gen: Generator, base: Sampling, seeds: list[int]) -> tuple[dict[int, str], int]:
    """One continuation per seed, seed i from PROMPTS[i % 5]; the texts by seed and the tokens written."""
    texts, produced = {}, 0
    for i in seeds:
        pieces = [event.text for event in gen.stream(PROMPTS[i % len(PROMPTS)], dataclasses.replace(base, seed=i))]
        produced += len(pieces)
        texts[i] = "".join(pieces)
    return texts, produced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=200, help="seeds 0..N-1 (default 200)")
    parser.add_argument("--tokens", type=int, default=70, help="tokens per continuation (default 70)")
    parser.add_argument("--phrase", default="", help="the phrase to ban (default: found, see above)")
    parser.add_argument("--json", action="store_true", help="end with one JSON object on the last line")
    args = parser.parse_args()
    if args.n < 1 or args.tokens < 1:
        parser.error("--n and --tokens must be at least 1")
    torch.set_num_threads(1)
    loaded = load_model_dir(bundled_default())
    gen = Generator(loaded.model, loaded.tokenizer, path="exact", num_threads=1)
    base = Sampling(max_new_tokens=args.tokens)
    print(f"bundled default model, seeds 0..{args.n - 1} x {args.tokens} tokens, the app's default sampling, "
          f"exact path, 1 thread, on {cpu_name()}", flush=True)

    start = time.perf_counter()
    seeds = list(range(args.n))
    before, tokens_before = run(gen, base, seeds)
    prompts = [PROMPTS[i % len(PROMPTS)] for i in seeds]
    phrase = args.phrase or pick_phrase(prompts, [before[i] for i in seeds])[0]
    if not phrase:
        print("no phrase found: try more seeds or --phrase")
        sys.exit(2)
    pattern = matcher(phrase)
    held = [i for i in seeds if holds(pattern, PROMPTS[i % len(PROMPTS)], before[i])]
    loose_before = sum(holds_letters(phrase, PROMPTS[i % len(PROMPTS)], before[i]) for i in seeds)
    split = [loaded.tokenizer.decode([t]) for t in loaded.tokenizer.encode(" " + phrase)]
    print(f"phrase {phrase!r} (after a space, {len(split)} tokens: {split}): in {len(held)} of {args.n} "
          f"continuations with bans off "
          f"({loose_before} hold its letters at all, inside other words too)", flush=True)

    banned = dataclasses.replace(base, banned_phrases=(phrase,))
    after, tokens_after = run(gen, banned, held)
    elapsed = time.perf_counter() - start
    still = [i for i in held if holds(pattern, PROMPTS[i % len(PROMPTS)], after[i])]
    loose_after = sum(holds_letters(phrase, PROMPTS[i % len(PROMPTS)], after[i]) for i in held)
    changed = sum(after[i] != before[i] for i in held)
    print(f"banned: in {len(still)} of those {len(held)} reruns (must be 0); {changed} of them changed; "
          f"{loose_after} hold its letters inside other words")
    print(f"{tokens_before + tokens_after} tokens in {elapsed:.0f} s "
          f"({(tokens_before + tokens_after) / elapsed:.1f} tok/s)")
    for i in held[:2]:
        prompt = PROMPTS[i % len(PROMPTS)]
        print(f"\n--- seed {i}, bans off:\n{prompt}{before[i]}\n--- seed {i}, {phrase!r} banned:\n{prompt}{after[i]}")
    if still:
        print(f"\nFAIL: {phrase!r} still in seeds {still}")
    if args.json:
        print(json.dumps({"phrase": phrase, "n": args.n, "tokens": args.tokens, "before": len(held),
                          "after": len(still), "changed": changed, "loose_before": loose_before,
                          "loose_after": loose_after, "seconds": round(elapsed, 1), "cpu": cpu_name()}))
    sys.exit(1 if still else 0)


if __name__ == "__main__":
    main()
