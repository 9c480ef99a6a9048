"""The sampler chain of one decoding step: a step's logits (one row per stream) to its next tokens, with every
rule a ``Sampling`` turns on, in one order for every path (solo, N candidates, the child process):

    logits -> + logit bias -> repetition penalty -> DRY -> banned phrases (-inf)
           -> temperature 0: argmax
           -> otherwise: top-k, temperature, top-p, min-p -> XTC (its chance drawn first) -> draw

(slmtui/engine/logit_rules.py says why this order.) ``SamplerChain.shape`` and ``SamplerChain.draw`` work on
all rows at once; ``SamplerChain.solo`` is the same chain for one row with the one-row functions, which
tests/engine/test_chain.py holds every row of a batch to, token for token.

Nothing here keeps state between steps but the caches of logit_rules (a setting's tables are built once per
value), so a ``Sampling`` changed between two tokens applies to the second.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from slmtui.engine.logit_rules import (
    TextTail,
    apply_dry,
    apply_dry_rows,
    apply_logit_bias,
    logit_bias_vector,
    phrase_ban,
    tokenizer_breakers,
    xtc_fires,
    xtc_protected,
)
from slmtui.engine.sampling import (
    apply_repetition_penalty,
    apply_repetition_penalty_rows,
    draw_one,
    draw_rows,
    top_candidates,
)
from slmtui.engine.tokenizer import Tokenizer

if TYPE_CHECKING:
    from slmtui.core.sampling import Sampling


def shapes_logits(s: Sampling) -> bool:
    """Whether ``s`` changes the logits before the draw (so the alternatives need their own top-k)."""
    return bool(s.logit_bias or s.repetition_penalty != 1.0 or s.dry_multiplier or s.banned_phrases)


class SamplerChain:
    """One tokenizer's sampler chain (the protected tokens of XTC, the tables of the bans, the breakers)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.protect = frozenset(xtc_protected(tokenizer))

    def shape(self, logits: torch.Tensor, recent: torch.Tensor, tails: Sequence[TextTail], s: Sampling) -> torch.Tensor:
        """The logits (rows, V) after bias, repetition penalty, DRY and bans; ``recent`` (rows, T) is each
        row's last story tokens, ``tails`` each row's text. The same tensor when ``s`` turns none of them on."""
        x = apply_logit_bias(logits, logit_bias_vector(self.tokenizer, s.logit_bias))
        if s.repetition_penalty != 1.0:
            x = apply_repetition_penalty_rows(x, recent, s.repetition_penalty)
        if s.dry_multiplier:
            x = apply_dry_rows(x, recent, tokenizer_breakers(self.tokenizer, s.dry_breakers),
                               multiplier=s.dry_multiplier, base=s.dry_base, allowed_length=s.dry_allowed_length)
        ban = phrase_ban(self.tokenizer, s.banned_phrases)
        if ban is not None:
            x = ban.apply_rows(x, tails)
        return x

    def draw(self, shaped: torch.Tensor, s: Sampling, generators: Sequence[torch.Generator],
             top: tuple[torch.Tensor, torch.Tensor] | None = None) -> list[int]:
        """The next token of each row of ``shaped`` (``shape``'s output), row i from ``generators[i]``;
        ``top`` is ``top_candidates(shaped, s)`` when the caller has it already."""
        if s.temperature == 0.0:
            return shaped.argmax(dim=-1).tolist()
        # XTC's chance first, from each row's own generator (none drawn while it is off), then the token.
        fires = [xtc_fires(g, s.xtc_probability) for g in generators] if s.xtc_probability > 0 else None
        values, ids = top if top is not None else top_candidates(shaped, s)
        return draw_rows(values, ids, s, generators, fires, self.protect)

    def solo(self, logits: torch.Tensor, recent: torch.Tensor, tail: TextTail, s: Sampling,
             generator: torch.Generator) -> int:
        """The chain for one row, with the one-row functions: ``logits`` (V,), ``recent`` (T,)."""
        x = apply_logit_bias(logits, logit_bias_vector(self.tokenizer, s.logit_bias))
        if s.repetition_penalty != 1.0:
            x = apply_repetition_penalty(x, recent, s.repetition_penalty)
        if s.dry_multiplier:
            x = apply_dry(x, recent, tokenizer_breakers(self.tokenizer, s.dry_breakers),
                          multiplier=s.dry_multiplier, base=s.dry_base, allowed_length=s.dry_allowed_length)
        ban = phrase_ban(self.tokenizer, s.banned_phrases)
        if ban is not None:
            x = ban.apply(x, tail)
        if s.temperature == 0.0:
            return int(torch.argmax(x))
        fires = xtc_fires(generator, s.xtc_probability)
        return draw_one(*top_candidates(x, s), s, generator, fires, self.protect)
