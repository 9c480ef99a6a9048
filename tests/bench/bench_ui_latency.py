"""Benchmark: the writer's responsiveness while the model streams at full speed, its pace against the
engine's, a 300-passage tree, and its start-up time.

    python tests/bench/bench_ui_latency.py                      # a tiny random model made for the run
    python tests/bench/bench_ui_latency.py --model default      # a real model (name or folder)
    python tests/bench/bench_ui_latency.py --model default --choices 1,4 --samples 200 --no-startup

The app runs headless (Textual's own test driver: the whole UI, layout and rendering included, only no
terminal) on a story it starts itself; the model writes without end, unpaced. While it does:

- key latency: every 20 ms a key is posted to the app, as the terminal driver does; latency is the time
  until the prompt line has inserted the character (goal: p95 and max < 50 ms);
- loop lateness: a 10 ms interval timer records how late each tick fires (how long the event loop was busy);
- stop latency: Escape, then the time until the worker has finished and its text is saved;
- pace: the tokens the app's worker made a second (all candidates together with choices N > 1), over
  ``--engine-seconds`` of streaming alone (the user reading) and over the key-latency stretch (a key every
  20 ms, far faster than anyone types), beside the engine's own ``Generator.stream`` on the same model,
  prompt, sampling, decoding path and threads, in the bench's process just after (the app decodes in a child
  process once it has started: the bench waits for it, and says which the app used);
- a 300-passage story: opening it (the session reads it, the tree and the story are drawn) and one step up
  the tree (alt+up), in ms.

Every figure comes with the machine's load average: on a shared machine they are lower and noisier.

The tiny model (2 layers, bytes as tokens) writes far more tokens a second than a real one: many tokens per
frame and a fast-growing story, the hardest case for the UI. Start-up: a fresh process opening the writer,
timed to a usable screen and to the model being loaded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from base64 import b64encode
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

from textual import events  # noqa: E402

from slmtui.core import paths  # noqa: E402
from slmtui.core.sampling import Sampling  # noqa: E402
from slmtui.settings import LoadResult, Settings  # noqa: E402
from slmtui.tui.app import SlmApp  # noqa: E402
from slmtui.tui.screens.writer import WriterScreen  # noqa: E402
from slmtui.tui.widgets.prompt_box import PromptBox  # noqa: E402

GOAL_MS = 50.0


def make_tiny_model() -> str:
    """The tests' tiny model (random weights, byte tokens) saved as the model "tiny" in $SLMTUI_HOME."""
    import torch

    from slmtui.core.tokenizer_spec import ENDOFTEXT, GPT2_PATTERN, TokenizerSpec
    from slmtui.engine.model import GPT
    from slmtui.engine.model_io import save_model_dir
    from slmtui.engine.tokenizer import Tokenizer
    from trainer.config import preset

    ranks = paths.cache_dir() / "bytes.tiktoken"
    ranks.parent.mkdir(parents=True, exist_ok=True)
    ranks.write_bytes(b"".join(b64encode(bytes([i])) + b" %d\n" % i for i in range(256)))
    spec = TokenizerSpec(name="bytes", pattern=GPT2_PATTERN, special_tokens={ENDOFTEXT: 256}, n_vocab=257)
    torch.manual_seed(0)
    save_model_dir(paths.models_dir() / "tiny", GPT(preset("tiny").model).eval(), Tokenizer.from_rank_file(ranks, spec))
    return "tiny"


def percentile(values: list[float], q: float) -> float:
    ms = sorted(v * 1000 for v in values)
    return ms[min(len(ms) - 1, int(q * len(ms)))]


