"""Fixtures every test folder may use (engine, CLI, TUI, trainer).

- ``_decoding_sees_one_core`` (autouse): the Generator's automatic thread count is 1 (see the fixture).
- ``slmtui_home`` (autouse): ``SLMTUI_HOME`` points at a fresh tmp folder for every test, so no test
  reads or writes the real user data, config or cache folders.
- ``_pilot_waits_for_idle_briefly`` (autouse): Textual's Pilot decides the app is idle in 4 ms windows, not 20 ms
  ones (see the fixture).
- ``byte_tokenizer``: a 257-token byte-level tokenizer (the 256 single bytes + ``<|endoftext|>``),
  built from a rank file with the real ``Tokenizer.from_rank_file``. Any text encodes: one token a byte.
- ``tiny_model``: a ``GPT(preset("tiny").model)`` (2 layers, 64 wide, 64 context, vocab 512), randomly
  initialised from a fixed seed, in eval mode. Its weights are the same in every test.
- ``store``: a ``StoryStore`` on ``paths.stories_db()`` (under the test's ``SLMTUI_HOME``), closed afterwards.
- ``tiny_model_dir``: that model and tokenizer saved with the real ``save_model_dir`` as the model named
  ``tiny`` in ``paths.models_dir()`` (``$SLMTUI_HOME/data/models/tiny``); returns the folder's path.
  ``resolve_model("tiny")`` and ``slmtui generate --model tiny`` find it.

Everything takes milliseconds: the weights are drawn once per session and only saved per test.
Torch runs on one thread here: the test models are far too small to gain from more, and on a busy
two-core machine a second OpenMP thread that has to wait for a core makes every op 10-100x slower.
"""

from __future__ import annotations

import asyncio
import time

from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

import pytest
import textual.app
import textual.pilot
import torch

from slmtui.core import paths
from slmtui.core.tokenizer_spec import ENDOFTEXT, GPT2_PATTERN, TokenizerSpec
from slmtui.engine import threads
from slmtui.engine.model import GPT
from slmtui.engine.model_io import save_model_dir
from slmtui.engine.tokenizer import Tokenizer
from slmtui.stories.store import StoryStore
from trainer.config import preset

torch.set_num_threads(1)

TINY_MODEL_NAME = "tiny"
TINY_SEED = 1234
BYTE_TOKENIZER_SPEC = TokenizerSpec(
    name="bytes-test", pattern=GPT2_PATTERN, special_tokens={ENDOFTEXT: 256}, n_vocab=257
)


@pytest.fixture(autouse=True)
def _decoding_sees_one_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Generator's automatic thread count (engine.threads) sees one core, as torch here uses one: which
    thread count a calibration on a busy machine picks must not decide the floats a test compares.
    tests/engine/test_threads.py lifts this to test the choice itself."""
    monkeypatch.setattr(threads, "usable_cores", lambda: 1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules that hold a test marked slow run first, whole and in their own order (so a module's costly
    fixture is still set up once): a minute-long test starts early instead of being the last thing a worker
    does while the others wait; pytest-xdist's worksteal then hands the rest to whichever worker is free."""
    slow_modules = {item.module for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.module not in slow_modules)


IDLE_WINDOW_S = 0.004
"""How long one look of ``_wait_for_idle`` lasts (Textual's own: 20 ms)."""


async def _wait_for_idle(min_sleep: float = IDLE_WINDOW_S, max_sleep: float = 1) -> None:
    """Textual's ``_wait.wait_for_idle`` with a finer window: the process is idle once a window passes with
    under 5% of it spent on the CPU (the same share as Textual's), or after ``max_sleep``."""
    start = time.monotonic()
    while True:
        cpu = time.process_time()
        await asyncio.sleep(IDLE_WINDOW_S)
        elapsed = time.monotonic() - start
        if elapsed >= max_sleep or (elapsed > min_sleep and time.process_time() - cpu < IDLE_WINDOW_S / 20):
            return


@pytest.fixture(autouse=True)
def _pilot_waits_for_idle_briefly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``pilot.press`` waits for the app to go idle twice a key, in whole 20 ms windows: two thirds of
    the writer's tests' time went to those waits (65 of 99 s). A 4 ms window judges idleness by the same share
    of CPU. It stays a guess, as Textual's is: a test that needs a thread worker's result should wait for it
    with ``wait_for`` (tui_helpers), not trust ``pilot.pause()`` to outlast the worker."""
    monkeypatch.setattr(textual.app, "wait_for_idle", _wait_for_idle)
    monkeypatch.setattr(textual.pilot, "wait_for_idle", _wait_for_idle)


@pytest.fixture(autouse=True)
def slmtui_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SLMTUI_HOME per test: data/, config/ and cache/ all live under it."""
    home = tmp_path_factory.mktemp("slmtui-home")
    monkeypatch.setenv("SLMTUI_HOME", str(home))
    return home


def write_byte_ranks(path: Path) -> Path:
    """A .tiktoken rank file holding the 256 single bytes as ranks 0..255 (no merges)."""
    path.write_bytes(b"".join(b64encode(bytes([i])) + b" %d\n" % i for i in range(256)))
    return path


@pytest.fixture(scope="session")
def _byte_ranks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_byte_ranks(tmp_path_factory.mktemp("tokenizer") / "bytes.tiktoken")


@pytest.fixture(scope="session")
def byte_tokenizer(_byte_ranks_file: Path) -> Tokenizer:
    """Byte-level tokenizer: token i is byte i for i < 256, ``<|endoftext|>`` is 256 (n_vocab 257)."""
    return Tokenizer.from_rank_file(_byte_ranks_file, BYTE_TOKENIZER_SPEC)


@pytest.fixture(scope="session")
def _tiny_state() -> dict[str, torch.Tensor]:
    with torch.random.fork_rng():  # a fixed draw without disturbing anyone's global RNG
        torch.manual_seed(TINY_SEED)
        model = GPT(preset("tiny").model)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture
def tiny_model(_tiny_state: dict[str, torch.Tensor]) -> GPT:
    """A fresh tiny GPT (same weights every time), in eval mode; tests may change it freely."""
    model = GPT(preset("tiny").model)
    model.load_state_dict(_tiny_state)
    return model.eval()


@pytest.fixture
def tiny_model_dir(tiny_model: GPT, byte_tokenizer: Tokenizer) -> Path:
    """The tiny model saved as ``$SLMTUI_HOME/data/models/tiny``; returns that folder."""
    return save_model_dir(
        paths.models_dir() / TINY_MODEL_NAME,
        tiny_model,
        byte_tokenizer,
        training={"val_loss": 6.25, "val_bpb": 9.0, "created": "2026-01-01T00:00:00Z", "val_fraction": 0.1},
    )


@pytest.fixture
def store() -> Iterator[StoryStore]:
    """The stories database the app would open, in this test's SLMTUI_HOME."""
    s = StoryStore(paths.stories_db())
    yield s
    s.close()
