"""The sampler chain (slmtui/engine/chain.py) as every decoding path runs it: its logit edits equal the
plain-Python references on random logits, every row of a batch draws what its solo chain draws (and leaves its
generator where the solo one does), and the Generator's streams, solo and batched, are the chain's tokens,
with a change of setting applied at the next token."""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slmtui.core.sampling import Sampling
from slmtui.engine.chain import SamplerChain
from slmtui.engine.decoder import Decoder
from slmtui.core.token_events import TokenEvent
from slmtui.engine.generate import Generator
from slmtui.engine.logit_rules import TextTail, xtc_protected
from slmtui.engine.model import GPT
from slmtui.engine.tokenizer import Tokenizer
from tests.engine.reference_logit_rules import (
    banned_reference,
    dry_reference,
    first_tokens_reference,
)

CHECKS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])
ALPHABET = b"ab .\n:"
PHRASES = ["ab", "a b", "ba.", "b"]
WORDS = ["ab", "b", "ba", "a"]


@st.composite
def samplings(draw: st.DrawFn) -> Sampling:
    """Random settings of every rule, each on or off."""
    temperature = draw(st.sampled_from([0.0, 0.5, 1.0, 1.7]))
    return Sampling(
        temperature=temperature, top_k=draw(st.sampled_from([0, 3, 40])), top_p=draw(st.sampled_from([1.0, 0.9, 0.5])),
        min_p=draw(st.sampled_from([0.0, 0.05])), repetition_penalty=draw(st.sampled_from([1.0, 1.3])),
        dry_multiplier=draw(st.sampled_from([0.0, 0.8, 3.0])), dry_base=draw(st.sampled_from([1.75, 1.1])),
        dry_allowed_length=draw(st.integers(1, 3)), dry_breakers=draw(st.sampled_from([("\n", ":"), (".",)])),
        xtc_threshold=draw(st.sampled_from([0.0, 0.05, 0.1, 0.3])),
        xtc_probability=draw(st.sampled_from([0.0, 0.5, 1.0])),
        banned_phrases=tuple(draw(st.lists(st.sampled_from(PHRASES), max_size=2, unique=True))),
        logit_bias=tuple((w, draw(st.sampled_from([-100.0, -3.0, 4.0]))) for w in
                         draw(st.lists(st.sampled_from(WORDS), max_size=2, unique=True))),
    )


def reference_shape(logits: list[float], context: list[int], text: bytes, s: Sampling,
                    tok: Tokenizer) -> list[float]:
    """The logit edits in plain Python: bias, CTRL's penalty, DRY, bans (-inf)."""
    out = list(logits)
    for word, value in s.logit_bias:
        for t in first_tokens_reference(tok.encode, tok.token_bytes, word):
            out[t] += value
    if s.repetition_penalty != 1.0:
        for t in set(context):
            out[t] = out[t] / s.repetition_penalty if out[t] > 0 else out[t] * s.repetition_penalty
    breakers = {t for t in range(tok.n_vocab) if any(b.encode() in tok.token_bytes(t) for b in s.dry_breakers)}
    for t, penalty in dry_reference(context, breakers, multiplier=s.dry_multiplier, base=s.dry_base,
                                    allowed_length=s.dry_allowed_length).items():
        out[t] -= penalty
    if s.banned_phrases:
        vocab = [tok.token_bytes(t) for t in range(tok.n_vocab)]
        banned = banned_reference(vocab, list(s.banned_phrases), text)
        if len(banned) < tok.n_vocab:
            for t in banned:
                out[t] = -math.inf
    return out


