"""What the app needs to know about training, without torch: the settings, the presets, the defaults, and the
rules for durations, run names and corpus files.

The trainer (cli.py, loop.py, corpus.py) and the app's training screen both import these, so a default changes in
one place. This module imports nothing that needs torch (only ``slmtui.engine.errors`` and ``paths``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path

from slmtui.engine.errors import SlmError
from slmtui.engine.paths import BUNDLED_CORPUS_DIR, is_model_name

@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings, with nanoGPT-style flat defaults."""

    batch_size: int = 32
    """Sequences per step on each process."""
    lr: float = 6e-4
    """Peak learning rate, reached after warmup."""
    min_lr_ratio: float = 0.1
    """Cosine decay ends at lr * min_lr_ratio."""
    warmup_steps: int = 1000
    max_steps: int | None = None
    """The schedule's horizon. None: derived from --epochs or --time-limit."""
    epochs: float | None = None
    time_limit_s: float | None = None
    """Wall-clock budget of this invocation; the run saves and can be resumed afterwards."""
    weight_decay: float = 0.1
    """Applied to matrices only, never to biases, norms or embeddings' positions (the original used 0.98)."""
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_interval: int = 100
    eval_windows: int = 512
    """Validation windows per evaluation; a validation set this small or smaller is scored in full."""
    patience: int = 5
    """Stop after this many evaluations without a better validation loss."""
    seed: int = 1337
    dtype: str = "auto"
    """auto: bf16 autocast where the hardware has fast bf16 (CPU with AVX512-BF16/AMX, recent GPUs), else fp32."""
    compile: bool = False
    val_fraction: float = 0.05
    sample_prompt: str = "The"
    sample_tokens: int = 48

    def __post_init__(self) -> None:
        checks = {
            "batch_size": self.batch_size >= 1,
            "lr": 0 < self.lr < 1,
            "warmup_steps": self.warmup_steps >= 0,
            "max_steps": self.max_steps is None or self.max_steps >= 1,
            "epochs": self.epochs is None or self.epochs > 0,
            "time_limit_s": self.time_limit_s is None or self.time_limit_s > 0,
            "weight_decay": 0 <= self.weight_decay < 1,
            "grad_clip": self.grad_clip >= 0,
            "eval_interval": self.eval_interval >= 1,
            "patience": self.patience >= 1,
            "dtype": self.dtype in ("auto", "fp32", "bf16", "fp16"),
            "val_fraction": 0 < self.val_fraction < 0.5,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise SlmError(f"impossible training option(s): {', '.join(f'{k}={getattr(self, k, None)!r}' for k in bad)}")

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})  # type: ignore[arg-type]


# Training settings per preset (architectures in slmtui.engine.model.PRESETS).
TRAIN_PRESETS: dict[str, TrainConfig] = {
    # The original's: batch 32, lr 6e-4, warmup 1000, clip 1.0, eval every 100, now with a real schedule.
    "seed": TrainConfig(batch_size=32, lr=6e-4, warmup_steps=1000, grad_clip=1.0, eval_interval=100),
    "tiny": TrainConfig(batch_size=8, lr=3e-3, warmup_steps=10, eval_interval=25, eval_windows=32, patience=100),
    "default": TrainConfig(batch_size=32, lr=2e-3, warmup_steps=200, eval_interval=200, weight_decay=0.1),
}
DEFAULT_TOKENIZER: dict[str, str] = {"seed": "gpt2", "tiny": "bpe:512", "default": "bpe:8192"}
"""The tokenizer a preset trains when no --tokenizer is given."""
PRESET_NAMES = ("tiny", "seed", "default")
"""The presets, smallest first (slmtui.engine.PRESETS holds their architectures)."""
DEFAULT_EPOCHS = 10.0
"""The budget of a run given none: ten passes, ended earlier by early stopping."""

TEXT_SUFFIXES = frozenset({".txt", ".md"})
"""The files of a corpus folder that are read as text."""


def is_corpus_file(rel: Path) -> bool:
    """Whether a file at ``rel`` (relative to the corpus folder) is part of the corpus, by its name alone.

    SOURCES.md and LICENSE* describe a corpus (attribution tables, legal text) rather than being part of it; a
    model trained on them learns Markdown tables and licence boilerplate. Hidden files and folders (.git, .venv,
    editor swap files) are never corpus either."""
    if rel.suffix.lower() not in TEXT_SUFFIXES or any(part.startswith(".") for part in rel.parts):
        return False
    name = rel.name.lower()
    return not (name == "sources.md" or name.startswith("license"))


_DURATION = re.compile(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*")


def parse_duration(text: str) -> float | None:
    """Seconds from '90', '90s', '15m', '2h' or '1h30m' (as --time-limit reads them); None if it is not one."""
    match = _DURATION.fullmatch(text)
    if not text.strip() or not match or not any(match.groups()):
        return None
    h, m, s = (float(g) if g else 0.0 for g in match.groups())
    return h * 3600 + m * 60 + s


def default_run_name(corpus: Path | None, preset: str) -> str:
    """The model name a run gets when none is given: the corpus's name, or PRESET-bundled for the bundled one."""
    if corpus is None or Path(corpus) == BUNDLED_CORPUS_DIR:
        return f"{preset}-bundled"
    return Path(corpus).expanduser().stem


def unique_run_name(corpus: Path | None, preset: str, taken: set[str]) -> str:
    """``default_run_name`` made a valid model name and unique among ``taken`` (what the training form offers)."""
    base = re.sub(r"[^\w.-]+", "-", default_run_name(corpus, preset)).strip(".-") or "model"
    if not is_model_name(base):
        base = "model"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name
