"""Held-out bits per byte through each decoding path, scored the way generation runs.

    python tests/bench/bench_decode_bpb.py [--tokens N] [--paths exact,int8,...] [BOOK ...]

A path that rounds the weights (bf16, int8) must not make the model worse at what it does: predicting
text it has not seen. Each book is read token by token through the path's KV cache at batch 1, exactly
as ``Generator`` decodes (prefill, one-token steps, the window sliding by a quarter when full), and every
next token is scored with the path's logits (teacher forcing). Books default to ones in the shared corpus
that the bundled default model never trained on (they are not in slmtui/assets/corpus).
The figure that matters is each path's bits per byte minus the exact path's (acceptance: at most 0.01).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from slmtui.core.paths import BUNDLED_CORPUS_DIR  # noqa: E402
from slmtui.engine.decode_paths import CANDIDATES, build_path  # noqa: E402
from slmtui.engine.evaluate import token_byte_lengths  # noqa: E402
from slmtui.engine.model import GPT  # noqa: E402
from slmtui.engine.model_io import load_model_dir  # noqa: E402

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "slmtui" / "assets" / "models" / "default"
HELD_OUT = ["stevenson-treasure-island.txt", "lang-violet-fairy-book.txt", "verne-around-the-world-in-eighty-days.txt"]


@torch.inference_mode()
def score(model: GPT, ids: list[int], token_bytes: list[int], *, slide: float = 0.25) -> tuple[float, int]:
    """Nats and bytes for predicting ids[1:], decoding with a sliding KV-cached window like Generator."""
    block = model.config.block_size
    keep = max(1, int(block * (1.0 - slide)))
    cache = model.new_cache(1)
    window = [ids[0]]
    logits, _ = model(torch.tensor([window]), cache=cache, last_only=True)
    nats, nbytes = 0.0, 0
    for target in ids[1:]:
        row = logits[0, -1].float()
        nats += float(torch.logsumexp(row, -1) - row[target])
        nbytes += token_bytes[target]
        window.append(target)
        if cache.length >= block:
            window = window[-keep:]
            cache.reset()
            logits, _ = model(torch.tensor([window]), cache=cache, last_only=True)
        else:
            logits, _ = model(torch.tensor([[target]]), cache=cache, last_only=True)
    return nats, nbytes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("books", nargs="*", help="text files (default: three held-out books of the bundled corpus)")
    ap.add_argument("--corpus", default=str(BUNDLED_CORPUS_DIR), help="folder the default books are read from (default: the bundled corpus)")
    ap.add_argument("--model", default=str(DEFAULT_MODEL), help="model folder (default: the bundled default model)")
    ap.add_argument("--tokens", type=int, default=16000, help="tokens scored per book, from its start (default 16000)")
    ap.add_argument("--skip", type=int, default=1000, help="tokens skipped at each book's start: the licence header (default 1000)")
    ap.add_argument("--paths", default=",".join(CANDIDATES), help="comma-separated decoding paths")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model_dir(Path(args.model))
    token_bytes = token_byte_lengths(loaded.tokenizer)
    books = [Path(b) for b in args.books] or [Path(args.corpus) / name for name in HELD_OUT]
    docs = [loaded.tokenizer.encode(b.read_text(encoding="utf-8"))[args.skip : args.skip + args.tokens + 1] for b in books]
    results: dict[str, float] = {}
    for name in args.paths.split(","):
        view = build_path(loaded.model, name)
        start = time.perf_counter()
        nats = nbytes = 0
        for ids in docs:
            n, b = score(view, ids, token_bytes)
            nats, nbytes = nats + n, nbytes + b
        results[name] = nats / nbytes / torch.log(torch.tensor(2.0)).item()
        print(f"{name:8} {results[name]:.4f} bits/byte   ({time.perf_counter() - start:.0f} s)", flush=True)
    exact = results.get("exact")
    if exact is not None:
        for name, bpb in results.items():
            print(f"{name:8} {bpb - exact:+.4f} vs exact")
    print(json.dumps({"books": [b.name for b in books], "skip": args.skip, "tokens_per_book": args.tokens, "bits_per_byte": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
