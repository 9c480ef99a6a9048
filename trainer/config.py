"""What the app needs to know about training, without torch: the settings, the presets, the defaults, and the
rules for durations, run names and corpus files.

The trainer (cli.py, loop.py, corpus.py) and the app's training screen both import these, so a default changes in
one place. This module imports nothing that needs torch (only ``slmtui.core``; a test checks it in a fresh
interpreter).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from pathlib import Path

from slmtui.core.errors import SlmError
from slmtui.core.gpt_config import GPTConfig
from slmtui.core.paths import BUNDLED_CORPUS_DIR, is_model_name
from slmtui.core.tokenizer_spec import GPT2_N_VOCAB

OPTIMIZERS = ("adamw", "muon")
"""What --optimizer takes (trainer/optim.py builds them)."""

SCHEDULES = ("cosine", "wsd")
"""What --schedule takes: the learning rate after warmup (trainer/loop.py's lr_at)."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings, with nanoGPT-style flat defaults."""

    batch_size: int = 32
    """Sequences per step on each process."""
    lr: float = 6e-4
    """Peak learning rate, reached after warmup."""
    min_lr_ratio: float = 0.1
    """The schedule ends at lr * min_lr_ratio."""
    schedule: str = "cosine"
    """cosine: decay from the peak over the whole run. wsd (warmup-stable-decay): the peak rate held, then a linear
    decay over the last ``decay_fraction`` of the steps. A wsd run's rate before its decay does not depend on its
    length, so a run still at its peak can be resumed with a longer (or shorter) --max-steps exactly."""
    decay_fraction: float = 0.2
    """wsd: the share of the steps spent decaying to the floor."""
    warmup_steps: int = 1000
    max_steps: int | None = None
    """The schedule's horizon. None: derived from --epochs or --time-limit."""
    epochs: float | None = None
    time_limit_s: float | None = None
    """Wall-clock budget of this invocation; the run saves and can be resumed afterwards."""
    max_passes: float | None = None
    """A time-budgeted run's schedule never plans past this many passes over the training text: the learning rate
    has decayed by then and the run ends early (a fine-tune on one book memorises it past a few passes)."""
    weight_decay: float = 0.1
    """Applied to matrices only, never to biases, norms or embeddings' positions (the original used 0.98)."""
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_interval: int = 100
    evals_per_pass: float | None = None
    """Evaluate at least this often per pass over the training text: the interval shrinks for a small corpus, which a
    run passes through many times (one book, 10 minutes from scratch: 50 passes), so early stopping sees it turn to
    memorising. None: ``eval_interval`` as it is (an explicit ``--eval-interval`` sets this)."""
    eval_windows: int = 512
    """Validation windows per evaluation; a validation set this small or smaller is scored in full."""
    patience: int = 5
    """Stop after this many evaluations without a better validation loss."""
    seed: int = 1337
    dtype: str = "auto"
    """auto: bf16 autocast where the hardware has fast bf16 (CPU with AVX512-BF16/AMX, recent GPUs), else fp32."""
    compile: bool = False
    optimizer: str = "adamw"
    """adamw, or muon: Muon on the hidden matrices and AdamW on embeddings, head, gains and biases (trainer/optim.py)."""
    fused: bool = True
    """AdamW's fused single-kernel step (CPU and CUDA); off: torch's multi-tensor (foreach) step. On the
    2-core AVX512-BF16 machine, default preset, bf16: 6.3 s/step fused against 10.1 s foreach (loaded machine)."""
    val_fraction: float = 0.05
    val_books: str = ""
    """Whole books held out besides each book's tail (--val-books): a count or comma-separated names; "" none."""
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
            "max_passes": self.max_passes is None or self.max_passes > 0,
            "weight_decay": 0 <= self.weight_decay < 1,
            "grad_clip": self.grad_clip >= 0,
            "eval_interval": self.eval_interval >= 1,
            "evals_per_pass": self.evals_per_pass is None or self.evals_per_pass > 0,
            "patience": self.patience >= 1,
            "dtype": self.dtype in ("auto", "fp32", "bf16", "fp16"),
            "val_fraction": 0 < self.val_fraction < 0.5,
            "optimizer": self.optimizer in OPTIMIZERS,
            "schedule": self.schedule in SCHEDULES,
            "decay_fraction": 0 < self.decay_fraction <= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise SlmError(f"impossible training option(s): {', '.join(f'{k}={getattr(self, k, None)!r}' for k in bad)}")

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})  # type: ignore[arg-type]


@dataclass(frozen=True)
class Preset:
    """One named recipe: the architecture, the tokenizer a run trains when given no --tokenizer, and the settings."""

    model: GPTConfig
    tokenizer: str
    """``gpt2`` or ``bpe:N`` (``slmtui.core.tokenizer_spec``); the model's vocab_size follows the tokenizer."""
    train: TrainConfig


