"""What ``train_state.pt`` must hold for ``--resume``: checked by key and type before any of it is used.

torch.load(weights_only=True) already refuses anything but tensors and plain containers; this turns a valid
torch file of the wrong shape (a hand-made one, another program's, an older layout) into one line naming
the file and the key, instead of a KeyError deep in the loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from slmtui.engine.errors import SlmError

_NUMBER = (int, float)
# key -> (the types allowed, what to call them in the message). bool is excluded from numbers below.
REQUIRED: dict[str, tuple[tuple[type, ...], str]] = {
    "model": ((dict,), "a table of tensors"),
    "optimizer": ((dict,), "an optimizer state"),
    "step": ((int,), "an integer"),
    "tokens_seen": ((int,), "an integer"),
    "elapsed_s": (_NUMBER, "a number"),
    "best_val_loss": ((*_NUMBER, type(None)), "a number or None"),
    "bad_evals": ((int,), "an integer"),
    "max_steps": ((int,), "an integer"),
    "rng_cpu": ((torch.Tensor,), "a tensor"),
    "train_config": ((dict,), "a table"),
    "corpus": ((str,), "a path"),
    "corpus_fingerprint": ((str,), "a string"),
    "tokenizer_arg": ((str,), "a string"),
}
OPTIONAL: dict[str, tuple[tuple[type, ...], str]] = {
    "best_val_bpb": ((*_NUMBER, type(None)), "a number or None"),
    "rng_cuda": ((torch.Tensor, type(None)), "a tensor or None"),
    "preset": ((str,), "a string"),
}


def check_train_state(state: Any, path: Path) -> dict[str, Any]:
    """``state`` if it has every key ``--resume`` reads, each of the right type; else SlmError naming one."""
    if not isinstance(state, dict):
        raise SlmError(f"{path} is not a slmtui training state (it holds a {type(state).__name__}, not a table)")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise SlmError(f"{path} is not a slmtui training state: {', '.join(missing)} missing")
    for key, (kinds, wanted) in {**REQUIRED, **OPTIONAL}.items():
        if key not in state:
            continue
        value = state[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise SlmError(f"{path}: {key} should be {wanted}, got {type(value).__name__}")
        if isinstance(value, int) and not isinstance(value, bool) and key in ("step", "tokens_seen", "bad_evals",
                                                                              "max_steps") and value < 0:
            raise SlmError(f"{path}: {key} should not be negative, got {value}")
    bad = [k for k, v in state["model"].items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise SlmError(f"{path}: model should map names to tensors ({bad[0]!r} does not)")
    return state
