"""StreamJob on its own: the buffer the UI drains, saving as it goes, the seed it fills in, cancel."""

from __future__ import annotations

from dataclasses import replace

from slmtui.engine.generate import Generator
from slmtui.engine.model import GPT
from slmtui.core.sampling import Sampling
from slmtui.engine.tokenizer import Tokenizer
from slmtui.core.sampling_record import describe_record, record_runs
from slmtui.writing.stream import StreamJob


class ListSink:
    """Records each save: (passage id, text)."""

    def __init__(self) -> None:
        self.saves: list[tuple[int, str]] = []
        self.records: dict[int, dict[str, object]] = {}

    def append_texts(self, chunks: dict[int, tuple[str, str]]) -> None:
        self.saves.extend((pid, text) for pid, (text, _tokens) in chunks.items())

    def set_samplings(self, records: dict[int, dict[str, object]]) -> None:
        self.records.update(records)


def test_run_buffers_every_token_and_saves_all_of_it(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    generator = Generator(tiny_model, byte_tokenizer)
    job = StreamJob((7,), "Once", seed=3)
    sink = ListSink()
    sampling = Sampling(max_new_tokens=10)
    job.run(generator, sink, lambda: sampling, save_every=0.0)
    events = job.take()
    assert job.done and job.finished.is_set() and job.produced == len(events) == 10
    assert job.take() == [], "take() hands each event out once"
    text = "".join(t.event.text for t in events)
    assert all(pid == 7 for pid, _ in sink.saves) and "".join(t for _, t in sink.saves) == text
    assert len(sink.saves) > 1, "saved as it went, not only at the end"
    expected = "".join(e.text for e in generator.stream("Once", replace(sampling, seed=3)))
    assert text == expected, "the job's seed fills in for the panel's None, so the passage replays exactly"


def test_a_long_save_interval_saves_once_at_the_end(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    job = StreamJob((1,), "A", seed=1)
    sink = ListSink()
    job.run(Generator(tiny_model, byte_tokenizer), sink, lambda: Sampling(max_new_tokens=5), save_every=3600)
    assert len(sink.saves) == 1 and sink.saves[0][1] == "".join(t.event.text for t in job.take())


def test_the_sampling_is_read_before_every_token(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    job = StreamJob((1,), "A", seed=1)
    hot, cold = Sampling(max_new_tokens=6, temperature=1.5), Sampling(max_new_tokens=6, temperature=0.0)
    calls = 0

    def sampling() -> Sampling:
        nonlocal calls
        calls += 1
        return hot if job.produced < 3 else cold

    job.run(Generator(tiny_model, byte_tokenizer), ListSink(), sampling)
    assert [s.temperature for s in job.samplings] == [1.5] * 3 + [0.0] * 3 and calls >= 6
    assert all(s.seed == 1 for s in job.samplings)


def test_cancel_stops_after_at_most_one_more_token(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    job = StreamJob((1,), "A", seed=1)

    def sampling() -> Sampling:
        if job.produced == 4:
            job.cancel()
        return Sampling(max_new_tokens=100)

    sink = ListSink()
    job.run(Generator(tiny_model, byte_tokenizer), sink, sampling)
    assert job.stopped_at == 4 and job.produced <= 5 and job.done
    assert "".join(t for _, t in sink.saves) == "".join(t.event.text for t in job.take()), "every token made is saved"


def test_should_stop_ends_the_stream_too(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    job = StreamJob((1,), "A", seed=1)
    job.run(Generator(tiny_model, byte_tokenizer), ListSink(), lambda: Sampling(max_new_tokens=100),
            lambda: job.produced >= 2)
    assert job.produced == 2 and job.stopped_at is None


def test_the_record_says_what_drew_each_token(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    """Issue 24 item 4: temperature 0 and DRY set after the 4th token are recorded from the 5th token on; the
    first run is what the first token was drawn with (the panel's sampling, the job's seed)."""
    job = StreamJob((1,), "A", seed=9)
    hot = Sampling(max_new_tokens=8, temperature=0.8)
    cold = replace(hot, temperature=0.0, dry_multiplier=0.8)
    sink = ListSink()
    job.run(Generator(tiny_model, byte_tokenizer), sink, lambda: hot if job.produced < 4 else cold, save_every=0.0)
    record = sink.records[1]
    assert record["temperature"] == 0.8 and record["seed"] == 9 and record["dry_multiplier"] == 0.0
    assert record["changes"] == [{"from_token": 4, "temperature": 0.0, "dry_multiplier": 0.8}]
    assert record_runs(record)[1] == (4, {**cold.to_dict(), "seed": 9})
    assert describe_record(record) == "t 0.8 k 40 p 0.95 seed 9 · from token 5: t 0, dry 0.8"


def test_candidates_record_their_own_seeds_and_one_run_when_nothing_changed(
        tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    job = StreamJob((1, 2, 3), "A", seed=4)
    sink = ListSink()
    s = Sampling(max_new_tokens=5, banned_phrases=("the",))
    job.run(Generator(tiny_model, byte_tokenizer), sink, lambda: s, save_every=0.0)
    assert {pid: r["seed"] for pid, r in sink.records.items()} == {1: 4, 2: 5, 3: 6}
    assert all("changes" not in r and r["banned_phrases"] == ["the"] for r in sink.records.values())
    assert describe_record(sink.records[2]) == "t 0.8 k 40 p 0.95 bans 1 seed 5"
