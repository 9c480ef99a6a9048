"""The modern-recipe options of GPTConfig: the defaults are the original architecture, exactly (old model
folders load and compute as before); each option trains; rotary positions decode exactly with the KV cache."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch.nn import functional as F

from slmtui.core.errors import SlmError
from slmtui.core.gpt_config import OLD_DEFAULT, GPTConfig
from slmtui.core.model_catalog import bundled_default
from slmtui.engine.model import GPT
from slmtui.engine.model_io import load_model_dir, save_model_dir
from trainer.config import PRESETS, preset

OPTIONS = {
    "rope": dict(pos_emb="rope"),
    "rmsnorm": dict(norm="rmsnorm"),
    "qk_norm": dict(qk_norm=True),
    "relu2": dict(mlp="relu2"),
    "zero_init_proj": dict(zero_init_proj=True),
    "untied": dict(tie_embeddings=False),
    "softcap": dict(logit_softcap=15.0),
    "unet_skips": dict(unet_skips=True),
    "embed_skips": dict(embed_skips=True),
    "all": dict(pos_emb="rope", norm="rmsnorm", qk_norm=True, mlp="relu2", zero_init_proj=True, logit_softcap=15.0,
                unet_skips=True, embed_skips=True),
}
TINY = replace(preset("tiny").model, block_size=32, tie_embeddings=True)


def reference_logits(state: dict[str, torch.Tensor], c: GPTConfig, idx: torch.Tensor) -> torch.Tensor:
    """The original architecture written out with plain functions (nanoGPT's GPT-2): learned positions,
    LayerNorm, GELU, an explicit causal softmax. What an old model folder's weights mean."""
    B, T = idx.shape
    hs = c.n_embd // c.n_head

    def ln(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (c.n_embd,), state[f"{name}.weight"], state.get(f"{name}.bias"))

    def linear(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, state[f"{name}.weight"], state.get(f"{name}.bias"))

    x = state["transformer.wte.weight"][idx] + state["transformer.wpe.weight"][:T]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(c.n_layer):
        p = f"transformer.h.{i}"
        q, k, v = linear(ln(x, f"{p}.ln_1"), f"{p}.attn.c_attn").split(c.n_embd, dim=2)
        q, k, v = (t.view(B, T, c.n_head, hs).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1) / math.sqrt(hs)).masked_fill(~mask, float("-inf")).softmax(-1)
        x = x + linear((att @ v).transpose(1, 2).reshape(B, T, c.n_embd), f"{p}.attn.c_proj")
        x = x + linear(F.gelu(linear(ln(x, f"{p}.ln_2"), f"{p}.mlp.c_fc")), f"{p}.mlp.c_proj")
    head = state["transformer.wte.weight"] if c.tie_embeddings else state["lm_head.weight"]
    return F.linear(ln(x, "transformer.ln_f"), head)


def test_the_defaults_are_the_original_architecture() -> None:
    assert PRESETS["seed"].model == GPTConfig(vocab_size=50257, block_size=128, n_layer=4, n_head=4, n_embd=256, dropout=0.1)
    old_toml = {k: v for k, v in OLD_DEFAULT.to_dict().items()
                if k in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "dropout", "bias", "tie_embeddings")}
    assert GPTConfig.from_dict(old_toml) == OLD_DEFAULT  # a model.toml written before the options
    for config in (PRESETS["seed"].model, OLD_DEFAULT):
        model = GPT(config)
        kinds = {type(m).__name__ for m in model.modules()}
        assert "RMSNorm" not in kinds and "ReLU2" not in kinds and "wpe" in model.transformer


@pytest.mark.parametrize("tie", [True, False])
def test_an_old_style_model_computes_the_original_function(tie: bool, tmp_path, byte_tokenizer) -> None:
    torch.manual_seed(0)
    config = replace(preset("seed").model, vocab_size=512, block_size=24, n_layer=2, n_embd=64, tie_embeddings=tie, dropout=0.0)
    model = GPT(config).eval()
    with torch.no_grad():  # non-trivial biases and gains, so that a dropped term would show
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    save_model_dir(tmp_path / "old", model, byte_tokenizer, training={})
    loaded = load_model_dir(tmp_path / "old").model
    idx = torch.randint(0, 512, (2, 24))
    with torch.inference_mode():
        logits, _ = loaded(idx)
    assert torch.allclose(logits, reference_logits(loaded.state_dict(), config, idx), atol=1e-4)


def test_the_shipped_default_is_the_default_preset_as_its_model_toml_says() -> None:
    """model.toml names the blocks a model uses: the shipped default is today's preset (rotary positions, ReLU²,
    untied head), and the model built from it has exactly those (no position table, its own head)."""
    loaded = load_model_dir(bundled_default())
    assert loaded.info.config == replace(PRESETS["default"].model, vocab_size=loaded.info.config.vocab_size)
    names = dict(loaded.model.named_parameters())
    assert "transformer.wpe.weight" not in names and "lm_head.weight" in names
    assert not torch.equal(names["lm_head.weight"], names["transformer.wte.weight"])


@pytest.mark.parametrize("option", list(OPTIONS))
def test_each_option_trains(option: str, tmp_path, byte_tokenizer) -> None:
    """A few AdamW steps on a repeating token pattern: the loss falls, and the model saves and reloads."""
    torch.manual_seed(0)
    config = replace(TINY, **OPTIONS[option])
    model = GPT(config)
    data = torch.arange(0, 33 * 8).remainder(29).view(8, 33) + 3
    x, y = data[:, :-1], data[:, 1:]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::8]
    save_model_dir(tmp_path / option, model, byte_tokenizer, training={})
    loaded = load_model_dir(tmp_path / option)
    assert loaded.info.config == config
    with torch.inference_mode():
        assert torch.allclose(loaded.model(x)[0], model.eval()(x)[0], atol=1e-5)


