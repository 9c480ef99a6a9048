"""The decoding thread count: measured per batch size, more threads only when clearly faster, set per step."""

from __future__ import annotations

import statistics

import pytest
import torch

from slmtui.core.sampling import Sampling
from slmtui.engine import threads
from slmtui.engine.generate import Generator
from slmtui.engine.model import GPT
from slmtui.engine.threads import ThreadChoice, choose_threads, threads_context
from slmtui.engine.tokenizer import Tokenizer

from thread_spy import record_threads

RANDOM = Sampling(temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0, max_new_tokens=6, seed=3)


def fake_steps(monkeypatch: pytest.MonkeyPatch, cores: int, ms: dict[tuple[int, int], list[float]]) -> list[int]:
    """``cores`` usable cores, and a decode step at (batch size, threads) that takes the given times in turn
    (cycled); returns the thread counts the steps ran at."""
    monkeypatch.setattr(threads, "usable_cores", lambda: cores)
    monkeypatch.setattr(threads, "_CHOICES", {})
    ran: list[int] = []
    calls: dict[tuple[int, int], int] = {}

    class Timer:
        def __init__(self, model, *, batch_size, position=None):  # type: ignore[no-untyped-def]
            self.batch_size = batch_size

        def best(self, steps: int) -> float:
            key = (self.batch_size, torch.get_num_threads())
            ran.append(key[1])
            i = calls[key] = calls.get(key, -1) + 1
            return ms[key][i % len(ms[key])] / 1000

    class HeadTimer:  # the one-op probe: here as fast or slow as a step
        def __init__(self, model, *, batch_size):  # type: ignore[no-untyped-def]
            self.batch_size = batch_size

        def median(self, calls: int) -> float:
            key = (self.batch_size, torch.get_num_threads())
            probed.append(key[1])
            return statistics.median(ms[key]) / 1000

    probed: list[int] = []
    monkeypatch.setattr(threads, "StepTimer", Timer)
    monkeypatch.setattr(threads, "HeadTimer", HeadTimer)
    return ran


@pytest.fixture
def caller_threads() -> int:
    saved = torch.get_num_threads()
    yield saved
    torch.set_num_threads(saved)


@pytest.mark.parametrize(
    ("ms", "winner"),
    [
        ({1: [2.0], 2: [1.2], 3: [1.0], 4: [1.05]}, 3),
        ({1: [2.0], 2: [1.9], 3: [1.85], 4: [1.9]}, 1),  # faster, but not by the margin
        ({1: [1.0], 2: [2.5], 3: [3.0], 4: [4.0]}, 1),  # a busy machine
        # Two threads are sometimes fast (both cores free for a moment) and mostly stalled: the median decides.
        ({1: [1.0], 2: [0.5, 3.0, 3.0], 3: [3.0], 4: [3.0]}, 1),
    ],
)
def test_the_fastest_median_step_wins_and_more_threads_need_a_margin(
    tiny_model: GPT, monkeypatch: pytest.MonkeyPatch, caller_threads: int, ms: dict[int, list[float]], winner: int
) -> None:
    ran = fake_steps(monkeypatch, 4, {(2, n): t for n, t in ms.items()})
    choice = choose_threads(tiny_model, batch_size=2, key="tiny")
    assert choice.threads == winner
    assert set(choice.ms_per_step) | set(choice.gave_up) == {1, 2, 3, 4}, "every count timed or given up"
    assert set(ran) == set(choice.ms_per_step)
    assert choice.reason.startswith("median decode step at batch 2: 1 thread ")
    assert torch.get_num_threads() == caller_threads, "the caller's setting is back"
    assert choose_threads(tiny_model, batch_size=2, key="tiny") is choice, "measured once per process"
    assert choose_threads(tiny_model, batch_size=2, key="other") is not choice


def test_a_thread_count_that_falls_far_behind_on_one_op_is_never_timed_on_steps(
    tiny_model: GPT, monkeypatch: pytest.MonkeyPatch, caller_threads: int
) -> None:
    """Beside a training run a two-thread step can take 100s of ms: the calibration must not pay for 20 of
    them, nor for one, when a single op already shows it."""
    ran = fake_steps(monkeypatch, 2, {(1, 1): [1.0], (1, 2): [300.0]})
    choice = choose_threads(tiny_model, key="tiny")
    assert choice.threads == 1
    assert choice.gave_up == (2,) and set(choice.ms_per_step) == {1}
    assert "2 thread(s) gave up" in choice.reason
    assert 2 not in ran, "no step was timed on 2 threads"
    assert ran.count(1) == 1 + 4 * 5, "one thread is timed in full"


