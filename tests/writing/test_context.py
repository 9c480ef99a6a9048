"""The context window's arithmetic: what the meter says and where the dimmed text ends."""

from __future__ import annotations

from slmtui.engine.generate import Generator
from slmtui.engine.model import GPT
from slmtui.core.sampling import Sampling
from slmtui.engine.tokenizer import Tokenizer
from slmtui.writing.context import StreamWindow, idle_window, memory_tokens
from slmtui.writing.stream import TokenMark


def test_idle_window_and_memory(byte_tokenizer: Tokenizer) -> None:
    assert idle_window(byte_tokenizer, "", 64, 0).story_tokens == 0
    w = idle_window(byte_tokenizer, "abcdef", 4, 0)  # one token a byte
    assert (w.story_tokens, w.window_tokens, w.start) == (6, 4, 2)
    w = idle_window(byte_tokenizer, "abcdef", 4, 1)
    assert (w.window_tokens, w.start) == (3, 3)
    assert memory_tokens(byte_tokenizer, "x" * 100, 64) == 32, "the engine keeps at most half for memory"


def test_stream_window_follows_the_engines_window(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    """Against the real Decoder: the text from ``start`` on is exactly the tokens the model read, plus the
    newest one (checked while each token is one character: an ASCII prompt, bytes as tokens)."""
    prompt = "Once upon a time there was a lighthouse keeper who " * 2  # 102 tokens: past the 64 context
    generator = Generator(tiny_model, byte_tokenizer)
    events = list(generator.stream(prompt, Sampling(temperature=0.0, max_new_tokens=60)))
    block = tiny_model.config.block_size
    window = StreamWindow(byte_tokenizer, prompt, passage_start=len(prompt), first_mark=0, block_size=block)
    marks: list[TokenMark] = []
    offset = 0
    checked = 0
    for i, e in enumerate(events):
        marks.append(TokenMark(offset, offset + len(e.text), e.token_id, e.prob, e.alternatives))
        offset += len(e.text)
        w = window.at(i + 1, e.window_tokens, marks)
        assert w.story_tokens == len(prompt) + i + 1
        # The newest token is seen next, unless the window is full: then it slides first (never 65 of 64).
        assert w.window_tokens == min(e.window_tokens + 1, block)
        assert w.used == w.window_tokens <= block
        if all(m.end - m.start == 1 for m in marks):  # so far one character a token (bytes may combine)
            # The seen text is the last window_tokens + 1 characters of the story.
            assert len(prompt) + offset - w.start == w.window_tokens
            checked += 1
    assert events[0].window_tokens < len(prompt) and checked
