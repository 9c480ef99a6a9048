"""Evaluation arithmetic: loss per token, perplexity and bits per byte on cases worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from slmtui.engine.evaluate import EvalResult, evaluate_ids, evaluate_texts, token_byte_lengths
from slmtui.engine.model import GPT
from slmtui.engine.tokenizer import Tokenizer


def uniform_model(model: GPT) -> GPT:
    """A zero LM head: every next token gets the same logit, so the loss is exactly ln(vocab_size)."""
    with torch.no_grad():
        model.lm_head.weight.zero_()
    return model


def test_result_arithmetic() -> None:
    r = EvalResult(tokens=10, bytes=20, loss=math.log(2))
    assert r.perplexity == pytest.approx(2.0)
    assert r.bits_per_byte == pytest.approx(0.5)  # 10 tokens x 1 bit over 20 bytes
    assert r.to_dict() == {"tokens": 10, "bytes": 20, "loss": r.loss, "perplexity": r.perplexity, "bits_per_byte": 0.5}
    empty = EvalResult(tokens=0, bytes=0, loss=0.0)
    assert math.isnan(empty.perplexity) and math.isnan(empty.bits_per_byte)


def test_uniform_model_scores_log_vocab(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    model = uniform_model(tiny_model)
    block = model.config.block_size
    texts = ["a" * 150, "Ünïcödé 東京"]  # the first spans three windows (0, 64, 128)
    r = evaluate_texts(model, byte_tokenizer, texts, batch_size=2)
    n_bytes = [len(t.encode()) for t in texts]
    # Every token but the first of each text is predicted once: windows neither overlap nor skip.
    assert r.tokens == sum(n - 1 for n in n_bytes)
    assert r.bytes == r.tokens  # byte tokens: one byte each
    assert r.loss == pytest.approx(math.log(512), rel=1e-6)
    assert r.perplexity == pytest.approx(512, rel=1e-5)
    assert r.bits_per_byte == pytest.approx(9.0, rel=1e-6)  # log2(512) bits per one-byte token
    assert block < n_bytes[0]


def test_bits_per_byte_counts_token_bytes(tiny_model: GPT) -> None:
    model = uniform_model(tiny_model)
    lengths = [3] * 512  # as if every token stood for three bytes
    r = evaluate_ids(model, [[1, 2, 3, 4, 5]], lengths)
    assert (r.tokens, r.bytes) == (4, 12)
    assert r.bits_per_byte == pytest.approx(9.0 / 3, rel=1e-6)


def test_matches_the_models_own_loss(tiny_model: GPT) -> None:
    ids = torch.randint(0, 256, (1, 41), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, loss = tiny_model(ids[:, :-1], ids[:, 1:])
    r = evaluate_ids(tiny_model, [ids[0].tolist()], [1] * 512)
    assert r.tokens == 40
    assert r.loss == pytest.approx(loss.item(), rel=1e-5)


def test_padding_in_a_batch_changes_nothing(tiny_model: GPT) -> None:
    docs = [list(range(10, 50)), list(range(60, 70)), [7, 8]]
    together = evaluate_ids(tiny_model, docs, [1] * 512, batch_size=3)
    apart = [evaluate_ids(tiny_model, [d], [1] * 512) for d in docs]
    assert together.tokens == sum(a.tokens for a in apart) == 39 + 9 + 1
    nats = sum(a.loss * a.tokens for a in apart)
    assert together.loss == pytest.approx(nats / together.tokens, rel=1e-5)


def test_texts_too_short_to_predict_give_no_tokens(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    r = evaluate_texts(tiny_model, byte_tokenizer, ["a", ""])
    assert r.tokens == 0 and r.bytes == 0


def test_token_byte_lengths(byte_tokenizer: Tokenizer) -> None:
    lengths = token_byte_lengths(byte_tokenizer)
    assert len(lengths) == 257
    assert lengths[:256] == [1] * 256
    assert lengths[256] == 0  # <|endoftext|> stands for no text
