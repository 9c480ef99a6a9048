"""GPT: causality, KV-cache exactness (also past the context length), weight tying, config checks."""

from __future__ import annotations

import pytest
import torch

from slmtui.core.gpt_config import GPTConfig
from slmtui.engine.decoder import Decoder
from slmtui.engine.model import GPT
from trainer.config import PRESETS


def full_logits(model: GPT, ids: list[int]) -> torch.Tensor:
    """Next-token logits from re-running the whole sequence with no cache (the reference)."""
    with torch.inference_mode():
        logits, _ = model(torch.tensor([ids]))
    return logits[0, -1]


def test_changing_a_later_token_never_changes_earlier_logits(tiny_model: GPT) -> None:
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, 256, (2, 40), generator=g)
    with torch.inference_mode():
        before, _ = tiny_model(idx)
        for t in (0, 17, 39):
            changed = idx.clone()
            changed[:, t] = (changed[:, t] + 1) % 256
            after, _ = tiny_model(changed)
            assert torch.equal(before[:, :t], after[:, :t]), f"position < {t} saw token {t}"
            assert not torch.allclose(before[:, t], after[:, t]), f"position {t} ignored its own token"


def test_kv_cache_matches_full_recomputation_well_past_the_context(tiny_model: GPT) -> None:
    block = tiny_model.config.block_size
    decoder = Decoder(tiny_model)
    g = torch.Generator().manual_seed(1)
    logits = decoder.start([5, 6, 7])
    assert torch.allclose(logits, full_logits(tiny_model, decoder.window), atol=1e-4)
    slid = 0
    for step in range(3 * block):
        before = len(decoder.window)
        logits = decoder.step(int(torch.randint(0, 256, (1,), generator=g)))
        slid += len(decoder.window) < before
        assert len(decoder.window) <= block
        assert decoder.window == decoder.story[-len(decoder.window) :]
        torch.testing.assert_close(logits, full_logits(tiny_model, decoder.window), atol=1e-4, rtol=0, msg=f"step {step}")
    assert slid >= 3, "the window never slid: the test did not go past the context"


def test_kv_cache_with_memory_matches_recomputation(tiny_model: GPT) -> None:
    memory = list(range(100, 110))
    decoder = Decoder(tiny_model, memory=memory)
    logits = decoder.start(list(range(30)))
    for token in range(2 * tiny_model.config.block_size):
        assert decoder.window[: len(memory)] == memory, "memory must stay at the front of the window"
        torch.testing.assert_close(logits, full_logits(tiny_model, decoder.window), atol=1e-4, rtol=0)
        logits = decoder.step(token % 256)


def test_prefill_longer_than_the_context_keeps_the_tail(tiny_model: GPT) -> None:
    story = list(range(200))
    decoder = Decoder(tiny_model)
    logits = decoder.start(story)
    assert decoder.window == story[-tiny_model.config.block_size :]
    torch.testing.assert_close(logits, full_logits(tiny_model, decoder.window), atol=1e-4, rtol=0)


def test_sequence_longer_than_block_size_is_refused(tiny_model: GPT) -> None:
    with pytest.raises(ValueError, match="exceeds block_size"):
        tiny_model(torch.zeros(1, tiny_model.config.block_size + 1, dtype=torch.long))


def test_tied_embeddings_share_storage() -> None:
    config = GPTConfig(vocab_size=300, block_size=16, n_layer=1, n_head=2, n_embd=32, tie_embeddings=True)
    model = GPT(config)
    wte, head = model.transformer.wte.weight, model.lm_head.weight
    assert head is wte and head.data_ptr() == wte.data_ptr()
    with torch.no_grad():
        wte[3, 0] = 42.0
    assert head[3, 0].item() == 42.0
    untied = GPT(GPTConfig(**{**config.to_dict(), "tie_embeddings": False}))
    assert untied.lm_head.weight.data_ptr() != untied.transformer.wte.weight.data_ptr()
    # The tied matrix is counted once.
    assert untied.num_params() - model.num_params() == 300 * 32


def test_loss_with_targets_is_the_mean_cross_entropy(tiny_model: GPT) -> None:
    idx = torch.randint(0, 256, (2, 10))
    logits, loss = tiny_model(idx, idx)
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), idx.reshape(-1))
    assert loss is not None and torch.allclose(loss, expected)


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("variant", [{}, {"bias": False}, {"tie_embeddings": True}, {"tie_embeddings": False},
                                     {"pos_emb": "rope", "norm": "rmsnorm", "qk_norm": True, "mlp": "relu2"},
                                     {"norm": "rmsnorm", "bias": True}, {"qk_norm": True, "bias": False}])
def test_param_count_is_what_a_built_model_has(name: str, variant: dict[str, bool]) -> None:
    from dataclasses import replace

    config = replace(PRESETS[name].model, vocab_size=300, **variant)
    assert config.param_count == GPT(config).num_params()
