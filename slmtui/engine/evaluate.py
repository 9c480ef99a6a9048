"""How well a model predicts a text: loss per token, perplexity, bits per byte.

Bits per byte is the measure that compares models with different tokenizers. The trainer writes
its final validation figures with this same function, so `slmtui eval` reproduces them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from slmtui.engine.model import GPT
from slmtui.engine.tokenizer import Tokenizer


@dataclass(frozen=True)
class EvalResult:
    tokens: int
    """Tokens predicted (every token but the first of each text)."""
    bytes: int
    """UTF-8 bytes of those tokens."""
    loss: float
    """Mean cross-entropy per token, in nats."""

    @property
    def perplexity(self) -> float:
        return math.exp(self.loss) if self.tokens else float("nan")

    @property
    def bits_per_byte(self) -> float:
        return self.loss * self.tokens / math.log(2) / self.bytes if self.bytes else float("nan")

    def to_dict(self) -> dict[str, float | int]:
        return {
            "tokens": self.tokens,
            "bytes": self.bytes,
            "loss": self.loss,
            "perplexity": self.perplexity,
            "bits_per_byte": self.bits_per_byte,
        }


@torch.inference_mode()
def evaluate_ids(model: GPT, documents: Sequence[Sequence[int]], token_bytes: Sequence[int], *, batch_size: int = 16) -> EvalResult:
    """Score token documents in non-overlapping windows of block_size (each window restarts its context)."""
    model.eval()
    T = model.config.block_size
    device = model.lm_head.weight.device
    windows: list[list[int]] = []
    for ids in documents:
        for start in range(0, max(len(ids) - 1, 0), T):
            windows.append(list(ids[start : start + T + 1]))
    total_nats, total_tokens, total_bytes = 0.0, 0, 0
    for i in range(0, len(windows), batch_size):
        chunk = windows[i : i + batch_size]
        width = max(len(w) for w in chunk)
        x = torch.zeros(len(chunk), width - 1, dtype=torch.long)
        y = torch.full((len(chunk), width - 1), -1, dtype=torch.long)
        for row, w in enumerate(chunk):
            x[row, : len(w) - 1] = torch.tensor(w[:-1])
            y[row, : len(w) - 1] = torch.tensor(w[1:])
            total_bytes += sum(token_bytes[t] for t in w[1:])
        logits, _ = model(x.to(device))
        nats = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1).to(device), ignore_index=-1, reduction="sum")
        total_nats += float(nats)
        total_tokens += int((y >= 0).sum())
    return EvalResult(tokens=total_tokens, bytes=total_bytes, loss=total_nats / max(total_tokens, 1))


def evaluate_texts(model: GPT, tokenizer: Tokenizer, texts: Sequence[str], *, batch_size: int = 16) -> EvalResult:
    documents = tokenizer.encode_batch(list(texts))
    lengths = token_byte_lengths(tokenizer)
    return evaluate_ids(model, documents, lengths, batch_size=batch_size)


def token_byte_lengths(tokenizer: Tokenizer) -> list[int]:
    """Bytes each token id stands for (special tokens count as none)."""
    special = set(tokenizer.spec.special_tokens.values())
    out = []
    for t in range(tokenizer.n_vocab):
        if t in special:
            out.append(0)
            continue
        try:
            out.append(len(tokenizer.token_bytes(t)))
        except KeyError:
            out.append(0)
    return out
