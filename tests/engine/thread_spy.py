"""The intra-op thread count each forward pass of a model ran on, for the tests of the decoding threads."""

from __future__ import annotations

import pytest
import torch

from slmtui.engine.model import GPT


def record_threads(monkeypatch: pytest.MonkeyPatch, model: GPT) -> list[int]:
    """A list that gets ``torch.get_num_threads()`` at each of ``model``'s forward passes from now on."""
    seen: list[int] = []
    real_forward = model.forward

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(torch.get_num_threads())
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", spy)
    return seen
