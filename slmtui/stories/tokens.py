"""A passage's tokens as the database keeps them: one JSON line per token the model wrote."""

from __future__ import annotations

import json
from typing import Any

TokenTuple = tuple[int, int, int, float, tuple[tuple[int, str, float], ...]]
"""(start, end, token id, probability, alternatives as (token id, text, probability)): one stored token."""


def pack_token(start: int, end: int, token_id: int, prob: float, alternatives: Any) -> str:
    """One token as a JSON line: offsets in its passage's text, id, probability, alternatives. Probabilities
    keep 5 decimals: token view shows two, and a line stays ~100 bytes with five alternatives."""
    alts = [[a[0], a[1], round(a[2], 5)] for a in alternatives]
    return json.dumps([start, end, token_id, round(prob, 5), alts], ensure_ascii=False, separators=(",", ":")) + "\n"


def unpack_tokens(packed: str) -> list[TokenTuple]:
    """The tokens of ``Passage.tokens``; a line cut by a crash mid-write is dropped, never an error."""
    out: list[TokenTuple] = []
    for line in packed.splitlines():
        try:
            start, end, token_id, prob, alts = json.loads(line)
            out.append((int(start), int(end), int(token_id), float(prob),
                        tuple((int(a[0]), str(a[1]), float(a[2])) for a in alts)))
        except (ValueError, TypeError, IndexError):
            continue
    return out
