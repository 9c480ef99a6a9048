"""What a run will cost, before it starts: the corpus's size and an estimate of the time.

Both run in a thread worker of the training screen (walking a big folder or asking torch about the GPU
takes a while). No Textual here. The estimate is deliberately simple: tokens from bytes, steps from the
budget, seconds per step from the model's FLOPs at a throughput measured by the user's own earlier runs on
this device when there are any, else a rough default; the trainer's live ETA takes over once it runs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

from slmtui.engine import PRESETS, paths
from slmtui.engine.model import GPTConfig
from slmtui.engine.modeldir import ModelInfo
from slmtui.tui.trainer_process import DEFAULT_TOKENIZER, PRESET_BATCH_SIZE

TEXT_SUFFIXES = frozenset({".txt", ".md"})
"""The files the trainer reads in a folder (trainer.corpus.TEXT_SUFFIXES)."""
TOKENIZER_RE = re.compile(r"gpt2|bpe:(\d+)")
NAME_RE = re.compile(r"[\w.-]+")
"""A model name the trainer accepts (letters, digits, '.', '-', '_'; not starting with '.')."""

DEFAULT_FLOPS = {"cpu": 1.5e10, "cuda": 2.0e13, "mps": 2.0e12}
"""Sustained training FLOP/s assumed before any run on this device has been measured."""
STEP_OVERHEAD_S = {"cpu": 0.01, "cuda": 0.005, "mps": 0.01}
STARTUP_S = 5.0
"""Reading the corpus, tokenising it and building the model (a BPE of a big corpus takes longer)."""
EVAL_SHARE = 0.1
"""Evaluations and samples, as a share of the steps' time."""


@dataclass(frozen=True)
class CorpusSize:
    path: Path | None
    files: int
    bytes: int
    error: str | None = None

    def describe(self) -> str:
        if self.error:
            return self.error
        return f"{self.files:,} file{'s' if self.files != 1 else ''}, {human_bytes(self.bytes)}"


def scan_corpus(path: Path | None) -> CorpusSize:
    """Count the text files and their bytes as the trainer would find them (hidden files, SOURCES.md and
    LICENSE files are not corpus). Raw bytes: the trainer's cleaning trims a little."""
    root = paths.BUNDLED_CORPUS_DIR if path is None else Path(path).expanduser()
    if not root.exists():
        return CorpusSize(path, 0, 0, f"not found: {root}")
    if root.is_file():
        return CorpusSize(path, 1, root.stat().st_size)
    files = n_bytes = 0
    try:
        for p in root.rglob("*"):
            rel = p.relative_to(root)
            if p.suffix.lower() not in TEXT_SUFFIXES or any(part.startswith(".") for part in rel.parts):
                continue
            name = p.name.lower()
            if name == "sources.md" or name.startswith("license") or not p.is_file():
                continue
            files += 1
            n_bytes += p.stat().st_size
    except OSError as e:
        return CorpusSize(path, files, n_bytes, f"cannot read {root}: {e.strerror or e}")
    if not files:
        return CorpusSize(path, 0, 0, f"no .txt or .md files in {root}")
    return CorpusSize(path, files, n_bytes)


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def human_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def parse_duration(text: str) -> float | None:
    """Seconds from '90', '90s', '15m', '2h', '1h30m' (as slm-train reads --time-limit); None if not one."""
    match = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not text.strip() or not match or not any(match.groups()):
        return None
    h, m, s = (float(g) if g else 0.0 for g in match.groups())
    total = h * 3600 + m * 60 + s
    return total if total > 0 else None


def vocab_size(tokenizer: str) -> int | None:
    if tokenizer == "gpt2":
        return 50257
    m = TOKENIZER_RE.fullmatch(tokenizer)
    return int(m.group(1)) if m and m.group(1) else None


def bytes_per_token(tokenizer: str) -> float:
    """A byte-level BPE's compression grows with its vocabulary: about 1.3 bytes a token at 512, 3.6 at 8k,
    4.2 for GPT-2's 50k on English prose."""
    n = vocab_size(tokenizer) or 512
    if tokenizer == "gpt2":
        return 4.2
    return max(1.0, 1.0 + 0.58 * math.log2(max(n, 256) / 256) ** 0.93)


def model_config(preset: str, tokenizer: str) -> GPTConfig:
    return replace(PRESETS[preset], vocab_size=vocab_size(tokenizer) or PRESETS[preset].vocab_size)


