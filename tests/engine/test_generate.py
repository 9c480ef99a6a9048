"""Generator and StreamDecoder: repeatable, steerable mid-stream, stoppable, UTF-8 safe, endless."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from slmtui.core.errors import SlmError
from slmtui.core.gpt_config import GPTConfig
from slmtui.core.seeds import DIRECT_SEEDS
from slmtui.engine.decoder import Decoder
from slmtui.core.token_events import TokenEvent
from slmtui.engine.generate import Generator
from slmtui.engine.model import GPT
from slmtui.core.sampling import Sampling
from slmtui.engine.sampling import apply_repetition_penalty
from slmtui.engine.tokenizer import Tokenizer
from tests.engine.reference_generate import Generator as ReferenceGenerator

from thread_spy import record_threads

# Accents, a combining mark, CJK, emoji and a ZWJ family: GPT-2 splits several of these mid-character.
UNICODE_TEXT = "Café naïve — 東京の夜、雪が降る。 🎉👩\u200d👩\u200d👧 e\u0301 Ünïcödé ok"

RANDOM = Sampling(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0, max_new_tokens=20, seed=11)
GREEDY = dataclasses.replace(RANDOM, temperature=0.0)


class ScriptedGPT(GPT):
    """A real GPT (cache and all) whose next-token logits always favour the next token of a script.

    Each forward call answers one "what comes next?", which is what Generator asks once per token.
    Build its Generator with path="exact": the script lives in the logits, not in a head.
    """

    def __init__(self, config: GPTConfig, script: list[int]) -> None:
        super().__init__(config)
        self.script = script
        self.calls = 0

    def forward(self, idx, targets=None, *, cache=None, last_only=False):  # type: ignore[override]
        logits, loss = super().forward(idx, targets, cache=cache, last_only=last_only)
        logits = torch.zeros_like(logits)
        logits[:, -1, self.script[min(self.calls, len(self.script) - 1)]] = 30.0
        self.calls += 1
        return logits, loss


def scripted(tokenizer: Tokenizer, text: str, *, block_size: int = 32) -> ScriptedGPT:
    config = GPTConfig(vocab_size=tokenizer.n_vocab, block_size=block_size, n_layer=1, n_head=1, n_embd=8, dropout=0.0)
    return ScriptedGPT(config, tokenizer.encode(text))


@pytest.fixture(scope="module")
def gpt2() -> Tokenizer:
    return Tokenizer.gpt2()


def greedy_continuation(model: GPT, ids: list[int], n: int, *, n_vocab: int = 257, penalty: float = 1.0) -> list[int]:
    """The argmax tokens by full recomputation, no cache, no penalty: the reference for temperature 0.

    Only the tokenizer's ids count: the tiny model's vocab_size (512) is padded past its 257 tokens.
    """
    ids = list(ids)
    out = []
    with torch.inference_mode():
        for _ in range(n):
            logits, _ = model(torch.tensor([ids[-model.config.block_size :]]))
            recent = torch.tensor(ids[-model.config.block_size :])
            out.append(int(apply_repetition_penalty(logits[0, -1, :n_vocab], recent, penalty).argmax()))
            ids.append(out[-1])
    return out


def tokens(events: list[TokenEvent]) -> list[int]:
    return [e.token_id for e in events]


def test_same_seed_same_text(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    gen = Generator(tiny_model, byte_tokenizer)
    a = list(gen.stream("Once upon a time", RANDOM))
    b = list(gen.stream("Once upon a time", RANDOM))
    c = list(gen.stream("Once upon a time", dataclasses.replace(RANDOM, seed=12)))
    assert len(a) == RANDOM.max_new_tokens
    assert tokens(a) == tokens(b)
    assert "".join(e.text for e in a) == "".join(e.text for e in b)
    assert tokens(a) != tokens(c)
    assert {e.seed for e in a} == {11}


def test_without_a_seed_each_run_draws_one_and_reports_it(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    gen = Generator(tiny_model, byte_tokenizer)
    first = list(gen.stream("Once", dataclasses.replace(RANDOM, seed=None)))
    seed = first[0].seed
    assert {e.seed for e in first} == {seed}
    replay = list(gen.stream("Once", dataclasses.replace(RANDOM, seed=seed)))
    assert tokens(replay) == tokens(first)


def test_a_sampling_change_applies_to_the_very_next_token(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    prompt = byte_tokenizer.encode("The wizard said")
    events: list[TokenEvent] = []
    # What a UI does: the panel swaps the settings object after the 5th token has arrived.
    for event in Generator(tiny_model, byte_tokenizer).stream(prompt, lambda: GREEDY if len(events) >= 5 else RANDOM):
        events.append(event)
    got = tokens(events)
    assert len(got) == RANDOM.max_new_tokens
    assert got[5:] == greedy_continuation(tiny_model, prompt + got[:5], len(got) - 5)
    # And the first five really were sampled, not greedy (else the test proves nothing).
    assert got[:5] != greedy_continuation(tiny_model, prompt, 5)


def test_greedy_generation_equals_argmax_by_full_recomputation(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    prompt = byte_tokenizer.encode("abc")
    got = tokens(list(Generator(tiny_model, byte_tokenizer).stream(prompt, dataclasses.replace(GREEDY, max_new_tokens=40))))
    assert got == greedy_continuation(tiny_model, prompt, 40)


def test_repetition_penalty_applies_to_the_story_so_far(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    prompt = byte_tokenizer.encode("aaaa bbbb")
    s = dataclasses.replace(GREEDY, repetition_penalty=3.0, max_new_tokens=30)
    got = tokens(list(Generator(tiny_model, byte_tokenizer).stream(prompt, s)))
    assert got == greedy_continuation(tiny_model, prompt, 30, penalty=3.0)
    assert got != greedy_continuation(tiny_model, prompt, 30), "the penalty changed nothing: a weak test"


def test_should_stop_stops_between_tokens(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    events: list[TokenEvent] = []
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(len(events))
        return len(events) >= 3

    for event in Generator(tiny_model, byte_tokenizer).stream("x", RANDOM, should_stop=should_stop):
        events.append(event)
    assert [e.index for e in events] == [0, 1, 2]
    assert asked == [0, 1, 2, 3], "asked once before every token"


def test_max_new_tokens_is_read_per_token(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    events: list[TokenEvent] = []
    limit = dataclasses.replace(RANDOM, max_new_tokens=7)
    for event in Generator(tiny_model, byte_tokenizer).stream("x", lambda: limit if len(events) >= 4 else RANDOM):
        events.append(event)
    assert len(events) == 7


def test_stop_string_ends_generation_after_the_token_that_completes_it(gpt2: Tokenizer) -> None:
    model = scripted(gpt2, "The cat sat. THE END and then more words follow here")
    s = dataclasses.replace(GREEDY, stop=("THE END", "never"), max_new_tokens=50)
    text = "".join(e.text for e in Generator(model, gpt2, path="exact").stream("Once", s))
    assert text == "The cat sat. THE END"


def test_stop_string_split_across_tokens(byte_tokenizer: Tokenizer) -> None:
    model = scripted(byte_tokenizer, "abc\n\nxyz")
    s = dataclasses.replace(GREEDY, stop=("\n\n",), max_new_tokens=50)
    assert "".join(e.text for e in Generator(model, byte_tokenizer, path="exact").stream("q", s)) == "abc\n\n"


def test_stream_decoder_never_emits_half_a_character(gpt2: Tokenizer) -> None:
    ids = gpt2.encode(UNICODE_TEXT)
    # The test is only meaningful if some token ends mid-character.
    assert any(_is_incomplete(gpt2.token_bytes(i)) for i in ids)
    decoder = gpt2.stream_decoder()
    pieces = [decoder.push(i) for i in ids]
    pieces.append(decoder.flush())
    assert "".join(pieces) == UNICODE_TEXT
    for piece in pieces:
        assert "\ufffd" not in piece
        piece.encode("utf-8")  # raises on a lone surrogate
    assert "" in pieces, "some token carried only part of a character"


def test_stream_decoder_over_byte_tokens(byte_tokenizer: Tokenizer) -> None:
    decoder = byte_tokenizer.stream_decoder()
    pieces = list(decoder.feed(byte_tokenizer.encode(UNICODE_TEXT)))
    assert "".join(pieces) == UNICODE_TEXT
    assert all("\ufffd" not in p for p in pieces)


def test_generated_unicode_streams_cleanly(gpt2: Tokenizer) -> None:
    model = scripted(gpt2, UNICODE_TEXT, block_size=16)  # also slides the window mid-text
    s = dataclasses.replace(GREEDY, max_new_tokens=len(gpt2.encode(UNICODE_TEXT)))
    events = list(Generator(model, gpt2, path="exact").stream("Un récit: ", s))
    assert "".join(e.text for e in events) == UNICODE_TEXT
    assert all("\ufffd" not in e.text for e in events)
    assert max(e.window_tokens for e in events) <= 16


def test_alternatives_and_probabilities_describe_the_step(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    events = list(Generator(tiny_model, byte_tokenizer, n_alternatives=4).stream("x", RANDOM))
    for e in events:
        assert len(e.alternatives) == 4
        probs = [a.prob for a in e.alternatives]
        assert probs == sorted(probs, reverse=True)
        assert 0.0 < e.prob <= probs[0] + 1e-6
        if e.token_id in [a.token_id for a in e.alternatives]:
            assert e.prob == pytest.approx(next(a.prob for a in e.alternatives if a.token_id == e.token_id))


def test_generation_past_the_context_keeps_going(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    block = tiny_model.config.block_size
    s = dataclasses.replace(RANDOM, max_new_tokens=3 * block)
    events = list(Generator(tiny_model, byte_tokenizer).stream("Long ago", s))
    assert [e.index for e in events] == list(range(3 * block))
    windows = [e.window_tokens for e in events]
    assert max(windows) <= block
    assert any(b < a for a, b in zip(windows, windows[1:])), "the window never slid"


def test_memory_takes_its_share_of_the_window(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    block = tiny_model.config.block_size
    memory = "Dorothy lives in Kansas."
    s = dataclasses.replace(RANDOM, max_new_tokens=2 * block)
    events = list(Generator(tiny_model, byte_tokenizer).stream("Then", s, memory=memory))
    assert len(events) == 2 * block
    assert max(e.window_tokens for e in events) <= block - len(byte_tokenizer.encode(memory))


def test_empty_prompt_starts_from_the_document_separator(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    events = list(Generator(tiny_model, byte_tokenizer).stream("", dataclasses.replace(RANDOM, max_new_tokens=3)))
    assert len(events) == 3


def test_tokenizer_larger_than_the_model_is_refused(tiny_model: GPT, gpt2: Tokenizer) -> None:
    with pytest.raises(SlmError, match="tokenizer has 50257 tokens but the model only 512"):
        Generator(tiny_model, gpt2)


def _is_incomplete(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_decoding_uses_its_own_thread_count_and_gives_the_callers_back(
    tiny_model: GPT, byte_tokenizer: Tokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Set once per call (a switch per step cost ~2x a token), and given back when the call ends or is closed."""
    seen = record_threads(monkeypatch, tiny_model)
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        gen = Generator(tiny_model, byte_tokenizer, num_threads=1)
        seen.clear()
        between = [torch.get_num_threads() for _ in gen.stream("x", RANDOM)]
        assert set(seen) == {1} and set(between) == {1}
        assert torch.get_num_threads() == 2, "the caller's setting is back at the end"
        events = gen.stream("x", RANDOM, n=2)
        next(events)
        assert torch.get_num_threads() == 1
        events.close()  # a consumer that stops early
        assert torch.get_num_threads() == 2, "and when the call is closed"
        seen.clear()
        list(Generator(tiny_model, byte_tokenizer, num_threads=None).stream("x", RANDOM))
        assert set(seen) == {2}, "None leaves torch's setting alone"
    finally:
        torch.set_num_threads(saved)


