"""One home for turning a user's seed (any integer) into the seed torch's generators take.

torch's CPU generator (mt19937) keeps only the low 32 bits of its seed, so passed as it is, 1 and 2**32 + 1 would
draw the same text, and a seed of 2**64 or more would overflow. Seeds from 0 to 2**32 - 1 are passed through unchanged,
so every text reproduced with them before (README's samples use --seed 1..5) stays the same; any other
integer (negative, or 2**32 and up) is hashed (SHA-256 of its decimal digits) into that same range. Distinct
seeds therefore draw distinct text, except that a hashed seed meets one particular other seed's stream with
a chance of one in 2**32: the most a 32-bit generator state allows.
"""

from __future__ import annotations

import hashlib

DIRECT_SEEDS = 2**32
"""Seeds in range(DIRECT_SEEDS) reach torch unchanged."""

SEED_HELP = "any integer; 0 to 4294967295 are used as they are, others are hashed into that range"
"""What --help says about seeds (generate and slm-train)."""


def torch_seed(seed: int) -> int:
    """The value to hand ``torch.manual_seed`` / ``Generator.manual_seed`` for the user's ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"a seed is an integer, got {seed!r}")
    if 0 <= seed < DIRECT_SEEDS:
        return seed
    digest = hashlib.sha256(str(seed).encode()).digest()
    return int.from_bytes(digest[:4], "big")