def n_params(c: GPTConfig) -> int:
    """As ModelInfo.n_params counts them."""
    per_block = 12 * c.n_embd * c.n_embd + (13 * c.n_embd if c.bias else 0)
    emb = c.vocab_size * c.n_embd + c.block_size * c.n_embd
    head = 0 if c.tie_embeddings else c.vocab_size * c.n_embd
    return c.n_layer * per_block + emb + head + (2 if c.bias else 1) * c.n_embd


def step_flops(c: GPTConfig, batch_size: int) -> float:
    """Forward and backward of one batch: 6 FLOPs per parameter per token, plus attention (nanoGPT's count)."""
    tokens = batch_size * c.block_size
    return 6 * n_params(c) * tokens + 12 * c.n_layer * c.n_embd * c.block_size * tokens


@dataclass(frozen=True)
class Estimate:
    steps: int | None
    seconds: float | None
    flops_per_s: float
    basis: str
    """Where the speed comes from, in words."""
    params: int

    def describe(self) -> str:
        steps = f"{self.steps:,} steps" if self.steps else "steps: as many as fit"
        return f"about {human_duration(self.seconds)} · {steps} · {self.params / 1e6:.1f}M parameters\n({self.basis})"


def measured_flops(models: list[ModelInfo], device: str) -> tuple[float, str] | None:
    """Training FLOP/s of the newest of the user's own runs on ``device``, from its model.toml."""
    best: tuple[str, float, str] | None = None
    for info in models:
        t = info.training
        if info.bundled or not isinstance(t.get("wall_time_s"), (int, float)) or not isinstance(t.get("steps"), int):
            continue
        if str(t.get("device", "")).split(":")[0] != device or not t["wall_time_s"] or not t["steps"]:
            continue
        batch = t.get("train_config", {}).get("batch_size") if isinstance(t.get("train_config"), dict) else None
        if not isinstance(batch, int):
            continue
        flops = step_flops(info.config, batch) * t["steps"] / float(t["wall_time_s"])
        created = str(t.get("created", ""))
        if best is None or created > best[0]:
            best = (created, flops, info.name)
    return (best[1], f"speed measured by your run {best[2]!r}") if best else None


def estimate(
    *, corpus_bytes: int, preset: str, tokenizer: str | None, max_steps: int | None = None,
    time_limit_s: float | None = None, epochs: float | None = None, device: str = "cpu",
    models: list[ModelInfo] = (),  # type: ignore[assignment]
) -> Estimate:
    """The run's steps and seconds; with no budget the trainer trains 10 epochs (with early stopping)."""
    tok = tokenizer or DEFAULT_TOKENIZER[preset]
    config = model_config(preset, tok)
    batch = PRESET_BATCH_SIZE[preset]
    measured = measured_flops(list(models), device)
    guess = (DEFAULT_FLOPS.get(device, DEFAULT_FLOPS["cpu"]), f"a rough guess for {device}")
    flops, basis = measured or guess
    step_s = STEP_OVERHEAD_S.get(device, 0.01) + step_flops(config, batch) / flops
    train_tokens = corpus_bytes / bytes_per_token(tok) * 0.95
    batch_tokens = batch * config.block_size
    steps: int | None = None
    if max_steps is None and time_limit_s is None and epochs is None:
        epochs = 10.0
    if max_steps is not None:
        steps = max_steps
    elif epochs is not None:
        steps = max(1, math.ceil(epochs * train_tokens / batch_tokens))
    if steps is not None:
        seconds = STARTUP_S + steps * step_s * (1 + EVAL_SHARE)
        if time_limit_s is not None and seconds > time_limit_s + STARTUP_S:
            seconds = time_limit_s + STARTUP_S
            steps = int(time_limit_s / (step_s * (1 + EVAL_SHARE)))
    else:
        seconds = STARTUP_S + float(time_limit_s or 0)
        steps = int((time_limit_s or 0) / (step_s * (1 + EVAL_SHARE))) or None
    return Estimate(steps=steps, seconds=seconds, flops_per_s=flops, basis=basis, params=n_params(config))


def default_name(corpus: Path | None, preset: str, taken: set[str]) -> str:
    """The trainer's default name (the corpus folder's name, or PRESET-bundled), made unique among ``taken``."""
    base = f"{preset}-bundled" if corpus is None else (Path(corpus).expanduser().stem or "model")
    base = re.sub(r"[^\w.-]+", "-", base).strip(".-") or "model"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name
