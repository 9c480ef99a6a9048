"""Decoding paths: each scores like the exact model, shares its weights, and the fastest one is chosen."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from slmtui.core.model_catalog import bundled_default
from slmtui.engine import decode_paths
from slmtui.engine.decode_paths import CANDIDATES, EXACT, build_path, choose_path
from slmtui.engine.decoder import Decoder
from slmtui.engine.generate import Generator
from slmtui.engine.model import GPT
from slmtui.engine.model_io import load_model_dir
from slmtui.core.sampling import Sampling

GREEDY = Sampling(temperature=0.0, repetition_penalty=1.0, max_new_tokens=200)
PROMPT = "Dorothy opened the door of the little house and looked out at the wide prairie. " * 5

# How far a path's logits may stray from the exact ones at any step, as a fraction of the exact logits'
# standard deviation at that step (2.1-3.5 here). Exact paths only reorder fp32 sums. Measured over these
# 200 steps: bf16 head by mv 0.023, bf16 everywhere 0.037, int8 (weights per channel, activations per
# call) 0.27. Held-out bits per byte move far less than these extremes suggest: tests/bench/bench_decode_bpb.py.
TOLERANCE = {"exact": 1e-5, "fp32-t": 1e-4, "bf16-mv": 0.04, "bf16": 0.06, "int8": 0.35,
             "fused": 1e-5, "fp32-t-fused": 1e-4, "int8-fused": 0.35}
# Greedy text is repetitive and full of near-ties, so a path that rounds may break a tie the other way:
# measured, the rounding paths pick the exact model's greedy token at 194-197 of these 200 steps (and the
# engine's old bf16 head, free-running, leaves the exact text at token 13). Exact paths: every step.
AGREEMENT = 0.95


@pytest.fixture(scope="module")
def default():
    return load_model_dir(bundled_default())


@pytest.fixture(scope="module")
def exact_run(default):
    """The exact path's 200 greedy tokens from PROMPT, and its logits teacher-forced along them (the logits
    before each token, and after the last): computed once, every path is compared with them."""
    prompt = default.tokenizer.encode(PROMPT)
    tokens = [e.token_id for e in Generator(default.model, default.tokenizer, path=EXACT).stream(prompt, GREEDY)]
    exact = Decoder(default.model)
    logits = [exact.start(prompt).clone()]
    logits += [exact.step(token).clone() for token in tokens]
    return prompt, tokens, logits


def test_every_candidate_has_a_stated_tolerance() -> None:
    assert set(TOLERANCE) == set(CANDIDATES)


# The fused paths give their base path's numbers bit for bit (the tiny-model tests below), so of them only the
# likely winner is run on the default model here: each case costs seconds of the suite.
ON_THE_DEFAULT_MODEL = [n for n in CANDIDATES if "fused" not in n] + ["int8-fused"]


@pytest.mark.parametrize("name", ON_THE_DEFAULT_MODEL)
def test_each_path_scores_200_greedy_steps_like_the_exact_model(default, exact_run, name: str) -> None:
    """Teacher-forced along the exact model's 200 greedy tokens (the window slides once on the way):
    logits within the path's tolerance at every step, and the same greedy token at (almost) every step.
    """
    prompt, exact_tokens, exact_logits = exact_run
    assert len(prompt) + len(exact_tokens) > default.model.config.block_size, "the window never slides"
    path = Decoder(build_path(default.model, name))
    b = path.start(prompt)
    agree = 0
    for a, token in zip(exact_logits, exact_tokens):
        assert int(a.argmax()) == token
        assert float((a - b).abs().max()) <= TOLERANCE[name] * float(a.std())
        agree += int(b.argmax()) == token
        b = path.step(token)
    assert agree == len(exact_tokens) if CANDIDATES[name].exact else agree >= AGREEMENT * len(exact_tokens)


@pytest.mark.parametrize("name", [n for n in ON_THE_DEFAULT_MODEL if CANDIDATES[n].exact])
def test_exact_paths_write_the_same_200_greedy_tokens(default, exact_run, name: str) -> None:
    prompt, exact_tokens, _ = exact_run
    assert [e.token_id for e in Generator(default.model, default.tokenizer, path=name).stream(prompt, GREEDY)] == exact_tokens


@pytest.mark.parametrize("name", list(CANDIDATES))
def test_a_path_is_a_view_that_leaves_the_model_alone(tiny_model: GPT, name: str) -> None:
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    view = build_path(tiny_model, name)
    after = tiny_model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(isinstance(m, torch.nn.Linear) for m in (tiny_model.lm_head, tiny_model.transformer.h[0].mlp.c_fc))
    # Embeddings and norms are shared, not copied.
    assert view.transformer.wte.weight.data_ptr() == tiny_model.transformer.wte.weight.data_ptr()
    assert view.transformer.h[0].ln_1.weight.data_ptr() == tiny_model.transformer.h[0].ln_1.weight.data_ptr()


def test_an_unknown_path_is_refused(tiny_model: GPT) -> None:
    with pytest.raises(ValueError, match="unknown decoding path 'fastest'"):
        build_path(tiny_model, "fastest")


def fake_timings(monkeypatch: pytest.MonkeyPatch, ms: dict[str, float]) -> None:
    """Make every candidate's step take the given time, so the choice itself can be tested."""
    monkeypatch.setattr(decode_paths, "_CHOICES", {})
    names = iter([])

    def timer(model, *, batch_size, position=None):  # type: ignore[no-untyped-def]
        name = next(names)
        seconds = ms.get(name, 99.0) / 1000  # a candidate the case does not name is slow
        return type("T", (), {"best": lambda self, steps: seconds})()

    real_build = decode_paths.build_path

    def build(model, name):  # type: ignore[no-untyped-def]
        nonlocal names
        names = iter([name])
        return real_build(model, name)

    monkeypatch.setattr(decode_paths, "StepTimer", timer)
    monkeypatch.setattr(decode_paths, "build_path", build)