# --- one stream is what it was; N streams are N separate runs --------------------------------------------


DEFAULTISH = Sampling(max_new_tokens=150, seed=7)  # the app's defaults: top-k, top-p, repetition penalty


@pytest.mark.parametrize(("path", "old_fast_head"), [("exact", False), ("bf16-mv", True)])
def test_one_stream_is_the_old_generator_token_for_token(
    tiny_model: GPT, byte_tokenizer: Tokenizer, path: str, old_fast_head: bool
) -> None:
    """Main's Generator (kept in reference_generate.py) and today's, same seeds: the same tokens and events.

    150 tokens in a 64-token context, with memory: the window slides several times.
    """
    old = ReferenceGenerator(tiny_model, byte_tokenizer, fast_head=old_fast_head)
    new = Generator(tiny_model, byte_tokenizer, path=path)
    for seed in (1, 2, 3):
        s = dataclasses.replace(DEFAULTISH, seed=seed)
        a = list(old.stream("Once upon a time", s, memory="Kansas."))
        b = list(new.stream("Once upon a time", s, memory="Kansas."))
        assert len(b) == s.max_new_tokens
        assert tokens(b) == tokens(a)
        assert [(e.text, e.window_tokens, e.seed) for e in b] == [(e.text, e.window_tokens, e.seed) for e in a]
        assert [e.prob for e in b] == pytest.approx([e.prob for e in a])
        assert {e.stream for e in b} == {0}