@CHECKS
@given(s=samplings(), rows=st.integers(1, 4), length=st.integers(0, 24), seed=st.integers(0, 2**31 - 1))
def test_the_chain_equals_the_reference_and_each_row_its_solo_run(
    byte_tokenizer: Tokenizer, s: Sampling, rows: int, length: int, seed: int
) -> None:
    tok = byte_tokenizer
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, tok.n_vocab, generator=g) * 3
    context = torch.tensor([[ALPHABET[i] for i in torch.randint(len(ALPHABET), (length,), generator=g).tolist()]
                            for _ in range(rows)], dtype=torch.long).view(rows, length)
    texts = [bytes(row.tolist()) for row in context]
    chain = SamplerChain(tok)
    shaped = chain.shape(logits, context, [TextTail(t) for t in texts], s)
    for r in range(rows):
        want = reference_shape(logits[r].tolist(), context[r].tolist(), b"\xff" + texts[r], s, tok)
        got = shaped[r].tolist()
        assert [math.isinf(x) for x in got] == [math.isinf(x) for x in want]
        assert [x for x in got if not math.isinf(x)] == pytest.approx([x for x in want if not math.isinf(x)], abs=1e-4)
    batch = [torch.Generator().manual_seed(seed + r) for r in range(rows)]
    tokens = chain.draw(shaped, s, batch)
    for r in range(rows):
        alone = torch.Generator().manual_seed(seed + r)
        assert tokens[r] == chain.solo(logits[r], context[r], TextTail(texts[r]), s, alone), r
        assert torch.equal(batch[r].get_state(), alone.get_state()), "the generators drew alike"


def test_xtc_fires_in_the_chain_and_draws_nothing_when_off(byte_tokenizer: Tokenizer) -> None:
    """XTC on (probability 1) takes the top choices away; off, the chain draws exactly what it drew before."""
    chain = SamplerChain(byte_tokenizer)
    logits = torch.full((1, byte_tokenizer.n_vocab), -10.0)
    logits[0, ord("a")], logits[0, ord("b")], logits[0, ord("c")] = 5.0, 4.5, 4.0
    on = Sampling(temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0, xtc_probability=1.0, xtc_threshold=0.1)
    picks = {chain.draw(logits, on, [torch.Generator().manual_seed(i)])[0] for i in range(30)}
    assert picks == {ord("c")}  # a and b are top choices above c; only the least likely of them... c stays
    off = dataclasses.replace(on, xtc_probability=0.0)
    plain = dataclasses.replace(off, xtc_threshold=0.3)
    for i in range(10):
        assert chain.draw(logits, off, [torch.Generator().manual_seed(i)]) == \
            chain.draw(logits, plain, [torch.Generator().manual_seed(i)])
    assert ord("\n") in xtc_protected(byte_tokenizer)


# The Generator: every path through it is the chain -------------------------------------------------------------

RULES = Sampling(temperature=0.9, top_k=0, top_p=0.95, repetition_penalty=1.1, dry_multiplier=1.5,
                 dry_allowed_length=2, xtc_probability=0.5, xtc_threshold=0.05, banned_phrases=("the", "an"),
                 logit_bias=(("e", -2.0), ("o", 3.0)), max_new_tokens=70, seed=123)


def chain_reference(model: GPT, tok: Tokenizer, prompt: str, s: Sampling | list[Sampling], seed: int) -> list[int]:
    """The tokens of one stream, driven by hand: the Decoder's logits, then ``SamplerChain.solo`` per token
    with the story's last tokens and the text's tail (a list gives the settings per token)."""
    chain = SamplerChain(tok)
    decoder = Decoder(model)
    logits = decoder.start(tok.encode(prompt))
    tail = TextTail(prompt)
    g = torch.Generator().manual_seed(seed)
    per_token = s if isinstance(s, list) else [s] * s.max_new_tokens
    out = []
    with torch.inference_mode():
        for step in per_token:
            recent = torch.tensor(decoder.story[-model.config.block_size:], dtype=torch.long)
            token = chain.solo(logits.float()[: tok.n_vocab], recent, tail, step, g)
            out.append(token)
            tail.push(tok.token_bytes(token))
            logits = decoder.step(token)
    return out


def tokens_of(events: list[TokenEvent], stream: int = 0) -> list[int]:
    return [e.token_id for e in events if e.stream == stream]


