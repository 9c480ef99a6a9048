"""Sampling rules on hand-made logits and properties of the filtered set (the settings' bounds: tests/core)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from slmtui.core.sampling import Sampling
from slmtui.engine.sampling import filter_logits, sample_next
from slmtui.engine.sampling import apply_repetition_penalty, apply_repetition_penalty_rows, draw, draw_rows, filter_candidates, top_candidates

OFF = Sampling(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0)
"""Every filter off: the plain softmax."""


def logits_for(probs: list[float]) -> torch.Tensor:
    return torch.tensor(probs).log()


def test_temperature_zero_is_argmax() -> None:
    logits = torch.tensor([0.1, 3.0, -1.0, 2.9, 0.0])
    greedy = dataclasses.replace(OFF, temperature=0.0, top_k=1)
    g = torch.Generator().manual_seed(0)
    assert {sample_next(logits, greedy, g) for _ in range(50)} == {1}
    assert sample_next(logits, dataclasses.replace(OFF, temperature=0.0)) == 1


def test_with_every_filter_off_the_probabilities_are_the_softmax() -> None:
    logits = torch.tensor([1.0, 3.0, 2.0, -1.0])
    ids, probs = filter_logits(logits, OFF)
    assert ids.tolist() == [1, 2, 0, 3]
    assert torch.allclose(probs, torch.softmax(logits, -1)[ids])


def test_temperature_sharpens_and_flattens() -> None:
    logits = torch.tensor([2.0, 1.0, 0.0])
    _, cold = filter_logits(logits, dataclasses.replace(OFF, temperature=0.5))
    _, hot = filter_logits(logits, dataclasses.replace(OFF, temperature=2.0))
    assert torch.allclose(cold, torch.softmax(logits / 0.5, -1))
    assert torch.allclose(hot, torch.softmax(logits / 2.0, -1))
    assert cold[0] > torch.softmax(logits, -1)[0] > hot[0]


def test_top_k_keeps_exactly_the_k_most_likely() -> None:
    logits = torch.tensor([0.5, 4.0, 1.0, 3.0, 2.0, -2.0])
    ids, probs = filter_logits(logits, dataclasses.replace(OFF, top_k=3))
    assert ids.tolist() == [1, 3, 4]
    assert torch.allclose(probs, torch.softmax(torch.tensor([4.0, 3.0, 2.0]), -1))
    ids, _ = filter_logits(logits, dataclasses.replace(OFF, top_k=100))  # k past the vocabulary: all of it
    assert len(ids) == 6


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    logits = logits_for([0.05, 0.5, 0.15, 0.3])  # sorted: 1 (0.5), 3 (0.3), 2 (0.15), 0 (0.05)
    for top_p, expected in [(0.4, [1]), (0.75, [1, 3]), (0.85, [1, 3, 2]), (0.99, [1, 3, 2, 0])]:
        ids, probs = filter_logits(logits, dataclasses.replace(OFF, top_p=top_p))
        assert ids.tolist() == expected, top_p
        kept = torch.tensor([0.05, 0.5, 0.15, 0.3])[ids]
        assert torch.allclose(probs, kept / kept.sum())


def test_top_p_always_keeps_the_most_likely_token() -> None:
    ids, probs = filter_logits(logits_for([0.9, 0.1]), dataclasses.replace(OFF, top_p=1e-6))
    assert ids.tolist() == [0] and probs.tolist() == [1.0]


def test_min_p_drops_tokens_below_a_fraction_of_the_best() -> None:
    logits = logits_for([0.5, 0.3, 0.15, 0.05])
    ids, _ = filter_logits(logits, dataclasses.replace(OFF, min_p=0.2))  # threshold 0.1
    assert ids.tolist() == [0, 1, 2]
    ids, _ = filter_logits(logits, dataclasses.replace(OFF, min_p=0.7))  # threshold 0.35
    assert ids.tolist() == [0]


def test_filters_combine() -> None:
    logits = logits_for([0.4, 0.3, 0.2, 0.1])
    ids, _ = filter_logits(logits, dataclasses.replace(OFF, top_k=3, top_p=0.95, min_p=0.6))
    assert ids.tolist() == [0, 1]  # top_k drops 3; min_p (0.6 of the best) drops 2


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits() -> None:
    logits = torch.tensor([2.0, -2.0, 1.0, -1.0])
    context = torch.tensor([0, 1, 0, 1, 1])  # repeats count once
    out = apply_repetition_penalty(logits, context, 2.0)
    assert out.tolist() == [1.0, -4.0, 1.0, -1.0]
    assert logits.tolist() == [2.0, -2.0, 1.0, -1.0], "the input must not change"
    # Below 1 it favours repeats instead.
    assert apply_repetition_penalty(logits, context, 0.5).tolist() == [4.0, -1.0, 1.0, -1.0]
    assert apply_repetition_penalty(logits, context, 1.0) is logits
    assert apply_repetition_penalty(logits, torch.tensor([], dtype=torch.long), 2.0) is logits


@pytest.mark.parametrize("penalty", [1.3, 0.7])
def test_repetition_penalty_on_rows_is_the_penalty_on_each_row(penalty: float) -> None:
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(3, 50, generator=g) * 3
    context = torch.randint(0, 50, (3, 40), generator=g)  # repeats within rows, and rows that share tokens
    got = apply_repetition_penalty_rows(logits, context, penalty)
    for i in range(3):
        assert torch.equal(got[i], apply_repetition_penalty(logits[i], context[i], penalty))
    assert not torch.equal(got, logits), "the penalty changed nothing"
    assert apply_repetition_penalty_rows(logits, context, 1.0) is logits


def test_repetition_penalty_can_change_the_greedy_choice() -> None:
    logits = torch.tensor([3.0, 2.0])
    greedy = dataclasses.replace(OFF, temperature=0.0)
    assert sample_next(logits, greedy) == 0
    assert sample_next(apply_repetition_penalty(logits, torch.tensor([0]), 2.0), greedy) == 1


def test_sampling_follows_the_probabilities() -> None:
    logits = logits_for([0.7, 0.2, 0.1])
    g = torch.Generator().manual_seed(0)
    draws = [sample_next(logits, OFF, g) for _ in range(4000)]
    freq = [draws.count(i) / len(draws) for i in range(3)]
    assert freq == pytest.approx([0.7, 0.2, 0.1], abs=0.03)


def test_same_generator_seed_same_draws() -> None:
    logits = torch.randn(100, generator=torch.Generator().manual_seed(3))
    a = [sample_next(logits, OFF, torch.Generator().manual_seed(9)) for _ in range(5)]
    b = [sample_next(logits, OFF, torch.Generator().manual_seed(9)) for _ in range(5)]
    assert a == b


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.floats(-30, 30, allow_nan=False, width=32), min_size=1, max_size=60),
    temperature=st.floats(0.05, 5.0),
    top_k=st.integers(0, 80),
    top_p=st.floats(1e-3, 1.0),
    min_p=st.floats(0.0, 1.0),
)
def test_filtered_probabilities_sum_to_one_and_are_sorted(
    values: list[float], temperature: float, top_k: int, top_p: float, min_p: float
) -> None:
    s = Sampling(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p)
    logits = torch.tensor(values)
    ids, probs = filter_logits(logits, s)
    assert 1 <= len(ids) <= (len(values) if top_k == 0 else min(top_k, len(values)))
    assert len(set(ids.tolist())) == len(ids)
    assert math.isclose(float(probs.sum()), 1.0, abs_tol=1e-5)
    assert bool((probs[:-1] >= probs[1:]).all()), "probabilities must be sorted, most likely first"
    assert bool((probs >= 0).all())
    assert float(logits[ids[0]]) == max(values), "the most likely token is always kept"
    token = sample_next(logits, s, torch.Generator().manual_seed(0))
    assert token in ids.tolist()


# --- draw_rows: many rows' draws at once, each the draw its row would make alone ----------------------


def drawn_alone(values: torch.Tensor, ids: torch.Tensor, s: Sampling, seeds: list[int]) -> tuple[list[int], list]:
    gens = [torch.Generator().manual_seed(seed) for seed in seeds]
    tokens = [draw(*filter_candidates(values[i], ids[i], s), g) for i, g in enumerate(gens)]
    return tokens, [g.get_state() for g in gens]


def drawn_together(values: torch.Tensor, ids: torch.Tensor, s: Sampling, seeds: list[int]) -> tuple[list[int], list]:
    gens = [torch.Generator().manual_seed(seed) for seed in seeds]
    return draw_rows(values, ids, s, gens), [g.get_state() for g in gens]


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(1, 8),
    vocab=st.integers(1, 400),
    scale=st.floats(0.0, 20.0),
    temperature=st.floats(0.05, 5.0),
    top_k=st.integers(0, 80),
    top_p=st.floats(1e-3, 1.0),
    min_p=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31),
)
def test_draw_rows_draws_what_each_row_draws_alone(
    rows: int, vocab: int, scale: float, temperature: float, top_k: int, top_p: float, min_p: float, seed: int
) -> None:
    """The same tokens as filter_candidates + draw (torch.multinomial) row by row, and every generator
    left in the same state, so the next draw of each stream is the same too."""
    s = Sampling(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p)
    logits = torch.randn(rows, vocab, generator=torch.Generator().manual_seed(seed)) * scale
    values, ids = top_candidates(logits, s)
    seeds = [seed + i for i in range(rows)]
    tokens, states = drawn_together(values, ids, s, seeds)
    want_tokens, want_states = drawn_alone(values, ids, s, seeds)
    assert tokens == want_tokens
    assert all(torch.equal(a, b) for a, b in zip(states, want_states))


def test_draw_rows_over_many_steps_of_one_generator_per_row() -> None:
    s = Sampling()  # the app's defaults: top-k 40, top-p 0.95
    gens_a = [torch.Generator().manual_seed(i) for i in range(4)]
    gens_b = [torch.Generator().manual_seed(i) for i in range(4)]
    g = torch.Generator().manual_seed(99)
    for _ in range(300):
        values, ids = top_candidates(torch.randn(4, 1000, generator=g) * 4, s)
        assert draw_rows(values, ids, s, gens_a) == [
            draw(*filter_candidates(values[i], ids[i], s), gen) for i, gen in enumerate(gens_b)
        ]


def test_draw_rows_keeps_a_set_that_is_not_a_prefix_as_filter_candidates_does() -> None:
    """Unsorted candidates (which top_candidates never gives, and float ties in top-p's running sum might
    mimic): min-p keeps the first and last, not the middle; the result is still the row-by-row draw."""
    s = Sampling(temperature=1.0, top_k=0, top_p=1.0, min_p=0.5)
    values = torch.tensor([[3.0, -5.0, 3.0], [1.0, 0.0, -1.0]])
    ids = torch.tensor([[7, 8, 9], [1, 2, 3]])
    for seed in range(40):
        tokens, states = drawn_together(values, ids, s, [seed, seed + 1])
        want_tokens, want_states = drawn_alone(values, ids, s, [seed, seed + 1])
        assert tokens == want_tokens
        assert all(torch.equal(a, b) for a, b in zip(states, want_states))
    assert {drawn_together(values, ids, s, [seed, 0])[0][0] for seed in range(40)} == {7, 9}


def test_draw_rows_refuses_nan_logits_as_multinomial_does() -> None:
    s = Sampling(temperature=1.0, top_k=0, top_p=1.0)
    values = torch.tensor([[float("nan"), 1.0], [2.0, 1.0]])
    ids = torch.tensor([[0, 1], [0, 1]])
    with pytest.raises(RuntimeError, match="probability tensor contains"):
        draw(*filter_candidates(values[0], ids[0], s), torch.Generator())
    with pytest.raises(RuntimeError, match="probability tensor contains"):
        draw_rows(values, ids, s, [torch.Generator(), torch.Generator()])