def by_stream(events: list[TokenEvent]) -> dict[int, list[TokenEvent]]:
    out: dict[int, list[TokenEvent]] = {}
    for e in events:
        out.setdefault(e.stream, []).append(e)
    return out


def test_n_streams_equal_n_separate_runs_with_seed_plus_i(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    """3 streams of 150 tokens in a 64-token context: every row slides its window mid-batch, twice."""
    gen = Generator(tiny_model, byte_tokenizer, path="exact")
    events = list(gen.stream("The wizard said", DEFAULTISH, n=3, memory="Oz."))
    streams = by_stream(events)
    assert sorted(streams) == [0, 1, 2]
    assert any(b.window_tokens < a.window_tokens for a, b in zip(streams[0], streams[0][1:])), "no slide"
    for i, got in streams.items():
        alone = list(gen.stream("The wizard said", dataclasses.replace(DEFAULTISH, seed=DEFAULTISH.seed + i), memory="Oz."))
        assert [e.index for e in got] == list(range(DEFAULTISH.max_new_tokens))
        assert {e.seed for e in got} == {DEFAULTISH.seed + i}
        assert tokens(got) == tokens(alone)
        assert [e.window_tokens for e in got] == [e.window_tokens for e in alone]
        assert [e.prob for e in got] == pytest.approx([e.prob for e in alone], rel=1e-4)
    assert len({tuple(tokens(s)) for s in streams.values()}) == 3, "the streams drew the same text"
    # One step's events arrive together, in stream order.
    assert [e.stream for e in events[:6]] == [0, 1, 2, 0, 1, 2]


def test_each_stream_has_its_own_length_and_stop_strings(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    """Per-stream settings; rows leave the batch at different steps, before and after window slides."""
    gen = Generator(tiny_model, byte_tokenizer, path="exact")
    prompt = "Long ago"
    # A stop string that stream 2 will meet: a piece of what it writes when nothing stops it.
    free = "".join(e.text for e in gen.stream(prompt, dataclasses.replace(RANDOM, seed=13, max_new_tokens=140)))
    stop = free[100:103]
    assert free.index(stop) >= 90
    settings = [
        dataclasses.replace(RANDOM, seed=11, max_new_tokens=10),
        dataclasses.replace(RANDOM, seed=11, max_new_tokens=130),
        dataclasses.replace(RANDOM, seed=11, max_new_tokens=140, stop=(stop,)),
        dataclasses.replace(RANDOM, seed=11, max_new_tokens=70),
    ]
    streams = by_stream(list(gen.stream(prompt, settings, n=4)))
    for i, s in enumerate(settings):
        alone = list(gen.stream(prompt, dataclasses.replace(s, seed=s.seed + i)))
        assert tokens(streams[i]) == tokens(alone), i
    assert [len(streams[i]) for i in (0, 1, 3)] == [10, 130, 70]
    text2 = "".join(e.text for e in streams[2])
    assert text2.endswith(stop) and text2.count(stop) == 1 and len(streams[2]) < 140


def test_streams_with_different_settings_each_write_their_solo_text(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    """Streams that choose alike are drawn together and the others apart, in one step: every stream is
    still its own solo run, token, probability and alternatives alike."""
    gen = Generator(tiny_model, byte_tokenizer, path="exact")
    settings = [
        DEFAULTISH,
        dataclasses.replace(DEFAULTISH, temperature=1.3, max_new_tokens=40),
        dataclasses.replace(DEFAULTISH, top_k=5, min_p=0.1),
        dataclasses.replace(DEFAULTISH, max_new_tokens=90),  # chooses like stream 0: drawn with it
        dataclasses.replace(GREEDY, max_new_tokens=60),
    ]
    streams = by_stream(list(gen.stream("The wizard said", settings, n=5, memory="Oz.")))
    for i, s in enumerate(settings):
        alone = list(gen.stream("The wizard said", dataclasses.replace(s, seed=s.seed + i), memory="Oz."))
        got = streams[i]
        assert tokens(got) == tokens(alone), i
        assert [e.prob for e in got] == pytest.approx([e.prob for e in alone], rel=1e-4)
        assert [[a.token_id for a in e.alternatives] for e in got] == [[a.token_id for a in e.alternatives] for e in alone]
        assert [[a.text for a in e.alternatives] for e in got] == [[a.text for a in e.alternatives] for e in alone]


def test_a_sampling_change_reaches_every_stream_at_its_next_token(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    """Each step reads every stream's settings once, before that step's tokens are drawn."""
    prompt = byte_tokenizer.encode("The wizard said")
    events: list[TokenEvent] = []
    asked = []

    def current() -> Sampling:
        asked.append(len(events))
        return GREEDY if len(events) >= 4 else RANDOM  # switches once step 1's two tokens have arrived

    for event in Generator(tiny_model, byte_tokenizer, path="exact").stream(prompt, current, n=2):
        events.append(event)
    streams = by_stream(events)
    assert asked[:6] == [0, 0, 2, 2, 4, 4], "read for every stream before every step"
    for i in (0, 1):
        got = tokens(streams[i])
        assert len(got) == RANDOM.max_new_tokens
        assert got[2:] == greedy_continuation(tiny_model, prompt + got[:2], len(got) - 2)
        assert got[:4] != greedy_continuation(tiny_model, prompt, 4), "the first tokens were sampled"


def test_should_stop_cancels_every_stream_within_one_token(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    gen = Generator(tiny_model, byte_tokenizer, path="exact")
    forwards = []
    real_forward = tiny_model.forward

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        forwards.append(len(events))
        return real_forward(*args, **kwargs)

    tiny_model.forward = spy  # type: ignore[method-assign]
    events: list[TokenEvent] = []
    stop_after = 7  # mid-step: stream 1's 3rd token of 3 streams
    for event in gen.stream("x", RANDOM, n=3, should_stop=lambda: len(events) >= stop_after):
        events.append(event)
    assert len(events) == stop_after
    assert [e.stream for e in events] == [0, 1, 2, 0, 1, 2, 0]
    assert max(forwards) <= stop_after - 1, "no step computed after the stop was asked"


def test_bad_stream_counts_are_refused(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    gen = Generator(tiny_model, byte_tokenizer, path="exact")
    with pytest.raises(SlmError, match="n must be at least 1"):
        list(gen.stream("x", RANDOM, n=0))
    with pytest.raises(SlmError, match="2 sampling settings for 3 streams"):
        list(gen.stream("x", [RANDOM, RANDOM], n=3))


def test_batched_cache_matches_full_recomputation_per_row(tiny_model: GPT) -> None:
    """Three rows from one prefill, one dropped halfway, windows sliding: each row's logits are exactly
    what re-running its own window without a cache gives."""
    block = tiny_model.config.block_size
    decoder = Decoder(tiny_model, memory=[300, 301, 302], n=3)
    g = torch.Generator().manual_seed(3)
    logits = decoder.start_rows(list(range(20)))
    rows = [0, 1, 2]
    for step in range(int(2.5 * block)):
        for i, r in enumerate(rows):
            with torch.inference_mode():
                full, _ = tiny_model(torch.tensor([decoder.window_of(r)]))
            torch.testing.assert_close(logits[i], full[0, -1], atol=1e-4, rtol=0, msg=f"step {step} row {r}")
        if step == block:
            rows = [0, 2]  # row 1 has finished
        logits = decoder.step_rows(torch.randint(0, 256, (len(rows),), generator=g).tolist(), rows)
    assert decoder.rows == [0, 2] and decoder.cache.batch_size == 2
    assert len(decoder.stories[0]) == len(decoder.stories[2]) > len(decoder.stories[1])
    assert decoder.window_of(0) != decoder.window_of(2), "the rows wrote different tokens"


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


def test_finish_sentence_runs_on_to_the_sentences_end_and_no_further(byte_tokenizer: Tokenizer) -> None:
    """At its length mid-sentence a stream runs on to the sentence's end, at most finish_sentence tokens."""
    script = "Hello there. More words follow here"

    def text(**change: int) -> str:
        model = scripted(byte_tokenizer, script, block_size=64)
        s = dataclasses.replace(GREEDY, **{"max_new_tokens": 5, **change})
        return "".join(e.text for e in Generator(model, byte_tokenizer, path="exact").stream("q", s))

    assert text() == "Hello"  # off: the length as before
    assert text(finish_sentence=20) == "Hello there."  # seven more, then the sentence ends
    assert text(finish_sentence=3) == "Hello th"  # bounded: never past length + finish_sentence
    assert text(max_new_tokens=12, finish_sentence=20) == "Hello there."  # already at an end: no run-on


def test_finish_sentence_on_the_batched_path_is_each_streams_solo_run(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    from slmtui.core.sentences import ends_sentence

    gen = Generator(tiny_model, byte_tokenizer, path="exact")
    s = dataclasses.replace(RANDOM, max_new_tokens=8, finish_sentence=40, seed=5)
    streams = by_stream(list(gen.stream("Once", s, n=4)))
    lengths = []
    for i, got in streams.items():
        alone = list(gen.stream("Once", dataclasses.replace(s, seed=s.seed + i)))
        assert tokens(got) == tokens(alone), i
        written = "".join(e.text for e in got)
        assert 8 <= len(got) <= 48
        assert len(got) == 48 or ends_sentence(written), (i, written)
        assert not any(ends_sentence("".join(e.text for e in got[:k])) for k in range(8, len(got))), "ran past an end"
        lengths.append(len(got))
    assert len(set(lengths)) > 1, "every stream stopped at the same token: the rule was not tested per row"
