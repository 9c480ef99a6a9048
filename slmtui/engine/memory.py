"""Will a model fit? Memory a shape needs, against memory this machine has free, checked before allocating.

A model.toml with a huge ``vocab_size`` or ``block_size`` (or ``slm-train --block-size 10**9``) would otherwise fail
inside torch's allocator with a RuntimeError, or be killed by the OS; this names the sizes instead.
psutil is not a dependency: /proc/meminfo on Linux, sysconf elsewhere, and no check where neither answers.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from slmtui.core.errors import SlmError
from slmtui.core.gpt_config import GPTConfig

GiB = 2**30


def available_bytes(device: torch.device | str = "cpu") -> int | None:
    """Memory free for a new allocation on ``device``; None when it cannot be told (no check then)."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    if device.type != "cpu":
        return None  # MPS shares memory with the system; no reliable figure
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
        # MemAvailable counts reclaimable cache; swap still takes an allocation, slowly.
        kib = int(fields["MemAvailable"].split()[0]) + int(fields.get("SwapFree", "0 kB").split()[0])
        return kib * 1024
    except (OSError, KeyError, ValueError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def inference_bytes(config: GPTConfig, *, weight_bytes: int = 4) -> int:
    """Loading and decoding one stream: float32 parameters, the weights read from the file beside them while
    they are copied in, the KV cache for a full context, and a bf16 copy of the LM head (engine.generate)."""
    n = config.param_count
    kv = 2 * config.n_layer * config.block_size * config.n_embd * 4
    return n * 4 + n * weight_bytes + kv + config.vocab_size * config.n_embd * 2


def training_bytes(config: GPTConfig, *, batch_size: int) -> int:
    """A training step, roughly: parameters, gradients and AdamW's two moments in float32, plus activations
    (~20 floats per layer, position and channel) and the logits with their gradient."""
    tokens = batch_size * config.block_size
    activations = 20 * config.n_layer * tokens * config.n_embd * 4
    return 16 * config.param_count + activations + 2 * tokens * config.vocab_size * 4


def check_fits(what: str, need: int, device: torch.device | str = "cpu", *, available: int | None = None) -> None:
    """SlmError (exit 2) naming ``what`` when ``need`` bytes exceed the memory free on ``device``."""
    free = available if available is not None else available_bytes(device)
    if free is not None and need > free:
        raise SlmError(f"{what} needs about {_gib(need)} of memory, and {torch.device(device).type} has "
                       f"{_gib(free)} free: use smaller sizes")


def _gib(n: int) -> str:
    return f"{n / GiB:,.1f} GiB" if n >= GiB / 10 else f"{n / 2**20:,.0f} MiB"
