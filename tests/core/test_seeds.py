"""core.seeds: any integer is a seed; the seeds torch took before keep their text; no two seeds collide."""

from __future__ import annotations

import pytest
import torch

from slmtui.core.seeds import DIRECT_SEEDS, torch_seed


@pytest.mark.parametrize("seed", [0, 1, 5, 1337, DIRECT_SEEDS - 1])
def test_seeds_torch_took_before_pass_through_unchanged(seed: int) -> None:
    """README's samples (--seed 1..5) and every trained run's seed keep their text."""
    assert torch_seed(seed) == seed


@pytest.mark.parametrize("seed", [-1, -(2**70), DIRECT_SEEDS, DIRECT_SEEDS + 1, 2**64, 10**40])
def test_other_integers_are_hashed_into_the_generators_range(seed: int) -> None:
    value = torch_seed(seed)
    assert 0 <= value < DIRECT_SEEDS
    assert value == torch_seed(seed)  # the same every time, in every process (no salted hash())
    torch.Generator().manual_seed(value)  # never an overflow


def test_seeds_that_used_to_collide_draw_distinct_values() -> None:
    """mt19937 keeps 32 bits: 1 and 2**32 + 1 were the same stream before, and -1 was 2**64 - 1."""
    firsts = {s: torch.rand(4, generator=torch.Generator().manual_seed(torch_seed(s))).tolist()
              for s in (1, DIRECT_SEEDS + 1, 2**64 + 1, -1, 2**64 - 1)}
    assert len({tuple(v) for v in firsts.values()}) == len(firsts)


def test_bool_and_float_are_not_seeds() -> None:
    with pytest.raises(TypeError):
        torch_seed(True)
    with pytest.raises(TypeError):
        torch_seed(1.0)  # type: ignore[arg-type]