PRESETS: dict[str, Preset] = {
    # The original model, exactly: GPT-2 tokenizer, 128 context, 4x256, 4 heads, qkv bias; the original's settings
    # (TrainConfig's batch, lr 6e-4, warmup 1000, clip 1.0, eval every 100), now with a real schedule.
    "seed": Preset(
        model=GPTConfig(vocab_size=GPT2_N_VOCAB, block_size=128, n_layer=4, n_head=4, n_embd=256, dropout=0.1),
        tokenizer="gpt2",
        train=TrainConfig(lr=6e-4, warmup_steps=1000, grad_clip=1.0, eval_interval=100),
    ),
    # For tests: trains in seconds on a CPU.
    "tiny": Preset(
        model=GPTConfig(vocab_size=512, block_size=64, n_layer=2, n_head=2, n_embd=64, dropout=0.0),
        tokenizer="bpe:512",
        train=TrainConfig(batch_size=8, lr=3e-3, warmup_steps=10, eval_interval=25, eval_windows=32, patience=100),
    ),
    # The bundled default model's shape and recipe (each part chosen by a pilot at equal compute,
    # docs/training-runs.md): rotary positions, ReLU² MLP, untied head, its 8k BPE tokenizer; Muon on the hidden
    # matrices, 0.24 bits/byte better than AdamW at equal compute.
    "default": Preset(
        model=GPTConfig(vocab_size=8192, block_size=256, n_layer=6, n_head=4, n_embd=256, dropout=0.0,
                        tie_embeddings=False, pos_emb="rope", mlp="relu2"),
        tokenizer="bpe:8192",
        train=TrainConfig(lr=2e-3, warmup_steps=200, eval_interval=200, evals_per_pass=1, weight_decay=0.1,
                          optimizer="muon"),
    ),
}
"""Every preset, in the order slm-train names them."""
DEFAULT_PRESET = "seed"
"""What slm-train trains when given no --preset: the original model. (The app's training form suggests a preset for
the corpus's size instead: ``scratch_preset``.)"""


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise SlmError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


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


FINETUNE_MAX_PASSES = 8.0
"""A fine-tune given a time budget plans at most this many passes (its cosine ends there, and so does the run): at
the fine-tune's rate and dropout one book is still improving slowly after eight (docs/training-runs.md), and a
schedule planned over the dozens of passes ten quiet minutes can buy would stay at its peak rate until early
stopping cut it."""
FINETUNE_EPOCHS = FINETUNE_MAX_PASSES
"""A fine-tune given no budget: the same passes, ended earlier by early stopping."""
FINETUNE_DROPOUT = 0.1
"""Dropout while fine-tuning (the bundled model trained without: 4.8M tokens of books, each seen four times, did not
need it). One book seen eight times does: it lets the run go on learning where it would memorise
(docs/training-runs.md)."""
FALLBACK_TOKENS_PER_S = 1000.0
"""Training speed assumed for a parent whose own run says nothing usable (a CPU's order of magnitude)."""


def measured_tokens_per_s(training: dict[str, object], device: str) -> float | None:
    """Tokens a second of the run that made a model, from its model.toml's [training], if it ran on ``device``."""
    seen, wall = training.get("tokens_seen"), training.get("wall_time_s")
    if str(training.get("device", "")).split(":")[0] != device.split(":")[0]:
        return None
    if isinstance(seen, (int, float)) and isinstance(wall, (int, float)) and seen > 0 and wall > 0:
        return float(seen) / float(wall)
    return None


def parent_optimizer(training: dict[str, object]) -> str:
    """The optimizer that trained a model, from its model.toml's [training]: a fine-tune continues with it (AdamW
    when the record is silent, as it is for models from before Muon)."""
    settings = training.get("train_config")
    kind = settings.get("optimizer") if isinstance(settings, dict) else None
    return kind if kind in OPTIMIZERS else "adamw"


def inherited_recipe(training: dict[str, object], tokenizer_name: str) -> tuple[str | None, str]:
    """The preset and tokenizer a fine-tune records: its parent's, from the parent's model.toml [training] (a
    fine-tune keeps the parent's shape and tokenizer whatever ``--preset`` says). A parent whose record is silent
    gives no preset and its tokenizer's own name."""
    preset = training.get("preset")
    arg = training.get("tokenizer_arg")
    return (preset if isinstance(preset, str) and preset else None,
            arg if isinstance(arg, str) and arg else tokenizer_name)