@pytest.mark.parametrize(
    ("ms", "winner"),
    [
        ({"exact": 2.0, "fp32-t": 1.5, "bf16-mv": 1.9, "bf16": 1.6, "int8": 0.7}, "int8"),
        ({"exact": 2.0, "fp32-t": 1.5, "bf16-mv": 1.9, "bf16": 1.6, "int8": 1.4}, "fp32-t"),  # within the margin
        ({"exact": 1.0, "fp32-t": 1.1, "bf16-mv": 3.0, "bf16": 0.95, "int8": 5.0}, "exact"),
        ({"exact": 3.0, "fp32-t": 3.1, "bf16-mv": 1.0, "bf16": 2.0, "int8": 1.2}, "bf16-mv"),
    ],
)
def test_the_fastest_path_wins_and_rounding_needs_a_clear_margin(
    tiny_model: GPT, monkeypatch: pytest.MonkeyPatch, ms: dict[str, float], winner: str
) -> None:
    fake_timings(monkeypatch, ms)
    choice = choose_path(tiny_model)
    assert choice.name == winner
    assert choice.reason.startswith("fastest decode step at batch 1")
    assert choose_path(tiny_model) is choice, "measured once per process and shape"


def test_the_choice_is_measured_per_batch_size_and_remembered(tiny_model: GPT, byte_tokenizer) -> None:
    gen = Generator(tiny_model, byte_tokenizer)
    assert set(gen.choices) == {1}, "one stream is calibrated at load"
    assert gen.path_for(1) in CANDIDATES
    assert gen.path_for(3) in CANDIDATES
    assert set(gen.choices) == {1, 3}
    assert set(gen.choices[3].ms_per_step) <= set(CANDIDATES)
    assert all(ms > 0 for ms in gen.choices[3].ms_per_step.values())
    assert Generator(tiny_model, byte_tokenizer).choices[1] is gen.choices[1]


FUSED = {"fused": EXACT, "fp32-t-fused": "fp32-t", "int8-fused": "int8"}
"""Each path with the fused one-token step, and the path whose linears it uses."""
TINY_VARIANTS = {
    "original blocks": {},
    "modern recipe": {"pos_emb": "rope", "norm": "rmsnorm", "mlp": "relu2", "bias": False, "logit_softcap": 15.0},
    "rope, layernorm": {"pos_emb": "rope", "mlp": "relu2"},
    "tied, qk-norm (GPT's own step)": {"pos_emb": "rope", "qk_norm": True, "tie_embeddings": True},
    "u-net skips (GPT's own step)": {"n_layer": 4, "unet_skips": True, "embed_skips": True},
}


def test_every_fused_path_is_a_candidate() -> None:
    assert {n for n in CANDIDATES if "fused" in n} == set(FUSED)
    assert all(CANDIDATES[n].exact == CANDIDATES[base].exact for n, base in FUSED.items())


@pytest.mark.parametrize("variant", list(TINY_VARIANTS))
@pytest.mark.parametrize("name", list(FUSED))
def test_a_fused_path_writes_its_base_paths_greedy_tokens(tiny_model: GPT, byte_tokenizer, name: str, variant: str) -> None:
    """Three streams, 60 greedy tokens each past a 64-token context (the window slides, rows are batched):
    the fused step gives exactly the tokens of the path whose linears it uses."""
    torch.manual_seed(7)
    model = GPT(dataclasses.replace(tiny_model.config, vocab_size=257, **TINY_VARIANTS[variant])).eval()
    greedy = Sampling(temperature=0.0, repetition_penalty=1.0, max_new_tokens=60)

    def tokens(path: str) -> list[tuple[int, int]]:
        gen = Generator(model, byte_tokenizer, path=path)
        return [(e.stream, e.token_id) for e in gen.stream("Dorothy opened the door", greedy, n=3)]

    assert tokens(name) == tokens(FUSED[name])
    assert isinstance(build_path(model, name), decode_paths.FusedStepGPT)


def test_the_fused_step_gives_the_exact_logits_bit_for_bit(tiny_model: GPT) -> None:
    exact, fused = Decoder(tiny_model, n=2), Decoder(build_path(tiny_model, "fused"), n=2)
    a, b = exact.start_rows(list(range(20))), fused.start_rows(list(range(20)))
    for step in range(30):
        assert torch.equal(a, b), step
        tokens = [int(t) for t in a.argmax(-1)]
        a, b = exact.step_rows(tokens), fused.step_rows(tokens)


def test_a_candidate_that_fails_to_build_is_left_out(tiny_model: GPT, monkeypatch: pytest.MonkeyPatch) -> None:
    """A path this torch build cannot run (a missing kernel, a failed compile) drops out of the calibration;
    the others are still timed and one of them wins."""
    monkeypatch.setattr(decode_paths, "_CHOICES", {})

    def broken(model: GPT) -> GPT:
        raise RuntimeError("simulated: no kernel for this path here")

    monkeypatch.setitem(CANDIDATES, "int8-fused", dataclasses.replace(CANDIDATES["int8-fused"], build=broken))
    choice = choose_path(tiny_model, rounds=1, steps=1)
    assert "int8-fused" not in choice.ms_per_step
    assert choice.name in CANDIDATES and choice.name != "int8-fused"
    assert EXACT in choice.ms_per_step