@pytest.mark.parametrize("option", ["rope", "all"])
def test_rope_decoding_with_the_cache_equals_full_recomputation(option: str) -> None:
    torch.manual_seed(1)
    model = GPT(replace(TINY, **{**OPTIONS[option], "zero_init_proj": False})).eval()  # zero blocks would hide a position error
    ids = torch.randint(0, 512, (1, 32)).tolist()[0]
    cache = model.new_cache()
    with torch.inference_mode():
        full, _ = model(torch.tensor([ids]))
        logits, _ = model(torch.tensor([ids[:7]]), cache=cache)  # prefill
        assert torch.allclose(logits[0], full[0, :7], atol=1e-4)
        for t in range(7, 32):  # then one token at a time, each at its absolute position
            logits, _ = model(torch.tensor([[ids[t]]]), cache=cache)
            assert torch.allclose(logits[0, -1], full[0, t], atol=1e-4), t


def test_rope_sees_relative_positions_only() -> None:
    """Attention scores under rope depend on the distance between tokens: the same 8 tokens score the
    same at the start of a window and after a shift (unlike learned absolute positions)."""
    torch.manual_seed(2)
    model = GPT(replace(TINY, pos_emb="rope", n_layer=1)).eval()
    ids = torch.randint(0, 512, (1, 8))
    attn = model.transformer.h[0].attn
    x = torch.randn(1, 8, TINY.n_embd)
    q, k, _ = attn.c_attn(x).split(TINY.n_embd, dim=2)
    hs = TINY.n_embd // TINY.n_head
    q, k = (t.view(1, 8, TINY.n_head, hs).transpose(1, 2) for t in (q, k))
    from slmtui.engine.model import apply_rotary

    scores = [apply_rotary(q, model.rotary(s, 8)) @ apply_rotary(k, model.rotary(s, 8)).transpose(-2, -1) for s in (0, 13)]
    assert torch.allclose(scores[0], scores[1], atol=1e-4)
    assert "rope_cos" not in model.state_dict() and ids.shape == (1, 8)


def test_bad_options_are_refused() -> None:
    for bad in (dict(pos_emb="alibi"), dict(norm="batchnorm"), dict(mlp="swiglu"), dict(logit_softcap=-1.0),
                dict(pos_emb="rope", n_embd=6, n_head=2)):
        with pytest.raises(SlmError, match="invalid model config"):
            replace(TINY, **bad)




def test_the_decoders_own_head_applies_the_soft_cap() -> None:
    """The bf16-mv decoding path scores with a bf16 copy of the head; the cap must apply there too."""
    from slmtui.engine.decode_paths import build_path
    from slmtui.engine.decoder import Decoder

    torch.manual_seed(3)
    model = GPT(replace(TINY, logit_softcap=2.0)).eval()
    with torch.no_grad():
        model.transformer.wte.weight.mul_(50)  # raw logits far beyond the cap
    ids = torch.randint(0, 512, (12,)).tolist()
    with torch.inference_mode():
        raw = model.lm_head(model(torch.tensor([ids]), hidden_only=True)[0])[0, -1]
        full = model(torch.tensor([ids]))[0][0, -1]
    assert raw.abs().max() > 4.0
    logits = Decoder(build_path(model, "bf16-mv")).start(ids)
    assert logits.abs().max() <= 2.0 + 1e-4
    assert torch.allclose(logits, full, atol=0.15)  # a bf16 head on inflated weights: close, not exact


def test_the_skips_decode_exactly_with_the_cache_and_change_the_function() -> None:
    """U-net and embedding skips with weights away from their start: the KV cache still equals recomputation,
    and the same blocks without the skips compute something else (the skips are really in the path)."""
    torch.manual_seed(3)
    config = replace(TINY, n_layer=3, pos_emb="rope", unet_skips=True, embed_skips=True)
    model = GPT(config).eval()
    with torch.no_grad():
        model.skip_weights.uniform_(-2, 2)
        model.stream_lambdas.uniform_(-1, 1)
        model.embed_lambdas.uniform_(-1, 1)
    ids = torch.randint(0, 512, (1, 24))
    cache = model.new_cache()
    with torch.inference_mode():
        full, _ = model(ids)
        model(ids[:, :5], cache=cache)
        for t in range(5, 24):
            logits, _ = model(ids[:, t : t + 1], cache=cache)
            assert torch.allclose(logits[0, -1], full[0, t], atol=1e-4), t
        plain = GPT(replace(config, unet_skips=False, embed_skips=False)).eval()
        plain.load_state_dict({k: v for k, v in model.state_dict().items() if k not in ("skip_weights", "stream_lambdas", "embed_lambdas")})
        assert not torch.allclose(plain(ids)[0], full, atol=1e-3)
    assert model.skip_weights.shape == (1,) and model.stream_lambdas.shape == model.embed_lambdas.shape == (3,)


def test_the_skip_weights_train_with_adamw_and_no_decay() -> None:
    from trainer.optim import hidden_matrices, make_optimizer

    model = GPT(replace(TINY, unet_skips=True, embed_skips=True))
    skips = [model.skip_weights, model.stream_lambdas, model.embed_lambdas]
    assert not {id(p) for p in skips} & {id(p) for p in hidden_matrices(model)}
    opt = make_optimizer(model, kind="muon", lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95), device=torch.device("cpu"))
    no_decay = [p for g in opt.param_groups if g["weight_decay"] == 0.0 for p in g["params"]]
    assert all(any(p is q for q in no_decay) for p in skips)
