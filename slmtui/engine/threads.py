"""Intra-op CPU threads for decoding: chosen by measurement per batch size, applied around each step.

One stream of a small model is a chain of tiny ops: a second thread buys little, and on a busy machine
(a training run beside the app) a thread that waits for a core stalls every op; measured on 2 cores with a
trainer running, the seed preset decoded ~10x slower on 2 threads than on 1. Four or eight streams give
every op more work, and on an idle machine a second core then pays. Neither rule holds everywhere, so
``choose_threads`` times decode steps at 1, 2, ... threads (up to the cores this process may use) when a
batch size is first used, and keeps the fastest, with a margin that favours fewer threads.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any, Literal

import torch

from slmtui.engine.calibration_store import CalibrationStore, machine_key, usable, when
from slmtui.engine.decode_paths import StepTimer
from slmtui.engine.model import GPT

AUTO = "auto"
"""``Generator(num_threads=AUTO)``: the intra-op thread count is measured per batch size (choose_threads)."""

ThreadCount = int | Literal["auto"] | None
"""What ``Generator(num_threads=...)`` takes: a count, AUTO, or None for torch's own setting."""

MORE_THREADS_MARGIN = 0.9
"""More threads must make the median step at least 10% faster: a thread count that only ties is a bet
on the machine staying as idle as it was during the calibration, and one thread loses that bet least."""

GIVE_UP = 2.0
"""A thread count whose time so far is more than twice one thread's is out: it cannot win, and on a busy
machine each of its steps can take hundreds of milliseconds (measured beside a training run on 2 cores: a
0.8-1.1 ms step of the default model took 320-460 ms on 2 threads, every op waiting for a core at its
barrier). So a count is first tried on one op (the LM head) and is timed on whole steps only if that op
keeps up; a count that falls behind on steps stops there too."""

MAX_AUTO_THREADS = 4
"""The most threads the calibration tries: decode steps of a small model stop gaining well before this,
and every count tried costs calibration time."""


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class threads_context:
    """A ``with``: run the block with n intra-op threads, then give the caller back its setting.

    Generator.stream enters it once per call, not around each step: a change of the count is not free
    (torch.set_num_threads rebuilds its pthreadpool and clears oneDNN's cache). Measured on the loaded
    2-core machine, switching from the caller's 2 threads to 1 and back around every step took the default
    model from 1.0 to 1.9 ms a token.
    """

    def __init__(self, n: int | None) -> None:
        self.n = n
        self.saved = 0

    def __enter__(self) -> None:
        self.saved = torch.get_num_threads()
        if self.n is not None and self.n != self.saved:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        if self.n is not None and self.n != self.saved:
            torch.set_num_threads(self.saved)


@dataclass(frozen=True)
class ThreadChoice:
    """How many threads won for one model view and batch size, and the timings it was chosen on."""

    threads: int
    batch_size: int
    ms_per_step: dict[int, float]
    """Median decode step, per thread count tried (only 1 when the process may use one core)."""
    gave_up: tuple[int, ...] = ()
    """Thread counts that fell so far behind that their timing stopped: on the probe of one op (no step
    timed, so none in ms_per_step) or after a few steps (their median is of those)."""
    measured_at: float | None = None
    """When the calibration ran, for one kept on disk (calibration_store); None: in this process."""

    def to_json(self) -> dict[str, Any]:
        return {"threads": self.threads, "gave_up": list(self.gave_up),
                "ms_per_step": {str(n): ms for n, ms in self.ms_per_step.items() if usable(ms)}}

    @classmethod
    def from_json(cls, value: dict[str, Any], batch_size: int, measured_at: float, cores: int) -> ThreadChoice | None:
        """The choice kept on disk, or None when it is malformed or names more threads than ``cores``."""
        threads, gave_up, ms = value.get("threads"), value.get("gave_up"), value.get("ms_per_step")
        if type(threads) is not int or not 1 <= threads <= cores:
            return None
        if not isinstance(gave_up, list) or not all(type(n) is int for n in gave_up) or not isinstance(ms, dict):
            return None
        try:
            times = {int(n): float(v) for n, v in ms.items()}
        except (TypeError, ValueError):
            return None
        return cls(threads, batch_size, times, tuple(gave_up), measured_at)

    @property
    def reason(self) -> str:
        if len(self.ms_per_step) == 1 and not self.gave_up:
            return "one usable core"
        figures = [
            f"{n} thread{'s' if n > 1 else ''} {ms:.2f} ms{' (gave up)' if n in self.gave_up else ''}"
            for n, ms in sorted(self.ms_per_step.items())
        ]
        probed = [str(n) for n in self.gave_up if n not in self.ms_per_step]
        if probed:
            figures.append(f"{', '.join(probed)} thread(s) gave up: over {GIVE_UP:g}x slower on the LM head alone")
        kept = "" if self.measured_at is None else f" (a calibration kept from {when(self.measured_at)})"
        return f"median decode step at batch {self.batch_size}{kept}: {', '.join(figures)}"


