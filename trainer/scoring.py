"""How the training loop scores a model on held-out text: a capped sample of windows while it trains, every
token once it has finished (as ``slmtui eval`` scores them)."""

from __future__ import annotations

import math

import torch

from slmtui.core.gpt_config import GPTConfig
from slmtui.engine.evaluate import evaluate_ids
from slmtui.engine.model import GPT


def score_in_full(weights: dict[str, torch.Tensor], config: GPTConfig, val_docs: list[list[int]],
                  heldout_docs: list[list[int]], byte_lengths: list[int]) -> dict[str, object]:
    """The kept weights scored on every validation and held-out token, as `slmtui eval` scores them.

    Periodic evaluations sample at most eval_windows windows for speed; the figures a finished run
    writes to model.toml are these, so `slmtui eval --corpus ... --split val|heldout` reproduces them.
    """
    model = GPT(config)
    model.load_state_dict(weights)
    val = evaluate_ids(model, val_docs, byte_lengths)
    out: dict[str, object] = {"val_loss": val.loss, "val_bpb": val.bits_per_byte, "val_tokens": val.tokens,
                              "val_bytes": val.bytes, "scored": "full"}
    if heldout_docs:
        held = evaluate_ids(model, heldout_docs, byte_lengths)
        out.update(heldout_loss=held.loss, heldout_bpb=held.bits_per_byte, heldout_tokens=held.tokens,
                   heldout_bytes=held.bytes)
    return out


def cap_windows(docs: list[list[int]], block_size: int, cap: int) -> list[list[int]]:
    """At most ``cap`` evaluation windows, spread evenly over the documents (all of them when few)."""
    total = sum(max(0, math.ceil((len(d) - 1) / block_size)) for d in docs)
    if total <= cap:
        return docs
    keep_every = total / cap
    out, index, next_keep = [], 0, 0.0
    for d in docs:
        for start in range(0, max(len(d) - 1, 0), block_size):
            if index >= next_keep:
                out.append(d[start : start + block_size + 1])
                next_keep += keep_every
            index += 1
    return out
