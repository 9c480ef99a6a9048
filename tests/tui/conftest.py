"""TUI fixtures: the tiny model as the writer's engine (paced on demand), a stories database, an app maker."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
from tui_helpers import PacedGenerator, default_settings

from slmtui.engine.model import GPT
from slmtui.engine.tokenizer import Tokenizer
from slmtui.stories.store import StoryStore
from slmtui.tui.app import SlmApp
from slmtui.writing.records import ActiveModel


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The tiny model gains nothing from two threads, and on a busy machine they spin against each other."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def engine(tiny_model: GPT, byte_tokenizer: Tokenizer) -> ActiveModel:
    return ActiveModel(PacedGenerator(tiny_model, byte_tokenizer), "tiny")


@pytest.fixture
def make_app(engine: ActiveModel, store: StoryStore) -> Callable[..., SlmApp]:
    """An SlmApp on the tiny model and the test's database, with first-run settings."""

    def make(**kwargs: object) -> SlmApp:
        kwargs.setdefault("engine", engine)
        kwargs.setdefault("store", store)
        kwargs.setdefault("settings", default_settings())
        return SlmApp(**kwargs)  # type: ignore[arg-type]

    return make
