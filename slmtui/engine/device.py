"""Choosing the torch device: one place decides, everything else is handed the result."""

from __future__ import annotations

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


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX): there bf16 is faster, elsewhere slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
