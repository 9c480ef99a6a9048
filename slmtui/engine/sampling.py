"""Sampling settings and the pure functions that turn logits into the next token.

``Sampling`` is frozen: the UI swaps in a new object (``dataclasses.replace``) and the generator
reads the current one before every token, so a change applies to the very next token.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import torch

from slmtui.core.errors import SlmError


# Each numeric setting's allowed range: enforced here, shown as hints in the UI.
SAMPLING_LIMITS: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 5.0),
    "top_k": (0, 100_000),
    "top_p": (0.0, 1.0),
    "min_p": (0.0, 1.0),
    "repetition_penalty": (0.5, 3.0),
    "max_new_tokens": (1, 100_000),
}


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.8
    """Divides the logits. 0 means greedy: always the most likely token."""
    top_k: int = 40
    """Keep only the k most likely tokens (0 = off)."""
    top_p: float = 0.95
    """Keep the smallest set of tokens whose probability adds up to p (1 = off)."""
    min_p: float = 0.0
    """Drop tokens less likely than min_p times the most likely one (0 = off)."""
    repetition_penalty: float = 1.1
    """Make tokens already in the context less likely (1 = off; CTRL-style, >1 penalises)."""
    max_new_tokens: int = 120
    """How many tokens one continuation writes."""
    seed: int | None = None
    """Same seed, same prompt, same settings: same text. Any integer (see core.seeds); None draws a fresh seed."""
    stop: tuple[str, ...] = ()
    """Generation ends when the text written contains one of these."""

    def __post_init__(self) -> None:
        problems = list(self.problems())
        if problems:
            raise SlmError("; ".join(problems))
        if isinstance(self.stop, list):
            object.__setattr__(self, "stop", tuple(self.stop))

    def problems(self) -> list[str]:
        out = []
        for name, (lo, hi) in SAMPLING_LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                out.append(f"{name} must be a number, got {value!r}")
            elif name in ("top_k", "max_new_tokens") and int(value) != value:
                out.append(f"{name} must be a whole number, got {value}")
            elif not lo <= value <= hi:
                out.append(f"{name} must be between {lo} and {hi}, got {value}")
        if self.top_p == 0.0 and not out:
            out.append("top_p must be greater than 0 (use 1 to turn it off)")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)):
            out.append(f"seed must be a whole number, got {self.seed!r}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            out.append("stop strings must be non-empty text")
        return out

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Sampling:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SlmError(f"unknown sampling settings: {', '.join(unknown)}")
        values = dict(data)
        if "stop" in values:
            values["stop"] = tuple(values["stop"])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]


SAMPLING_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Sampling) if f.name != "stop")
"""The settings a person sets one by one (the panel's fields, the CLI's options, config.toml's [sampling]); stop
strings are a list and travel apart."""
PRESET_FIELDS: tuple[str, ...] = tuple(n for n in SAMPLING_FIELDS if n not in ("max_new_tokens", "seed"))
"""What a preset holds: the character of the sampling, not the length or the seed."""

BUILTIN_PRESETS: dict[str, dict[str, object]] = {
    "faithful": {"temperature": 0.5, "top_k": 20, "top_p": 0.9, "min_p": 0.05, "repetition_penalty": 1.15},
    "balanced": {"temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.0, "repetition_penalty": 1.1},
    "wild": {"temperature": 1.2, "top_k": 0, "top_p": 1.0, "min_p": 0.02, "repetition_penalty": 1.05},
}
"""Presets set the character of the writing (``PRESET_FIELDS``); length and seed stay as they are."""


def apply_repetition_penalty(logits: torch.Tensor, context: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's penalty (Keskar et al. 2019): divide positive logits and multiply negative ones of seen tokens."""
    if penalty == 1.0 or context.numel() == 0:
        return logits
    seen = torch.unique(context)
    scores = logits[seen]
    logits = logits.clone()
    logits[seen] = torch.where(scores > 0, scores / penalty, scores * penalty)
    return logits


def apply_repetition_penalty_rows(logits: torch.Tensor, context: torch.Tensor, penalty: float) -> torch.Tensor:
    """``apply_repetition_penalty`` on every row of ``logits`` (rows, V) with its row of ``context`` (rows, T).

    Each row's seen tokens, offset into the flattened logits, get the same formula: a (rows, V) where() is
    ~10x slower than on the few hundred seen entries. No unique(): a token seen twice is written twice with
    the same value, cheaper than sorting them out (~20 us at 4 rows).
    """
    if penalty == 1.0 or context.numel() == 0:
        return logits
    seen = (context + logits.size(-1) * torch.arange(logits.size(0)).unsqueeze(1)).view(-1)
    scores = logits.reshape(-1)[seen]
    logits = logits.clone()
    logits.view(-1)[seen] = torch.where(scores > 0, scores / penalty, scores * penalty)
    return logits


def top_candidates(logits: torch.Tensor, s: Sampling) -> tuple[torch.Tensor, torch.Tensor]:
    """The top-k logits and their ids, most likely first (the whole vocabulary, sorted, if top_k is 0)."""
    vocab = logits.size(-1)
    k = vocab if s.top_k <= 0 else min(s.top_k, vocab)
    values, ids = torch.topk(logits, k)  # sorted, descending
    return values, ids


def filter_candidates(values: torch.Tensor, ids: torch.Tensor, s: Sampling) -> tuple[torch.Tensor, torch.Tensor]:
    """Temperature, top-p and min-p on candidates sorted most likely first; probabilities sum to 1."""
    probs = torch.softmax(values.float() / s.temperature, dim=-1)
    keep = torch.ones_like(probs, dtype=torch.bool)
    if s.top_p < 1.0:
        # Keep each token whose preceding mass is below p: the smallest set reaching p, at least one token.
        before = torch.cumsum(probs, dim=-1) - probs
        keep &= before < s.top_p
    if s.min_p > 0.0:
        keep &= probs >= s.min_p * probs[0]
    keep[0] = True
    probs = probs[keep]
    return ids[keep], probs / probs.sum()


def filter_logits(logits: torch.Tensor, s: Sampling) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidates and their probabilities after temperature, top-k, top-p and min-p, most likely first.

    Works on the top-k slice (sorted) rather than the whole vocabulary: cheap for 50k tokens.
    """
    return filter_candidates(*top_candidates(logits, s), s)


def draw(ids: torch.Tensor, probs: torch.Tensor, generator: torch.Generator | None = None) -> int:
    """One token from filtered candidates."""
    return int(ids[torch.multinomial(probs, 1, generator=generator)])


def draw_rows(
    values: torch.Tensor, ids: torch.Tensor, s: Sampling, generators: Sequence[torch.Generator]
) -> list[int]:
    """``draw(*filter_candidates(values[i], ids[i], s), generators[i])`` for every row i, most of it done
    once for all rows: the same tokens, and every generator left in the same state.

    ``torch.multinomial`` draws one sample as ``argmax(p / q)`` with ``q ~ Exp(1)`` from the generator, one
    q per candidate (Gumbel-max, exponentiated; torch's own comment in Distributions.cpp), so each row only
    draws its q from its own generator, and softmax, top-p, min-p, normalising and the argmax are (rows, k)
    ops. tests/engine/test_sampling.py checks the equality against ``multinomial`` on random rows. A step
    whose kept candidates are not a prefix of the sorted ones (a float tie in top-p's running sum) or not
    finite goes row by row through the functions above, which also raise what they raise.
    """
    if len(generators) == 1:  # one row: the plain functions are as quick
        return [draw(*filter_candidates(values[0], ids[0], s), generators[0])]
    probs = torch.softmax(values.float() / s.temperature, dim=-1)  # (R, k), each row as filter_candidates
    keep = torch.ones_like(probs, dtype=torch.bool)
    if s.top_p < 1.0:
        keep &= torch.cumsum(probs, dim=-1) - probs < s.top_p
    if s.min_p > 0.0:
        keep &= probs >= s.min_p * probs[:, :1]
    keep[:, 0] = True
    lengths = keep.sum(dim=-1)
    prefix = torch.arange(keep.size(-1)) < lengths.unsqueeze(1)
    if not torch.equal(keep, prefix):
        return [draw(*filter_candidates(values[i], ids[i], s), g) for i, g in enumerate(generators)]
    q = torch.full_like(probs, math.inf)  # dropped candidates: p / inf = 0, never the argmax
    sums = torch.empty(len(generators))
    for i, (length, g) in enumerate(zip(lengths.tolist(), generators)):
        torch.sum(probs[i, :length], dim=0, out=sums[i])  # filter_candidates' sum: same values, same length
        q[i, :length].exponential_(generator=g)
    if not math.isfinite(float(sums.sum())):  # NaN logits: multinomial's own error (the draws are void)
        return [draw(*filter_candidates(values[i], ids[i], s), g) for i, g in enumerate(generators)]
    pick = torch.argmax(probs / sums.unsqueeze(1) / q, dim=-1, keepdim=True)
    return ids.gather(1, pick).squeeze(1).tolist()


def sample_next(logits: torch.Tensor, s: Sampling, generator: torch.Generator | None = None) -> int:
    """Choose the next token from 1-D logits (already repetition-penalised)."""
    if s.temperature == 0.0:
        return int(torch.argmax(logits))
    return draw(*filter_logits(logits, s), generator)