def test_a_stream_is_the_chain_token_for_token(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    """One stream with every rule on, past the 64-token context (a slide): the hand-driven chain's tokens."""
    gen = Generator(tiny_model, byte_tokenizer, path="exact")
    got = tokens_of(list(gen.stream("Once there was", RULES)))
    assert got == chain_reference(tiny_model, byte_tokenizer, "Once there was", RULES, 123)
    plain = dataclasses.replace(RULES, dry_multiplier=0.0, xtc_probability=0.0, banned_phrases=(), logit_bias=())
    assert tokens_of(list(gen.stream("Once there was", plain))) != got  # the rules did something


def test_n_candidates_each_equal_their_solo_run(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    """Four candidates with every rule on: row i is what seed + i writes alone (XTC's draws, the bans' tails and
    DRY's windows are each row's own)."""
    gen = Generator(tiny_model, byte_tokenizer, path="exact")
    events = list(gen.stream("Once there was", RULES, n=4))
    rows = [tokens_of(events, i) for i in range(4)]
    assert len({tuple(r) for r in rows}) == 4
    for i, row in enumerate(rows):
        alone = tokens_of(list(gen.stream("Once there was", dataclasses.replace(RULES, seed=123 + i))))
        assert row == alone, i


def test_a_change_mid_stream_applies_to_the_next_token(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    """Each rule switched on after the 10th token: tokens 0-9 are drawn without it, 10 on with it."""
    base = Sampling(temperature=0.8, top_k=0, top_p=1.0, repetition_penalty=1.0, max_new_tokens=30, seed=5)
    changes = {"dry": {"dry_multiplier": 5.0, "dry_allowed_length": 1}, "xtc": {"xtc_probability": 1.0},
               "bans": {"banned_phrases": ("e", "a", "t")}, "bias": {"logit_bias": (("o", 8.0),)}}
    gen = Generator(tiny_model, byte_tokenizer, path="exact")
    prompt = "ab ab ab ab ab ab ab"  # repeats, for DRY to act on
    for name, values in changes.items():
        later = dataclasses.replace(base, **values)
        events: list[TokenEvent] = []
        for event in gen.stream(prompt, lambda later=later, events=events: later if len(events) >= 10 else base):
            events.append(event)  # noqa: PERF402 (the source reads len(events) before each token)
        per_token = [base] * 10 + [later] * 20
        assert tokens_of(events) == chain_reference(tiny_model, byte_tokenizer, prompt, per_token, 5), name
        assert [e.sampling for e in events] == per_token, name
        unchanged = chain_reference(tiny_model, byte_tokenizer, prompt, base, 5)
        assert tokens_of(events)[:10] == unchanged[:10] and tokens_of(events)[10:] != unchanged[10:], name


def test_a_phrase_the_model_likes_is_never_written(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    """The tiny model's favourite words (the ones most of its continuations hold, found here) never appear once
    banned, in 40 seeded continuations solo and 40 as candidates of four."""
    gen = Generator(tiny_model, byte_tokenizer, path="exact")
    s = Sampling(temperature=0.7, top_k=0, top_p=1.0, repetition_penalty=1.0, max_new_tokens=40)
    prompts = ["Once there was", "The king said", "In the woods", "She ran"]

    def texts(sampling: Sampling, n: int) -> list[str]:
        out = []
        for seed in range(0, 40, n):
            events = list(gen.stream(prompts[seed % 4], dataclasses.replace(sampling, seed=seed), n=n))
            out += [prompts[seed % 4] + "\x00" + byte_tokenizer.decode(tokens_of(events, i)) for i in range(n)]
        return out

    def words(text: str) -> set[str]:
        """The whole words that end in the continuation (after the NUL): a word may start on the page."""
        cut = text.index("\x00")
        page = text[:cut] + text[cut + 1:]
        return {m.group().lower() for m in re.finditer(r"[A-Za-z0-9]+", page) if m.end() > cut}

    free = texts(s, 1)
    counts = Counter(w for text in free for w in words(text))
    liked = [w for w, _ in counts.most_common(3)]
    holds = [bool(words(t) & set(liked)) for t in free]
    assert sum(holds) >= 20, (liked, sum(holds))  # at least half the continuations write one of them
    banned = dataclasses.replace(s, banned_phrases=tuple(liked))
    for n in (1, 4):
        written = texts(banned, n)
        assert not any(words(t) & set(liked) for t in written), liked
