"""Training step throughput of each modern-recipe option against today's recipe, on this machine.

    python tests/bench/bench_recipe.py [--rounds 4] [--variants base,rope,muon,...] [--threads 2]

Each variant is the ``default`` preset with one change (``all``: every change at once), trained the
way slm-train trains it (its optimizer, bf16 autocast where the CPU has fast bf16, clipping) on random
tokens (throughput does not depend on the text). The variants take turns, one step each per round,
so a burst of load from other work hits them all alike; each variant's figure is its fastest step,
the least disturbed reading. The ratio to ``base`` is what sets a pilot's token budget for equal
compute: tokens = ratio x the baseline's tokens (docs/training-runs.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from slmtui.engine.model import GPT  # noqa: E402
from trainer.config import PRESETS, preset  # noqa: E402
from trainer.loop import make_optimizer, pick_dtype  # noqa: E402

VARIANTS: dict[str, tuple[dict[str, object], dict[str, object]]] = {
    # name: (GPTConfig changes, TrainConfig changes)
    "base": ({}, {}),
    "rope": ({"pos_emb": "rope"}, {}),
    "rmsnorm": ({"norm": "rmsnorm"}, {}),
    "qk_norm": ({"qk_norm": True}, {}),
    "relu2": ({"mlp": "relu2"}, {}),
    "zero_init_proj": ({"zero_init_proj": True}, {}),
    "untied": ({"tie_embeddings": False}, {}),
    "softcap": ({"logit_softcap": 15.0}, {}),
    "muon": ({}, {"optimizer": "muon"}),
    "all": ({"pos_emb": "rope", "norm": "rmsnorm", "qk_norm": True, "mlp": "relu2", "zero_init_proj": True,
             "tie_embeddings": False, "logit_softcap": 15.0}, {"optimizer": "muon"}),
    # size (issue 19's pilots): each on the preset as it is, one dimension changed
    "w384": ({"n_embd": 384, "n_head": 6}, {}),
    "w512": ({"n_embd": 512, "n_head": 8}, {}),
    "d8": ({"n_layer": 8}, {}),
    "d10": ({"n_layer": 10}, {}),
    "ctx512": ({"block_size": 512}, {}),
    "v16k": ({"vocab_size": 16384}, {}),
    "dropout": ({"dropout": 0.1}, {}),
    # the record's ideas (issue 19)
    "unet": ({"unet_skips": True}, {}),
    "embed_skips": ({"embed_skips": True}, {}),
    # The trainer's --compile (torch.compile of the model, inductor); its first step (compilation) is untimed.
    "compile": ({}, {"compile": True}),
    "compile_opt": ({}, {"compile": True}),  # and the optimizer's step (Muon's orthogonalisation) compiled too
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=4, help="timed steps per variant (after one warm-up step)")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--preset", default="default")
    p.add_argument("--threads", type=int)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n for n in args.variants.split(",") if n]
    device = torch.device("cpu")
    dtype = pick_dtype("auto", device)
    base_model, base_train = preset(args.preset).model, PRESETS[args.preset].train
    B = base_train.batch_size
    print(f"{args.preset}: batch {B} x {base_model.block_size}, {torch.get_num_threads()} threads, {dtype}; "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    runs = {}
    for name in names:
        arch, opt = VARIANTS[name]
        torch.manual_seed(0)
        config = replace(base_model, **arch)
        model = GPT(config).train()
        # Each variant's own batch: a longer context moves more tokens a step, a larger vocabulary draws wider.
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, config.vocab_size, (B, config.block_size), generator=g)
        y = torch.randint(0, config.vocab_size, (B, config.block_size), generator=g)
        train_cfg = replace(base_train, **opt)
        step_model = torch.compile(model) if train_cfg.compile else model
        optimizer = make_optimizer(model, train_cfg, device)
        if name == "compile_opt":
            optimizer.step = torch.compile(optimizer.step)  # type: ignore[method-assign]
        runs[name] = (model, step_model, optimizer, x, y)
    autocast = torch.autocast("cpu", dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.rounds + 1):
        for name in names:
            model, step_model, optimizer, x, y = runs[name]
            t0 = time.perf_counter()
            with autocast:
                _, loss = step_model(x, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            loss.item()
            times[name].append(time.perf_counter() - t0)
    rates = {name: runs[name][3].numel() / min(times[name][1:]) for name in names}
    base = rates.get("base")
    out = {}
    for name in names:
        best = min(times[name][1:])
        ratio = rates[name] / base if base else None
        params = sum(p.numel() for p in runs[name][0].parameters())
        out[name] = {"best_step_s": best, "tokens_per_s": rates[name], "ratio_to_base": ratio, "params": params,
                     "first_step_s": times[name][0]}
        print(f"  {name:15s} {params / 1e6:6.2f}M params  best step {best * 1000:7.0f} ms  {rates[name]:7.0f} tok/s"
              + (f"  x{ratio:.3f} of base" if ratio else "") + f"  (first step {times[name][0]:.1f} s)", flush=True)
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
