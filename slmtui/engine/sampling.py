"""The pure functions that turn logits into the next token under a ``Sampling`` (slmtui/core/sampling.py: its
fields, checked when it is made, so every value here is in bounds).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import torch

from slmtui.engine.logit_rules import apply_xtc, apply_xtc_rows

if TYPE_CHECKING:  # a type only: a Sampling is handed in, never made here
    from slmtui.core.sampling import Sampling


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

    Each row's seen tokens are gathered, get the same formula and are scattered back: a (rows, V) where() is
    ~10x slower than on the few hundred seen entries, and gather/scatter along the rows take seven ops where
    flat offsets took fourteen (each op costs ~3-5 us of dispatch on a small CPU, measured 44 -> ~25 us a
    step). No unique(): a token seen twice is written twice with the same value.
    """
    if penalty == 1.0 or context.numel() == 0:
        return logits
    scores = logits.gather(1, context)
    return logits.clone().scatter_(1, context, torch.where(scores > 0, scores / penalty, scores * penalty))


def top_candidates(logits: torch.Tensor, s: Sampling) -> tuple[torch.Tensor, torch.Tensor]:
    """The top-k logits and their ids, most likely first (the whole vocabulary, sorted, if top_k is 0)."""
    vocab = logits.size(-1)
    k = vocab if s.top_k <= 0 else min(s.top_k, vocab)
    values, ids = torch.topk(logits, k)  # sorted, descending
    return values, ids


def filter_candidates(values: torch.Tensor, ids: torch.Tensor, s: Sampling) -> tuple[torch.Tensor, torch.Tensor]:
    """Temperature, top-p and min-p on candidates sorted most likely first; probabilities sum to 1."""
    probs = torch.softmax(values.float() / s.temperature, dim=-1)
    keep: torch.Tensor | None = None
    if s.top_p < 1.0:
        # Keep each token whose preceding mass is below p: the smallest set reaching p, at least one token.
        keep = torch.cumsum(probs, dim=-1).sub_(probs) < s.top_p
    if s.min_p > 0.0:
        above = probs >= s.min_p * probs[0]
        keep = above if keep is None else keep.logical_and_(above)
    if keep is not None:  # (with neither, every candidate stays: no mask to build)
        keep[0] = True
        probs, ids = probs[keep], ids[keep]
    return ids, probs / probs.sum()


def filter_logits(logits: torch.Tensor, s: Sampling) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidates and their probabilities after temperature, top-k, top-p and min-p, most likely first.

    Works on the top-k slice (sorted) rather than the whole vocabulary: cheap for 50k tokens.
    """
    return filter_candidates(*top_candidates(logits, s), s)


def draw(ids: torch.Tensor, probs: torch.Tensor, generator: torch.Generator | None = None) -> int:
    """One token from filtered candidates."""
    return int(ids[torch.multinomial(probs, 1, generator=generator)])


def draw_one(values: torch.Tensor, ids: torch.Tensor, s: Sampling, generator: torch.Generator | None,
             fires: bool = False, protect: Collection[int] = ()) -> int:
    """One row's token from its top-k candidates: ``filter_candidates``, then XTC when ``fires`` (its chance,
    drawn before), then the draw. What ``draw_rows`` equals row for row."""
    ids, probs = filter_candidates(values, ids, s)
    if fires:
        ids, probs = apply_xtc(ids, probs, threshold=s.xtc_threshold, fires=True, protect=protect)
    return draw(ids, probs, generator)


def draw_rows(
    values: torch.Tensor, ids: torch.Tensor, s: Sampling, generators: Sequence[torch.Generator],
    fires: Sequence[bool] | None = None, protect: Collection[int] = (),
) -> list[int]:
    """``draw_one(values[i], ids[i], s, generators[i], fires[i], protect)`` for every row i, most of it done
    once for all rows: the same tokens, and every generator left in the same state.

    ``torch.multinomial`` draws one sample as ``argmax(p / q)`` with ``q ~ Exp(1)`` from the generator, one
    q per candidate (Gumbel-max, exponentiated; torch's own comment in Distributions.cpp), so each row only
    draws its q from its own generator, and softmax, top-p, min-p, normalising, XTC and the argmax are
    (rows, k) ops. A row where XTC fired keeps candidates [start, length) renormalised (``apply_xtc_rows``,
    bit for bit ``apply_xtc``) and draws its q for those alone, as multinomial on the kept slice would.
    tests/engine/test_sampling.py checks the equality against ``multinomial`` on random rows. A step
    whose kept candidates are not a prefix of the sorted ones (a float tie in top-p's running sum) or not
    finite goes row by row through the functions above, which also raise what they raise.
    """
    fired = list(fires) if fires is not None else [False] * len(generators)

    def one_by_one() -> list[int]:
        return [draw_one(values[i], ids[i], s, g, fired[i], protect) for i, g in enumerate(generators)]

    if len(generators) == 1:  # one row: the plain functions are as quick
        return one_by_one()
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
        return one_by_one()
    sums = torch.empty(len(generators))
    length_list = lengths.tolist()
    for i, length in enumerate(length_list):
        torch.sum(probs[i, :length], dim=0, out=sums[i])  # filter_candidates' sum: same values, same length
    if not math.isfinite(float(sums.sum())):  # NaN logits: multinomial's own error (the draws are void)
        return one_by_one()
    normal = probs / sums.unsqueeze(1)  # each row's kept candidates as filter_candidates returns them
    starts = [0] * len(generators)
    if any(fired):
        normal, starts = apply_xtc_rows(ids, normal, length_list, threshold=s.xtc_threshold, fires=fired,
                                        protect=protect)
    q = torch.full_like(probs, math.inf)  # dropped candidates: p / inf = 0, never the argmax
    for i, (start, length, g) in enumerate(zip(starts, length_list, generators)):
        q[i, start:length].exponential_(generator=g)
    pick = torch.argmax(normal / q, dim=-1, keepdim=True)
    return ids.gather(1, pick).squeeze(1).tolist()


def sample_next(logits: torch.Tensor, s: Sampling, generator: torch.Generator | None = None) -> int:
    """Choose the next token from 1-D logits (already repetition-penalised)."""
    if s.temperature == 0.0:
        return int(torch.argmax(logits))
    return draw(*filter_logits(logits, s), generator)