def percentiles(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p50 = statistics.median(ms)
    return (f"p50 {p50:6.1f} ms   p95 {percentile(values, 0.95):6.1f} ms   p99 {percentile(values, 0.99):6.1f} ms"
            f"   max {ms[-1]:6.1f} ms   (n={len(ms)})")


PROMPT = "Once upon a time"
SAMPLING = Sampling(max_new_tokens=100_000, seed=1)


def engine_pace(model: str, device: str, n: int, seconds: float, path: str | None = None,
                threads: int | None | str = "auto") -> float:
    """tok/s of the engine alone (all N streams together): Generator.stream as the app's worker calls it, on
    the decoding path and thread count the app's generator chose (calibration on a busy machine can choose
    differently)."""
    from slmtui.core.model_catalog import resolve_model
    from slmtui.engine.device import pick_device
    from slmtui.engine.generate import Generator
    from slmtui.engine.model_io import load_model_dir

    loaded = load_model_dir(resolve_model(model), device=pick_device(device))
    generator = Generator(loaded.model, loaded.tokenizer, path=path, num_threads=threads)
    stream = generator.stream(PROMPT, lambda: SAMPLING, n=n)
    for _ in range(3 * n):  # warm up (and let the engine pick its path for N)
        next(stream)
    made, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        next(stream)
        made += 1
    elapsed = time.perf_counter() - started
    stream.close()
    return made / elapsed


def big_story(store: object, n: int = 300) -> int:
    """A story of n passages (a chain with a retry every tenth passage); returns its id."""
    story = store.create_story(title="Long")  # type: ignore[attr-defined]
    parent = None
    for i in range(n):
        if i % 10 == 9 and parent is not None:
            store.add_passage(story.id, parent_id=store.get_passage(parent).parent_id,  # type: ignore[attr-defined]
                              author="model", text=f" other {i} words here", current=False)
            continue
        parent = store.add_passage(story.id, parent_id=parent, author="model",  # type: ignore[attr-defined]
                                   text=f" passage {i} with some words in it").id
    return story.id


async def measure_tree(model: str, device: str) -> dict[str, float]:
    """Open a 300-passage story and step up its tree: ms, the whole redraw included."""
    settings = LoadResult(Settings(), [], paths.config_file(), writable=False)
    app = SlmApp(model=model, device=device, settings=settings)
    async with app.run_test(headless=True, size=(120, 35)) as pilot:
        writer = app.screen
        assert isinstance(writer, WriterScreen)
        story_id = big_story(writer.session.store)
        started = time.perf_counter()
        writer.session.open(story_id)
        await pilot.pause()
        opened = time.perf_counter() - started
        steps = []
        for _ in range(10):
            started = time.perf_counter()
            await pilot.press("alt+up")
            steps.append(time.perf_counter() - started)
        return {"open": opened, "step": statistics.median(steps)}


async def measure(model: str, device: str, samples: int, warmup: float, choices: int = 1,
                  pace_seconds: float = 5.0) -> dict[str, object]:
    settings = LoadResult(Settings(), [], paths.config_file(), writable=False)
    app = SlmApp(model=model, device=device, settings=settings)
    async with app.run_test(headless=True, size=(120, 35)) as pilot:
        writer = app.screen
        assert isinstance(writer, WriterScreen)
        while writer.session.model is None:
            if writer.session.state.startswith(("error", "no model")):
                raise SystemExit(f"cannot load the model: {writer.session.state}")
            await asyncio.sleep(0.05)
        remote = writer.session.model.remote
        while remote is not None and remote.starting:  # time the app as it runs once its decoding child is up
            await asyncio.sleep(0.05)
        if remote is not None and not remote.ready:
            print(f"the decoding process did not start ({remote.error}): the app writes in-process")
        mode = writer.session.model.mode
        writer.set_sampling(SAMPLING)
        writer.set_choices(choices)
        prompt = writer.query_one(PromptBox)
        prompt.value = PROMPT
        app.post_message(events.Key("enter", None))
        while writer.session.job is None:
            await asyncio.sleep(0.01)
        job = writer.session.job
        prompt.focus()  # with N > 1 the candidates take the focus: type into the prompt all the same

        lateness: list[float] = []
        expected = [0.0]

        def tick() -> None:
            now = time.perf_counter()
            lateness.append(max(0.0, now - expected[0]))
            expected[0] = now + 0.01

        await asyncio.sleep(warmup)
        # The pace while the user reads: nothing but the stream and its drawing.
        started, produced = time.perf_counter(), job.produced
        await asyncio.sleep(pace_seconds)
        reading = (job.produced - produced) / (time.perf_counter() - started)
        expected[0] = time.perf_counter() + 0.01
        timer = app.set_interval(0.01, tick)
        handled: list[float] = []
        insert = prompt._replace_via_keyboard

        def timed_insert(*args):  # type: ignore[no-untyped-def]
            handled.append(time.perf_counter())
            return insert(*args)

        prompt._replace_via_keyboard = timed_insert  # type: ignore[method-assign]
        started, produced = time.perf_counter(), job.produced
        latency: list[float] = []
        for _ in range(samples):
            before = len(handled)
            sent = time.perf_counter()
            app.post_message(events.Key("a", "a"))  # what the driver does with a key from the terminal
            while len(handled) == before:
                await asyncio.sleep(0.0005)
            latency.append(handled[-1] - sent)
            if len(prompt.value) > 40:
                prompt.value = ""
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        tokens = job.produced - produced
        timer.stop()
        chars = len(writer.story_view.full_text) + sum(len(t) for t in writer.session.candidate_text.values())

        sent = time.perf_counter()
        app.post_message(events.Key("escape", None))
        while not job.done or writer.session.job is not None:
            await asyncio.sleep(0.0005)
        stop = time.perf_counter() - sent
        return {
            "key": latency,
            "loop": lateness,
            "stop": stop,
            "tok_s": tokens / elapsed,
            "reading_tok_s": reading,
            "path": writer.session.model.streamer().path_for(choices) if writer.session.model else None,
            "threads": writer.session.model.streamer().threads_for(choices) if writer.session.model else "auto",
            "mode": mode,
            "choices": choices,
            "chars": chars,
            "model": writer.session.model.name if writer.session.model else model,
        }


STARTUP_CHILD = r"""
import asyncio, sys, time
t0 = float(sys.argv[1])
from slmtui.tui.app import SlmApp
from slmtui.tui.screens.writer import WriterScreen
async def main():
    app = SlmApp(model=sys.argv[2], device=sys.argv[3])
    async with app.run_test(headless=True, size=(120, 35)) as pilot:
        while not isinstance(app.screen, WriterScreen):
            await asyncio.sleep(0.005)
        await pilot.pause(0)  # its messages handled; not pause(), which waits out the model's loading worker
        print("screen", time.time() - t0, flush=True)
        session = app.screen.session
        while session.model is None and not session.state.startswith(("error", "no model")):
            await asyncio.sleep(0.01)
        print("model", time.time() - t0, session.state.replace(" ", "_"), flush=True)
asyncio.run(main())
"""


def startup(model: str, device: str) -> tuple[float, float, str]:
    """Seconds from launching a fresh Python to a usable writer, and to the model being loaded."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", STARTUP_CHILD, repr(time.time()), model, device],
                         env=env, capture_output=True, text=True, check=True).stdout.split("\n")
    screen = float(out[0].split()[1])
    loaded = out[1].split()
    return screen, float(loaded[1]), " ".join(loaded[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a model name or folder (default: a tiny random model made for the run)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--samples", type=int, default=300, help="keys to time per run (default 300)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of streaming before timing")
    parser.add_argument("--choices", default="1,4", help="candidates written at once, a run each (default 1,4)")
    parser.add_argument("--engine-seconds", type=float, default=5.0, help="how long the engine alone is timed")
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up timing")
    parser.add_argument("--no-tree", action="store_true", help="skip the 300-passage tree")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        if args.model is None:  # a private SLMTUI_HOME holding the tiny model; a named model uses the user's
            os.environ["SLMTUI_HOME"] = home
            args.model = make_tiny_model()
        else:  # the user's model, found first, then a private home: the bench writes stories without end
            from slmtui.core.model_catalog import resolve_model

            args.model = str(resolve_model(args.model))
            os.environ["SLMTUI_HOME"] = home
        print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
              f"(1, 5, 15 min)")
        for n in [int(x) for x in args.choices.split(",")]:
            got = asyncio.run(measure(args.model, args.device, args.samples, args.warmup, n, args.engine_seconds))
            engine = engine_pace(args.model, args.device, n, args.engine_seconds, got["path"],  # type: ignore[arg-type]
                                 got["threads"])  # type: ignore[arg-type]
            reading, typing = got["reading_tok_s"], got["tok_s"]  # type: ignore[assignment]
            print(f"\nchoices N={n}, model {got['model']} on {args.device}, path {got['path']} on {got['threads']} thread(s), the app decoding "
                  f"{got['mode']}: engine alone "
                  f"{engine:.1f} tok/s; in the "
                  f"app {reading:.1f} tok/s while the user reads ({100 * reading / engine:.0f}% of the engine's pace), "
                  f"{typing:.1f} tok/s while a key arrives every 20 ms ({100 * typing / engine:.0f}%); the story grew "
                  f"to {got['chars']} characters")
            print(f"key latency under streaming   {percentiles(got['key'])}")  # type: ignore[arg-type]
            print(f"event-loop lateness (10 ms)   {percentiles(got['loop'])}")  # type: ignore[arg-type]
            print(f"Escape to stopped and saved   {got['stop'] * 1000:.1f} ms")  # type: ignore[operator]
            p99 = percentile(got["key"], 0.99)  # type: ignore[arg-type]
            print(f"goal: keys handled within {GOAL_MS:.0f} ms at p99: {'meets' if p99 < GOAL_MS else 'MISSES'} "
                  f"(p99 {p99:.1f} ms); load average now {os.getloadavg()[0]:.2f}")
        if not args.no_tree:
            tree = asyncio.run(measure_tree(args.model, args.device))
            print(f"\n300-passage story: opened and drawn in {tree['open'] * 1000:.0f} ms, "
                  f"one step up the tree (alt+up) {tree['step'] * 1000:.0f} ms (median of 10)")
        if not args.no_startup:
            screen, loaded, state = startup(args.model, args.device)
            print(f"start-up: usable screen after {screen:.2f} s, model {state} after {loaded:.2f} s "
                  f"(fresh process, imports included)")


if __name__ == "__main__":
    main()
