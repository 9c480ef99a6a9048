"""bf16 is chosen for training on a CPU only where it measures faster, not where the flags say it exists."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import torch

from slmtui.engine import device
from trainer import loop


@pytest.fixture(autouse=True)
def fresh_probe() -> Iterator[None]:
    device.cpu_bf16_matmul_is_faster.cache_clear()
    yield
    device.cpu_bf16_matmul_is_faster.cache_clear()


def product_taking(extra: dict[torch.dtype, float]):
    """A torch.mm that sleeps ``extra[dtype]`` seconds before a product of operands of that dtype."""
    real = torch.mm

    def mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        time.sleep(extra.get(a.dtype, 0.0))
        return real(a, b)
    return mm


def test_bf16_barely_faster_is_not_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Near-equal timings would flip the choice between a run and its resume: bf16 needs a clear margin."""
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(torch, "mm", product_taking({torch.bfloat16: 0.0097, torch.float32: 0.010}))
    assert device.cpu_bf16_matmul_is_faster() is False


def test_a_cpu_without_the_instructions_is_not_timed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(torch, "mm", lambda a, b: pytest.fail("timed a product"))
    assert device.cpu_bf16_matmul_is_faster() is False


@pytest.mark.parametrize(("slow", "faster"), [(torch.bfloat16, False), (torch.float32, True)])
def test_the_instructions_alone_do_not_choose_bf16_the_timing_does(monkeypatch: pytest.MonkeyPatch,
                                                                   slow: torch.dtype, faster: bool) -> None:
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(torch, "mm", product_taking({slow: 0.005}))
    assert device.cpu_bf16_matmul_is_faster() is faster


@pytest.mark.parametrize(("faster", "dtype"), [(False, torch.float32), (True, torch.bfloat16)])
def test_training_on_the_cpu_autocasts_to_bf16_only_where_it_is_faster(monkeypatch: pytest.MonkeyPatch,
                                                                       faster: bool, dtype: torch.dtype) -> None:
    monkeypatch.setattr(loop, "cpu_bf16_matmul_is_faster", lambda: faster)
    assert loop.pick_dtype("auto", torch.device("cpu")) == dtype
    assert loop.pick_dtype("fp32", torch.device("cpu")) == torch.float32
