"""``train_state.pt``: the typed state a stopped run resumes from, checked by key and type before any of it is used.

torch.load(weights_only=True) already refuses anything but tensors and plain containers; this turns a valid
torch file of the wrong shape (a hand-made one, another program's, an older layout) into one line naming
the file and the key, instead of a KeyError deep in the loop.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from slmtui.core.errors import SlmError, gist
from slmtui.core.model_folder import TRAIN_STATE

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
    "preset": ((str, type(None)), "a string or None"),  # None: a fine-tune of a parent that recorded none
    "heldout_books": ((list,), "a list of book names"),
    "best_heldout_loss": ((*_NUMBER, type(None)), "a number or None"),
    "best_heldout_bpb": ((*_NUMBER, type(None)), "a number or None"),
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


@dataclass
class ResumeState:
    """What ``train_state.pt`` holds: everything a stopped run needs to go on exactly where it was.

    Saved with ``torch.save`` as a plain dict of tensors and numbers, loaded with ``weights_only=True``: loading it
    runs no code. ``load`` checks every key and type (``check_train_state``), so a file from an older trainer or
    another program is refused in words.
    """

    model: dict[str, torch.Tensor]
    """The newest weights (model.safetensors holds the best ones)."""
    optimizer: dict
    step: int
    tokens_seen: int
    elapsed_s: float
    best_val_loss: float | None
    best_val_bpb: float | None
    bad_evals: int
    max_steps: int
    rng_cpu: torch.Tensor
    rng_cuda: torch.Tensor | None
    train_config: dict
    """``asdict(TrainConfig)`` of the run."""
    corpus: str
    """The corpus as ``corpus_label`` names it."""
    corpus_fingerprint: str
    tokenizer_arg: str
    preset: str | None
    """None in a state saved before presets were recorded."""
    heldout_books: list[str] = field(default_factory=list)
    """The whole books the run holds out (--val-books); empty in a state saved before they existed."""
    best_heldout_loss: float | None = None
    best_heldout_bpb: float | None = None

    def save(self) -> bytes:
        """The file's bytes (the caller writes them with the model folder, atomically)."""
        buffer = io.BytesIO()
        torch.save({f.name: getattr(self, f.name) for f in fields(self)}, buffer)  # not asdict: it deep-copies
        return buffer.getvalue()

    @classmethod
    def load(cls, out: Path) -> ResumeState:
        path = out / TRAIN_STATE
        if not path.is_file():
            raise SlmError(f"nothing to resume: {path} does not exist (start the run without --resume)")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # unpickling refuses anything but tensors and plain containers
            why = "not a file of plain tensors and values" if "Weights only load failed" in str(e) else gist(e)
            raise SlmError(f"{path} is damaged or not a slmtui training state ({why})") from e
        data = {"best_val_bpb": None, "preset": None, "rng_cuda": None, "heldout_books": [], "best_heldout_loss": None,
                "best_heldout_bpb": None, **check_train_state(data, path)}
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
