"""engine.seeds: any integer is a seed; the seeds torch took before keep their text; no two seeds collide."""

from __future__ import annotations

import pytest
import torch

from slmtui.core.sampling import Sampling
from slmtui.engine import Generator
from slmtui.engine.model import GPT
from slmtui.engine.seeds import DIRECT_SEEDS, torch_seed
from slmtui.engine.tokenizer import Tokenizer


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


def test_generate_takes_huge_and_negative_seeds_and_they_differ(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    gen = Generator(tiny_model, byte_tokenizer)

    def text(seed: int) -> list[int]:
        s = Sampling(seed=seed, temperature=1.5, top_k=0, top_p=1.0, repetition_penalty=1.0, max_new_tokens=24)
        return [e.token_id for e in gen.stream("Once", s)]

    one, wrapped, negative, huge = text(1), text(DIRECT_SEEDS + 1), text(-1), text(2**64)
    assert one == text(1)
    assert huge == text(2**64)
    assert len({tuple(one), tuple(wrapped), tuple(negative), tuple(huge)}) == 4
    events = list(gen.stream("Once", Sampling(seed=2**64, max_new_tokens=2)))
    assert events[0].seed == 2**64  # the seed reported is the user's, to replay with