_CHOICES: dict[tuple[object, ...], ThreadChoice] = {}


def choose_threads(
    model: GPT, *, batch_size: int = 1, key: object = None, rounds: int = 4, steps: int = 5,
    store: CalibrationStore | None = None,
) -> ThreadChoice:
    """The fastest intra-op thread count for ``model`` (a decoding path's view) at ``batch_size``.

    Measured once per process for each ``key`` (name the path and the model's shape in it) and batch size,
    and with a ``store`` once per machine (the key's repr names the entry: it must not hold an address).
    Thread counts are timed in interleaved rounds, so a busy spell hurts all alike, and the *median* step
    counts, not the best: on a busy machine a two-thread step is fast whenever both cores happen to be
    free and stalls whenever one is not, and the median is what a stream of tokens gets.
    The cost is ~rounds x steps x (counts tried) decode steps, ~50 ms for the default model on 2 cores,
    plus a warm-up step per count; a count that falls behind (GIVE_UP), on its probe of one op or on
    whole steps, stops being timed: a few ms on a busy machine.
    """
    cores = min(usable_cores(), MAX_AUTO_THREADS)
    cache_key = (key, batch_size, cores)
    if cache_key in _CHOICES:
        return _CHOICES[cache_key]
    if cores <= 1 or next(model.parameters()).device.type != "cpu":
        choice = ThreadChoice(1, batch_size, {1: float("nan")})
        _CHOICES[cache_key] = choice
        return choice
    stored = None
    if store is not None:
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:20]
        stored = f"threads/{machine_key()}/{digest}/batch {batch_size}/cores {cores}"
        kept = store.get(stored)
        cached = None if kept is None else ThreadChoice.from_json(kept[0], batch_size, kept[1], cores)
        if cached is not None:
            _CHOICES[cache_key] = cached
            return cached
    counts = list(range(1, cores + 1))
    out = {n for n in counts[1:] if not _keeps_up(model, batch_size, n)}
    timer = StepTimer(model, batch_size=batch_size, position=16)
    for n in counts:  # warm-up, not counted: kernel selection, OpenMP's pool
        if n not in out:
            with threads_context(n):
                timer.best(1)
    samples: dict[int, list[float]] = {n: [] for n in counts}
    spent = dict.fromkeys(counts, 0.0)
    for _ in range(rounds):  # interleaved: a busy spell hurts every count alike
        for n in counts:
            if n in out:
                continue
            with threads_context(n):
                for _ in range(steps):
                    seconds = timer.best(1)  # one step
                    samples[n].append(seconds)
                    spent[n] += seconds
                    if n > 1 and spent[n] > GIVE_UP * spent[1]:
                        out.add(n)
                        break
    median = {n: 1000 * statistics.median(s) for n, s in samples.items() if s}
    winner = 1
    for n in counts[1:]:
        if n not in out and median[n] < MORE_THREADS_MARGIN * median[winner]:
            winner = n
    choice = ThreadChoice(winner, batch_size, median, tuple(sorted(out)))
    _CHOICES[cache_key] = choice
    if store is not None and stored is not None:
        store.put(stored, choice.to_json())
    return choice


class HeadTimer:
    """Times the model's LM head alone, one call at a time: one op, the largest of a decode step."""

    @torch.inference_mode()
    def __init__(self, model: GPT, *, batch_size: int) -> None:
        self.head = model.lm_head
        p = next(model.parameters())
        self.x = torch.zeros(batch_size, 1, model.config.n_embd, device=p.device, dtype=p.dtype)

    @torch.inference_mode()
    def median(self, calls: int) -> float:
        """The median of ``calls`` calls, in seconds."""
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            self.head(self.x)
            times.append(time.perf_counter() - start)
        return statistics.median(times)


def _keeps_up(model: GPT, batch_size: int, n: int, calls: int = 5) -> bool:
    """Whether n threads run the LM head within GIVE_UP of one thread: a probe of a few ms at worst, before
    any whole step is paid for (a starved thread costs a scheduler slice per op, ~100 ops a step)."""
    timer = HeadTimer(model, batch_size=batch_size)
    with threads_context(1):
        timer.median(1)
        one = timer.median(calls)
    with threads_context(n):
        start = time.perf_counter()
        timer.median(1)  # the pool's first parallel region
        if time.perf_counter() - start > 20 * one + 0.002:
            return False
        return timer.median(calls) <= GIVE_UP * one
