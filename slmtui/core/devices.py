"""The devices a person may name (``--device``, the app's setting); ``slmtui.engine.device.pick_device`` turns a
name into a torch device, which needs torch, so the names live here for the parsers that must not load it."""

from __future__ import annotations

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
"""auto picks CUDA, then Apple's MPS, then the CPU."""
