"""Choosing the torch device: one place decides, everything else is handed the result."""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path

import torch

from slmtui.core.devices import DEVICE_CHOICES
from slmtui.core.errors import SlmError


def pick_device(name: str = "auto") -> torch.device:
    """auto picks CUDA, then Apple's MPS, then the CPU; naming one that is absent is an error."""
    if name not in DEVICE_CHOICES:
        raise SlmError(f"unknown device {name!r}; choose one of: {', '.join(DEVICE_CHOICES)}")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cuda" and not cuda:
        raise SlmError("--device cuda: no CUDA GPU is available to PyTorch here")
    if name == "mps" and not mps:
        raise SlmError("--device mps: Apple's MPS backend is not available here")
    return torch.device(name)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX). Native is not always faster for a matrix
    product: ``cpu_bf16_matmul_is_faster`` measures that."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


BF16_PROBE_SHAPE = (1024, 256, 1024)
"""The product the probe times (m, k, n): a 256-wide block's MLP on 1024 tokens, the default preset's shape."""

BF16_MARGIN = 0.9
"""bf16 must take at most this share of fp32's time to be chosen: a run resumed in another process re-times it,
and where the two are near-equal a clear margin keeps the choice (and so the resumed run's arithmetic) from
flipping; where bf16 pays, it pays by far more (the trainer ran 2.28x a plain fp32 loop on an AMD EPYC)."""


@functools.cache
def cpu_bf16_matmul_is_faster() -> bool:
    """Whether bf16 matrix products beat fp32 ones on this CPU, timed once a process (~30 ms).

    The flags do not say it: an Intel Xeon with AVX512-BF16 and no AMX multiplied bf16 at 85 GFLOP/s and fp32 at
    150 (2 threads, ``BF16_PROBE_SHAPE``), so training there in bf16 ran at half the speed of fp32, while on an
    AMD EPYC with AVX512-BF16 bf16 was the faster (docs/training-runs.md). A CPU without the instructions is
    not timed: emulated bf16 is many times slower."""
    if not cpu_has_native_bf16():
        return False
    m, k, n = BF16_PROBE_SHAPE
    best = {torch.float32: math.inf, torch.bfloat16: math.inf}
    operands = {dt: (torch.randn(m, k, dtype=dt), torch.randn(k, n, dtype=dt)) for dt in best}
    for _ in range(4):  # interleaved, so that a burst of load elsewhere hits both alike; the first round warms up
        for dt, (a, b) in operands.items():
            start = time.perf_counter()
            torch.mm(a, b)
            best[dt] = min(best[dt], time.perf_counter() - start)
    return best[torch.bfloat16] <= BF16_MARGIN * best[torch.float32]
