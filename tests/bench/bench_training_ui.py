"""Benchmark: the training screen under a stream of trainer events.

While events arrive (replayed from a recorded run at a chosen rate through the real TrainingSession, i.e. a
child process writing JSON lines that the app follows; or, with --real, an actual tiny training run), this
measures:

- how often the numbers and the chart are redrawn (the goal: at least once a second), and the longest gap;
- the event loop's latency: a probe asks to wake every 10 ms and records how late it wakes (goal: < 50 ms).

    python tests/bench/bench_training_ui.py                 # 200 events/s for 10 s (faster than a real run)
    python tests/bench/bench_training_ui.py --rate 1000     # a firehose
    python tests/bench/bench_training_ui.py --real          # a real tiny run on a generated corpus
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "tui")]

REPLAY = r'''
import signal, sys, time
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
delay = 1.0 / float(sys.argv[2])
stop = False
def on_sigint(signum, frame):
    global stop
    stop = True
signal.signal(signal.SIGINT, on_sigint)
next_at = time.perf_counter()
import json
step = 0
for line in lines:
    if stop:
        break
    print(line, flush=True)
    step = json.loads(line).get("step", step)
    next_at += delay
    time.sleep(max(0.0, next_at - time.perf_counter()))
print(json.dumps({"event": "done", "step": step, "path": "bench", "reason": "interrupted" if stop else "max_steps",
                  "best_val_loss": None, "val_bpb": None, "resume_command": "slm-train --resume" if stop else None}),
      flush=True)
sys.exit(130 if stop else 0)
'''


CALLBACK_CPU: list[float] = []
"""CPU seconds of each event-loop callback (its thread's CPU time, which a busy machine cannot inflate)."""


def measure_callbacks() -> None:
    """Time every callback the event loop runs: the loop's own blocking work, apart from the OS's delays."""
    original = asyncio.events.Handle._run

    def timed(self: asyncio.events.Handle) -> None:
        t0 = time.thread_time()
        original(self)
        CALLBACK_CPU.append(time.thread_time() - t0)

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench(*, rate: float, seconds: float, real: bool, work: Path) -> None:
    from training_helpers import TrainHost

    from tests.training_runs import recorded_events

    from slmtui.training.process import TrainingSession
    from slmtui.training.state import TrainRequest
    from slmtui.tui.screens.training import TrainingScreen
    from slmtui.tui.widgets.training import LossChart

    if real:
        corpus = work / "books"
        corpus.mkdir()
        rng = random.Random(0)
        words = "the cat sat on a mat and then the dog ran to the old house by the river where a boy lived".split()
        for i in range(3):
            (corpus / f"b{i}.txt").write_text("\n\n".join(
                " ".join(rng.choice(words) for _ in range(60)) + "." for _ in range(12)))
        session = TrainingSession()
        request = TrainRequest(corpus=corpus, preset="tiny", tokenizer="bpe:300", name="bench", max_steps=100000,
                               extra=("--eval-interval", "50"))
    else:
        steps = int(rate * seconds) + 10
        events = recorded_events(steps=steps, max_steps=steps + 100, eval_every=100)
        replay_file = work / "events.jsonl"
        replay_file.write_text("\n".join(events) + "\n")
        script = work / "replay.py"
        script.write_text(REPLAY)
        session = TrainingSession(command=[sys.executable, str(script), str(replay_file), str(rate)])
        request = TrainRequest(name="bench")

    app = TrainHost(session)
    redraws: list[float] = []
    charts: list[float] = []
    lags: list[float] = []
    received: list[float] = []

    async with app.run_test(size=(120, 35)) as pilot:
        screen = TrainingScreen(session, device="cpu")
        original_redraw = screen.redraw
        original_draw = LossChart.draw

        def counted_redraw() -> None:
            redraws.append(time.perf_counter())
            original_redraw()

        def counted_draw(self: LossChart, *args: object) -> None:
            charts.append(time.perf_counter())
            original_draw(self, *args)  # type: ignore[arg-type]

        screen.redraw = counted_redraw  # type: ignore[method-assign]
        LossChart.draw = counted_draw  # type: ignore[method-assign]
        await app.push_screen(screen)
        await pilot.pause(0.5)
        gc.freeze()  # as SlmApp does once started: a full collection no longer walks torch's million objects

        stop_probe = False

        async def probe() -> None:
            while not stop_probe:
                t0 = time.perf_counter()
                await asyncio.sleep(0.01)
                lags.append(time.perf_counter() - t0 - 0.01)

        probe_task = asyncio.create_task(probe())
        await asyncio.sleep(3.0)  # the same screen, idle: what this machine's load alone costs the loop
        baseline = list(lags)
        lags.clear()
        CALLBACK_CPU.clear()
        count = 0

        original_feed = session.feed_line

        def counted_feed(line: str | bytes) -> None:
            nonlocal count
            if line and line.strip():
                count += 1
                received.append(time.perf_counter())
            original_feed(line)

        session.feed_line = counted_feed  # type: ignore[method-assign]
        await session.start(request)
        cpu_start = time.process_time()
        t_start = time.perf_counter()
        while time.perf_counter() - t_start < seconds and session.running:
            await asyncio.sleep(0.1)
        cpu = (time.process_time() - cpu_start) / (time.perf_counter() - t_start)
        callbacks = [x * 1000 for x in CALLBACK_CPU]
        session.cancel()
        await session.wait(60)
        stop_probe = True
        await probe_task
        LossChart.draw = original_draw  # type: ignore[method-assign]
        state = session.state

    if len(received) < 2:
        print(f"no events arrived (status {state.status}: {state.error})")
        return
    first, last = received[0], received[-1]
    span = last - first
    during = [t for t in redraws if first <= t <= last]
    chart_during = [t for t in charts if first <= t <= last]
    # Staleness: from each event's arrival to the first redraw that shows it.
    import bisect
    stale = [redraws[i] - t for t in received if (i := bisect.bisect_left(redraws, t)) < len(redraws)]
    lag_ms = [x * 1000 for x in lags]
    print(f"source: {'a real tiny training run' if real else f'recorded events replayed at {rate:g}/s'}"
          f" through a child process; final status {state.status}, step {state.step.step if state.step else 0}")
    print(f"events: {len(received)} in {span:.1f} s ({len(received) / span:.0f}/s)")
    print(f"screen updates: {len(during)} ({len(during) / span:.1f}/s), chart redraws: {len(chart_during)} "
          f"({len(chart_during) / span:.1f}/s); an event is on screen within p95 {percentile(stale, 0.95) * 1000:.0f} ms, "
          f"max {max(stale) * 1000:.0f} ms")
    print(f"event-loop latency (10 ms probe, {len(lag_ms)} samples): p50 {statistics.median(lag_ms):.1f} ms, "
          f"p95 {percentile(lag_ms, 0.95):.1f} ms, max {max(lag_ms):.1f} ms")
    base_ms = [x * 1000 for x in baseline]
    print(f"baseline, same screen idle for 3 s before ({len(base_ms)} samples): p50 {statistics.median(base_ms):.1f} ms, "
          f"p95 {percentile(base_ms, 0.95):.1f} ms, max {max(base_ms):.1f} ms; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    print(f"the app's CPU while events arrive: {cpu * 100:.0f}% of one core; event-loop callbacks "
          f"({len(callbacks)}): p95 {percentile(callbacks, 0.95):.2f} ms, max {max(callbacks):.1f} ms of CPU each")
    ok = max(stale) <= 1.0 and max(lag_ms) < 50
    if not ok and max(stale) <= 1.0 and max(callbacks) < 50:
        print("latency over 50 ms with no callback using 50 ms of CPU: the machine's other load delayed the loop")
    print("goals (every event on screen within a second, latency under 50 ms):", "met" if ok else "NOT met")


def main() -> None:
    measure_callbacks()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=200.0, help="replayed events per second")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--real", action="store_true", help="a real tiny training run instead of a replay")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SLMTUI_HOME"] = str(Path(tmp) / "home")
        asyncio.run(bench(rate=args.rate, seconds=args.seconds, real=args.real, work=Path(tmp)))


if __name__ == "__main__":
    main()
