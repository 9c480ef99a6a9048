"""trainer/optim.py: who optimises what under Muon, and a Muon run that learns and resumes exactly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from slmtui.engine.model import GPT
from trainer.config import PRESETS, TrainConfig, preset
from trainer.events import StepEvent
from trainer.loop import RunSpec, make_optimizer, train
from trainer import optim
from trainer.optim import Muon, Optimizers, hidden_matrices, orthogonalise

from excerpts import book_excerpt


def test_muon_takes_the_hidden_matrices_and_adamw_the_rest() -> None:
    model = GPT(replace(preset("tiny").model, tie_embeddings=False))
    opt = make_optimizer(model, TrainConfig(optimizer="muon"), torch.device("cpu"))
    assert isinstance(opt, Optimizers)
    muon, adamw = opt.optimizers
    assert isinstance(muon, torch.optim.Muon) and isinstance(adamw, torch.optim.AdamW)
    names = {id(p): n for n, p in model.named_parameters()}
    in_muon = {names[id(p)] for g in muon.param_groups for p in g["params"]}
    in_adamw = {names[id(p)] for g in adamw.param_groups for p in g["params"]}
    assert in_muon == {names[id(p)] for p in hidden_matrices(model)}
    assert all(n.startswith("transformer.h.") and n.endswith("weight") for n in in_muon)
    assert {"transformer.wte.weight", "lm_head.weight", "transformer.wpe.weight"} <= in_adamw
    assert not in_muon & in_adamw and in_muon | in_adamw == set(names.values())


def test_orthogonalise_in_bf16_is_torchs_newton_schulz_bit_for_bit() -> None:
    """The fp32 iteration is torch's own algorithm: in bf16 it gives torch's numbers exactly (wide and tall)."""
    from torch.optim._muon import DEFAULT_A, DEFAULT_B, DEFAULT_C, EPS, _zeropower_via_newtonschulz

    torch.manual_seed(0)
    for shape in ((64, 192), (256, 64)):
        g = torch.randn(shape)
        ours = orthogonalise(g, (DEFAULT_A, DEFAULT_B, DEFAULT_C), 5, EPS, torch.bfloat16)
        assert torch.equal(ours, _zeropower_via_newtonschulz(g, (DEFAULT_A, DEFAULT_B, DEFAULT_C), 5, EPS))


def test_muon_in_fp32_steps_like_torchs_muon_and_keeps_its_state() -> None:
    """Muon's own step (fp32 Newton-Schulz) moves every matrix as torch.optim.Muon does, up to bf16's
    rounding of the iteration; its state is torch's (one momentum buffer), so a run resumes under either."""
    torch.manual_seed(0)
    weights = [torch.randn(64, 192), torch.randn(256, 64)]
    grads = [[torch.randn_like(w) for w in weights] for _ in range(3)]
    moved = {}
    for name, make in (("torch", lambda ps: torch.optim.Muon(ps, lr=0.02, weight_decay=0.1, adjust_lr_fn="match_rms_adamw")),
                       ("ours", lambda ps: Muon(ps, lr=0.02, weight_decay=0.1, adjust_lr_fn="match_rms_adamw",
                                               ns_dtype=torch.float32))):
        params = [torch.nn.Parameter(w.clone()) for w in weights]
        opt = make(params)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = g.clone()
            opt.step()
        moved[name] = ([p.detach() - w for p, w in zip(params, weights)], opt.state_dict())
    for a, b in zip(moved["torch"][0], moved["ours"][0]):
        assert torch.allclose(a, b, rtol=0.05, atol=2e-3), (a - b).abs().max()
        assert a.abs().max() > 0.01
    torch_state, our_state = moved["torch"][1]["state"], moved["ours"][1]["state"]
    assert torch_state.keys() == our_state.keys() and all(set(v) == {"momentum_buffer"} for v in our_state.values())


@pytest.mark.parametrize(("fast_bf16", "dtype"), [(False, torch.float32), (True, torch.bfloat16)])
def test_muon_iterates_in_bf16_only_where_the_cpu_has_it(monkeypatch: pytest.MonkeyPatch, fast_bf16: bool,
                                                         dtype: torch.dtype) -> None:
    monkeypatch.setattr(optim, "cpu_bf16_matmul_is_faster", lambda: fast_bf16)
    opt = make_optimizer(GPT(preset("tiny").model), TrainConfig(optimizer="muon"), torch.device("cpu"))
    assert isinstance(opt, Optimizers) and opt.optimizers[0].ns_dtype == dtype


def test_fused_adamw_takes_the_same_steps_as_foreach() -> None:
    """Same losses step by step (Adam's update of a near-zero gradient differs in the last bits, so the
    weights are compared through what they compute)."""
    torch.manual_seed(0)
    x = torch.randint(0, 512, (4, 64))
    losses = {}
    for fused in (False, True):
        torch.manual_seed(0)
        model = GPT(preset("tiny").model)
        opt = make_optimizer(model, TrainConfig(fused=fused, lr=1e-3), torch.device("cpu"))
        assert opt.defaults["fused"] is fused
        losses[fused] = []
        for _ in range(5):
            _, loss = model(x, x)
            loss.backward()
            opt.step()
            opt.zero_grad()
            losses[fused].append(loss.item())
    assert losses[True] == pytest.approx(losses[False], abs=1e-4)
    assert losses[True][-1] < losses[True][0]


def test_a_muon_run_learns_and_resumes_exactly(tmp_path: Path) -> None:
    corpus = tmp_path / "willows.txt"
    corpus.write_text(book_excerpt("grahame-wind-in-the-willows.txt", 24_000), encoding="utf-8")
    model = replace(preset("tiny").model, pos_emb="rope", norm="rmsnorm", qk_norm=True, mlp="relu2", zero_init_proj=True)
    cfg = replace(PRESETS["tiny"].train, max_steps=24, optimizer="muon", lr=2e-2)

    def run(out: Path, *, resume: bool = False, stop_at: int | None = None) -> dict[int, float]:
        losses: dict[int, float] = {}

        def emit(e: object) -> None:
            if isinstance(e, StepEvent):
                losses[e.step] = e.loss

        train(RunSpec(out=out, corpus=corpus, model=model, train=cfg, tokenizer="bpe:512", preset="tiny", resume=resume),
              emit, should_stop=lambda: stop_at is not None and max(losses, default=0) >= stop_at)
        return losses

    ref = run(tmp_path / "ref")
    assert ref[24] < 0.8 * ref[1]
    first = run(tmp_path / "split", stop_at=10)
    resumed = run(tmp_path / "split", resume=True)
    assert min(resumed) == 11
    for step in range(11, 25):
        assert resumed[step] == pytest.approx(ref[step], abs=1e-4), step
    assert first[10] == pytest.approx(ref[10], abs=1e-4)
