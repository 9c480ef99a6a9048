"""The decoding calibrations kept on disk: measured once per machine, torch and model shape, not per start.

Choosing a decoding path times a few steps of every candidate (0.45-0.8 s for the default model on a
loaded 2-core machine, more for a 50k head), and choosing a thread count times steps on each count; a
process that started for one token paid that every time. The winner depends on the CPU (model and
instruction-set flags), the torch build, the number of cores this process may use and the model's
*shape* (its GPTConfig, the dtype and device): not on the weights' values, so a model retrained at the same
shape reuses its calibration, and anything else that changes the key measures afresh.

One JSON file in the cache folder (``paths.cache_dir()``), written atomically (temp file, fsync,
rename): a crash leaves the old file or the new one. A file that cannot be read or parsed, or an entry
of the wrong form, counts as absent; the next calibration rewrites the file whole. Entries older than
``MAX_AGE_S`` are measured again, so a machine whose load changed for good is not held to an old
choice for ever; deleting the file only costs one calibration.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import platform
import time
from pathlib import Path
from typing import Any

import torch

from slmtui.core import paths
from slmtui.core.atomic import write_bytes_atomic
from slmtui.core.errors import SlmError

FILE_NAME = "decode-calibration.json"
FORMAT = 1
"""Bumped when an entry's meaning changes: a file of another format is ignored and rewritten."""
MAX_AGE_S = 30 * 24 * 3600.0
MAX_ENTRIES = 256
"""The oldest entries go first beyond this: a file that grows with every model shape ever tried stays small."""


def cpu_identity() -> str:
    """The CPU's model name and instruction-set flags (first processor of /proc/cpuinfo on Linux), else
    what ``platform`` says: the facts a kernel's speed depends on, not its clock of the moment."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            fields: dict[str, str] = {}
            for line in f:
                if not line.strip():
                    if fields:
                        break
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
        flags = fields.get("flags") or fields.get("features") or ""
        name = fields.get("model name") or fields.get("cpu model") or fields.get("hardware") or ""
        if name or flags:
            return f"{name}|{' '.join(sorted(flags.split()))}"
    except OSError:
        pass
    return f"{platform.machine()}|{platform.processor()}"


@functools.cache
def machine_key() -> str:
    """The CPU and the torch build, as one short hash (the caller adds the cores and threads it timed on)."""
    parts = [cpu_identity(), torch.__version__, str(torch.backends.mkldnn.is_available())]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def model_key(model: torch.nn.Module) -> str:
    """The model's shape (its class and GPTConfig), dtype and device, as one short hash."""
    p = next(model.parameters())
    config = getattr(model, "config", None)
    described = config.to_dict() if hasattr(config, "to_dict") else repr(config)
    text = json.dumps([type(model).__qualname__, described, str(p.dtype), p.device.type], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class CalibrationStore:
    """Calibration results by key, in one JSON file; every failure to read is an absent entry, never an error."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def default(cls) -> CalibrationStore | None:
        """The store in the cache folder; None (nothing kept) where that folder cannot be named."""
        try:
            return cls(paths.cache_dir() / FILE_NAME)
        except SlmError:
            return None

    def _entries(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError):  # absent, unreadable, damaged, not UTF-8
            return {}
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("entries"), dict):
            return {}
        return data["entries"]

    def get(self, key: str) -> tuple[dict[str, Any], float] | None:
        """The value kept under ``key`` and when it was measured, if it is there, a dict, and younger than
        MAX_AGE_S."""
        entry = self._entries().get(key)
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), dict):
            return None
        measured = entry.get("measured")
        if not isinstance(measured, (int, float)) or not 0 <= time.time() - measured <= MAX_AGE_S:
            return None
        return entry["value"], float(measured)

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Keep ``value`` under ``key`` (the file read again and rewritten whole); a folder that cannot be
        written leaves the calibration to this process alone."""
        entries = self._entries()
        entries[key] = {"measured": time.time(), "value": value}
        if len(entries) > MAX_ENTRIES:
            ranked = sorted(entries, key=lambda k: _measured(entries[k]), reverse=True)
            entries = {k: entries[k] for k in ranked[:MAX_ENTRIES]}
        data = json.dumps({"format": FORMAT, "entries": entries}, indent=1, sort_keys=True, allow_nan=False)
        try:
            write_bytes_atomic(self.path, data.encode())
        except OSError:
            pass


def _measured(entry: object) -> float:
    value = entry.get("measured") if isinstance(entry, dict) else None
    return float(value) if isinstance(value, (int, float)) else 0.0


def when(measured: float) -> str:
    """A measurement's time in words, for a choice's reason."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(measured))


def usable(value: float) -> bool:
    """A timing fit for JSON (no NaN or infinity)."""
    return math.isfinite(value)