def test_a_thread_count_that_keeps_up_on_one_op_but_not_on_steps_stops_after_a_few(
    tiny_model: GPT, monkeypatch: pytest.MonkeyPatch, caller_threads: int
) -> None:
    ran = fake_steps(monkeypatch, 2, {(1, 1): [1.0], (1, 2): [1.5, 40.0, 40.0, 40.0]})
    monkeypatch.setattr(threads, "_keeps_up", lambda *args, **kwargs: True)
    choice = choose_threads(tiny_model, key="tiny")
    assert choice.threads == 1
    assert choice.gave_up == (2,) and "(gave up)" in choice.reason
    assert ran.count(2) <= 3, "a warm-up step and a timed one or two"


def test_one_core_means_one_thread_without_measuring(tiny_model: GPT, monkeypatch: pytest.MonkeyPatch) -> None:
    ran = fake_steps(monkeypatch, 1, {})
    choice = choose_threads(tiny_model, batch_size=4, key="tiny")
    assert (choice.threads, ran, choice.reason) == (1, [], "one usable core")


def test_at_most_max_auto_threads_are_tried(tiny_model: GPT, monkeypatch: pytest.MonkeyPatch, caller_threads: int) -> None:
    cores = threads.MAX_AUTO_THREADS + 3
    ran = fake_steps(monkeypatch, cores, {(1, n): [1.0 / n] for n in range(1, cores + 1)})
    assert choose_threads(tiny_model, key="tiny").threads == threads.MAX_AUTO_THREADS
    assert max(ran) == threads.MAX_AUTO_THREADS


def test_the_generator_decodes_each_batch_size_on_its_own_thread_count(
    tiny_model: GPT, byte_tokenizer: Tokenizer, monkeypatch: pytest.MonkeyPatch, caller_threads: int
) -> None:
    """One stream stays on 1 thread, four get 2 (as measured); after the call the caller's setting is back."""
    fake_steps(monkeypatch, 2, {(1, 1): [1.0], (1, 2): [1.5], (4, 1): [2.0], (4, 2): [1.2]})
    gen = Generator(tiny_model, byte_tokenizer, path="exact")
    assert set(gen.thread_choices) == {1}, "one stream's thread count is measured at load"
    assert (gen.threads_for(1), gen.threads_for(4)) == (1, 2)
    assert isinstance(gen.thread_choices[4], ThreadChoice) and gen.thread_choices[4].ms_per_step == {1: 2.0, 2: 1.2}
    seen = record_threads(monkeypatch, tiny_model)
    torch.set_num_threads(3)
    between = [torch.get_num_threads() for _ in gen.stream("x", RANDOM, n=4)]
    assert set(seen) == {2} and set(between) == {2}
    assert torch.get_num_threads() == 3
    seen.clear()
    list(gen.stream("x", RANDOM))
    assert set(seen) == {1}
    explicit = Generator(tiny_model, byte_tokenizer, path="exact", num_threads=2)
    assert explicit.threads_for(1) == 2 and explicit.thread_choices == {}, "a number is an override, never measured"


def test_threads_context_restores_the_callers_setting(caller_threads: int) -> None:
    torch.set_num_threads(2)
    with threads_context(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with threads_context(None):
        assert torch.get_num_threads() == 2


def test_a_real_calibration_on_two_cores_gives_a_sane_choice(
    tiny_model: GPT, monkeypatch: pytest.MonkeyPatch, caller_threads: int
) -> None:
    """No fakes (the timings themselves are this machine's business): it runs, it restores, it reports."""
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "_CHOICES", {})
    torch.set_num_threads(1)
    choice = choose_threads(tiny_model, batch_size=3, key="tiny")
    assert choice.threads in (1, 2) and choice.batch_size == 3
    assert choice.ms_per_step[1] > 0
    assert set(choice.ms_per_step) | set(choice.gave_up) == {1, 2}
    assert torch.get_num_threads() == 1