def finetune_config(*, train_tokens: int, budget_s: float | None, tokens_per_s: float,
                    block_size: int, optimizer: str = "adamw") -> TrainConfig:
    """The settings of a fine-tune (``--init-from``) on ``train_tokens`` of the user's text.

    Why these numbers (one book, ~100k tokens, to fifty, ~4M tokens; a 10-minute budget on a CPU); each was
    measured on whole books the bundled model never saw (docs/training-runs.md):

    * **the parent's optimizer** (``optimizer``): the bundled model was trained with Muon, and fine-tuning it with
      Muon ends lower than with AdamW (Treasure Island: 1.465 against 1.481 bits/byte at the same rate).
    * **lr 3e-4, dropout ``FINETUNE_DROPOUT``, decayed over at most ``FINETUNE_MAX_PASSES`` passes**: a seventh of the
      peak that pretrained the bundled model (2e-3). On Treasure Island, 6e-4 without dropout began to memorise
      after two passes (best 1.481, early-stopped), 1.2e-3 after one (1.536); 3e-4 with dropout 0.1 was still
      improving after eight (1.438). A time budget plans at most ``FINETUNE_MAX_PASSES`` passes: the rate has
      decayed by then, and the run ends there rather than spend the rest of the budget memorising.
    * **batch 16**: a fine-tune has little text and little time; half the pretraining batch gives twice the
      updates per pass (batch 8 was worse: 1.501). Corpora of more than 2M tokens get the pretraining batch
      (``TrainConfig.batch_size``).
    * **warmup**: a twentieth of the planned steps (5 to 100): Adam's moments start at zero, and full steps on
      them jolt a trained model.
    * **evaluation 4 times a pass** (and at least 12 times a run): the held-out text must be scored often enough
      to catch the turn to memorising. The best-scoring weights are kept (the loop saves the best, not the last),
      so a late evaluation that got worse costs nothing.
    * **patience of one pass** (3 to 8 evaluations): noise on a few thousand held-out tokens can fake one
      or two bad scores; a whole pass without a better one means the model has started to memorise.
    * **budget**: the time given, or ``FINETUNE_EPOCHS`` passes when none is.

    ``tokens_per_s`` is only a planning guess (``measured_tokens_per_s`` of the parent's own run, else
    ``FALLBACK_TOKENS_PER_S``): the loop re-plans its horizon from its real pace; the guess only sizes the
    warmup and the evaluation interval (the loop caps its horizon at ``FINETUNE_MAX_PASSES`` passes itself).
    """
    train_tokens = max(1, int(train_tokens))
    batch_size = 16 if train_tokens <= 2_000_000 else TrainConfig.batch_size
    batch_tokens = batch_size * block_size
    steps_per_pass = max(1.0, train_tokens / batch_tokens)
    if budget_s is None:
        planned_steps = max(1, math.ceil(FINETUNE_EPOCHS * steps_per_pass))
    else:
        planned_steps = min(max(1, int(budget_s * max(tokens_per_s, 1.0) / batch_tokens)),
                            max(1, math.ceil(FINETUNE_MAX_PASSES * steps_per_pass)))
    eval_interval = max(1, min(round(steps_per_pass / 4), planned_steps // 12 or 1, 250))
    evals_per_pass = steps_per_pass / eval_interval
    return TrainConfig(
        batch_size=batch_size, lr=3e-4, warmup_steps=max(5, min(100, planned_steps // 20)),
        eval_interval=eval_interval, patience=max(3, min(8, math.ceil(evals_per_pass))), weight_decay=0.1,
        time_limit_s=budget_s, epochs=None if budget_s is not None else FINETUNE_EPOCHS,
        max_passes=FINETUNE_MAX_PASSES if budget_s is not None else None,
        optimizer=optimizer,
    )


def before_after(before: float | None, after: float | None) -> str | None:
    """A fine-tune's change on the user's held-out text, as slm-train, the training screen and the model card
    write it: "your books: 1.92 → 1.41 bits per byte" (None when either score is missing)."""
    if before is None or after is None:
        return None
    return f"your books: {before:.2f} → {after:.2f} bits per byte"


SMALL_CORPUS_BYTES = 64_000
"""Below this, an 8k BPE learned from the text is mostly whole words seen once (see ``scratch_preset``)."""


def scratch_preset(corpus_bytes: int | None) -> str:
    """The preset the training form suggests for a from-scratch run on ``corpus_bytes`` of text (never ``tiny``, a
    test toy); None, a corpus not sized yet, is taken for a real corpus.

    ``default`` (the bundled model's 6x256 shape with an 8k BPE learned from the corpus) for any real corpus: it
    is also faster a token than ``seed``, whose 50k-token GPT-2 output layer costs more than its four layers.
    Below ``SMALL_CORPUS_BYTES`` there is too little text to learn an 8k-token BPE from, and ``seed``'s
    ready-made GPT-2 tokenizer is the better start. Either way a corpus this size learns far more by
    fine-tuning (the training screen says so and offers that first)."""
    return "seed" if corpus_bytes is not None and corpus_bytes < SMALL_CORPUS_BYTES else "default"
