"""RemoteGenerator: the engine in a child process streams what the in-process engine does, takes sampling
changes and stops mid-stream, reports its errors and deaths as SlmError, and leaves no process behind.

A child costs seconds to start (it imports torch), so one child, on the tiny model's exact path, serves the
whole module; the tests that kill or close a child make their own.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from slmtui.core.errors import SlmError
from slmtui.core.token_events import TokenEvent
from slmtui.engine.generate import Generator
from slmtui.engine.model import GPT
from slmtui.engine.model_io import save_model_dir
from slmtui.engine.remote import RemoteGenerator
from slmtui.core.sampling import Sampling
from slmtui.engine.tokenizer import Tokenizer
from tests.processes import alive
from trainer.config import preset

EXACT = "exact"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, _tiny_state: dict[str, torch.Tensor],
              byte_tokenizer: Tokenizer) -> Path:
    """The tests' tiny model saved once for the module (the child loads it by its folder)."""
    model = GPT(preset("tiny").model)
    model.load_state_dict(_tiny_state)
    return save_model_dir(tmp_path_factory.mktemp("models") / "tiny", model.eval(), byte_tokenizer)


@pytest.fixture(scope="module")
def remote(model_dir: Path) -> Iterator[RemoteGenerator]:
    generator = RemoteGenerator(model_dir, path=EXACT)
    generator.start()
    yield generator
    generator.close()


@pytest.fixture
def local(tiny_model: GPT, byte_tokenizer: Tokenizer) -> Generator:
    return Generator(tiny_model, byte_tokenizer, path=EXACT)


def ids(events: list[TokenEvent]) -> list[tuple[int, int]]:
    return [(e.stream, e.token_id) for e in events]


@pytest.mark.parametrize("n", [1, 3])
def test_the_child_streams_what_the_engine_streams_token_for_token(
        remote: RemoteGenerator, local: Generator, n: int) -> None:
    sampling = Sampling(max_new_tokens=40, temperature=0.9, top_k=50, seed=11)
    expected = list(local.stream("Once upon a time", sampling, n=n, memory="A tale."))
    got = list(remote.stream("Once upon a time", lambda: sampling, n=n, memory="A tale."))
    assert got == expected and len(got) == 40 * n
    assert all(e.sampling == sampling for e in got), "each event says which settings drew it"


def test_a_sampling_change_mid_stream_applies_from_the_next_token_the_child_draws(
        remote: RemoteGenerator, local: Generator) -> None:
    hot = Sampling(max_new_tokens=300, temperature=1.2, seed=5)
    cold = Sampling(max_new_tokens=300, temperature=0.0, seed=5)
    seen = 0

    def panel() -> Sampling:
        return hot if seen < 10 else cold

    got = []
    for event in remote.stream("A", panel):
        got.append(event)
        seen += 1
    switch = next(i for i, e in enumerate(got) if e.sampling == cold)
    assert switch >= 10 and all(e.sampling == hot for e in got[:switch])
    assert all(e.sampling == cold for e in got[switch:])
    # What the child drew is what the engine draws when its settings change before token `switch`.
    reads = 0

    def replay() -> Sampling:
        nonlocal reads
        reads += 1
        return hot if reads <= switch else cold

    assert ids(got) == ids(list(local.stream("A", replay)))


@pytest.mark.parametrize("n", [1, 3])
def test_stop_ends_the_child_within_one_token(remote: RemoteGenerator, n: int) -> None:
    got: list[TokenEvent] = []
    events = remote.stream("A", Sampling(max_new_tokens=100_000, seed=1), n=n, should_stop=lambda: len(got) >= 5)
    for event in events:
        got.append(event)
    assert len(got) == 5, "nothing is handed out after should_stop() says so"
    assert remote.after_stop == 0, "the child drew no token after it read the stop"
    assert remote.path_for(1) == EXACT, "and it is idle, answering the next request"


def test_closing_the_stream_early_stops_the_child(remote: RemoteGenerator, local: Generator) -> None:
    events = remote.stream("A", Sampling(max_new_tokens=100_000, seed=1))
    first = [next(events) for _ in range(3)]
    events.close()
    assert remote.after_stop == 0
    again = list(remote.stream("A", Sampling(max_new_tokens=3, seed=1)))
    assert ids(again) == ids(first), "the next stream starts clean"


def test_a_child_error_is_an_slm_error_with_its_message(remote: RemoteGenerator) -> None:
    with pytest.raises(SlmError, match="^IndexError: index out of range"):
        list(remote.stream([100_000], Sampling(max_new_tokens=3)))  # past the vocabulary: raised in the child
    assert len(list(remote.stream("A", Sampling(max_new_tokens=3, seed=1)))) == 3, "the child keeps serving"


@pytest.mark.parametrize("case", ["unknown path", "missing model"])
def test_a_child_that_cannot_start_is_an_slm_error_that_says_why(model_dir: Path, tmp_path: Path, case: str) -> None:
    folder, path, why = {"unknown path": (model_dir, "no-such-path", "unknown decoding path 'no-such-path'"),
                         "missing model": (tmp_path / "nowhere", None, "nowhere")}[case]
    generator = RemoteGenerator(folder, path=path)
    try:
        with pytest.raises(SlmError, match=why):
            list(generator.stream("A", Sampling(max_new_tokens=3)))
        assert not generator.ready and generator.pid is None
    finally:
        generator.close()


def test_a_killed_child_is_an_slm_error_and_the_next_stream_gets_a_fresh_one(
        model_dir: Path, local: Generator) -> None:
    generator = RemoteGenerator(model_dir, path=EXACT)
    try:
        assert not generator.wait_ready(), "nothing runs before start()"
        generator.start()
        assert generator.wait_ready()
        first = generator.pid
        assert first is not None
        events = generator.stream("A", Sampling(max_new_tokens=100_000, seed=1))
        next(events)
        os.kill(first, signal.SIGKILL)
        with pytest.raises(SlmError, match="stopped"):
            for _ in events:
                pass
        assert generator.pid is None and not alive(first)
        got = list(generator.stream("A", Sampling(max_new_tokens=5, seed=2)))
        assert generator.pid not in (None, first)
        assert ids(got) == ids(list(local.stream("A", Sampling(max_new_tokens=5, seed=2))))
    finally:
        generator.close()


def test_close_leaves_no_process(model_dir: Path) -> None:
    generator = RemoteGenerator(model_dir, path=EXACT)
    generator.start()
    pid = generator.pid
    assert pid is not None and generator.wait_ready()
    generator.close()
    assert not alive(pid), "the child has exited and was reaped (no zombie)"
    assert all(p.pid != pid for p in multiprocessing.active_children())


def test_closing_a_child_that_is_still_starting_leaves_no_process(model_dir: Path) -> None:
    generator = RemoteGenerator(model_dir, path=EXACT)
    generator.start()
    pid = generator.pid
    generator.close()
    assert pid is not None and not alive(pid)
