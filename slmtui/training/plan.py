"""What a run will be, before it starts: the corpus's size, the run the training form describes, and an estimate
of the time; ``RunSetup`` holds the latest survey and applies these rules for the training screen, which draws
what it says.

The survey runs in a thread worker of the training screen (walking a big folder or asking torch about the GPU
takes a while). No Textual here. The estimate is deliberately simple: tokens from bytes, steps from the
budget, seconds per step from the model's FLOPs at a throughput measured by the user's own earlier runs on
this device when there are any, else a rough default; the trainer's live ETA takes over once it runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from slmtui.core import paths
from slmtui.core.errors import SlmError
from slmtui.core.gpt_config import GPTConfig
from slmtui.core.model_folder import ModelInfo
from slmtui.core.tokenizer_spec import check_vocab_size, read_tokenizer_arg, tokenizer_vocab_size
from slmtui.format import human_bytes, human_duration, params
from slmtui.training.state import RunState, TrainRequest
from trainer.config import (
    DEFAULT_EPOCHS,
    FALLBACK_TOKENS_PER_S,
    PRESETS,
    TrainConfig,
    finetune_config,
    is_corpus_file,
    measured_tokens_per_s,
    parent_optimizer,
    parse_duration,
    scratch_preset,
    unique_run_name,
)

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
            if not is_corpus_file(p.relative_to(root)) or not p.is_file():
                continue
            files += 1
            n_bytes += p.stat().st_size
    except OSError as e:
        return CorpusSize(path, files, n_bytes, f"cannot read {root}: {e.strerror or e}")
    if not files:
        return CorpusSize(path, 0, 0, f"no .txt or .md files in {root}")
    return CorpusSize(path, files, n_bytes)


def vocab_size(tokenizer: str) -> int | None:
    """The tokens a ``gpt2`` or ``bpe:N`` value gives, or None when it is not one."""
    try:
        return tokenizer_vocab_size(tokenizer)
    except SlmError:
        return None


def bytes_per_token(tokenizer: str) -> float:
    """A byte-level BPE's compression grows with its vocabulary: about 1.3 bytes a token at 512, 3.6 at 8k,
    4.2 for GPT-2's 50k on English prose."""
    n = vocab_size(tokenizer) or 512
    if read_tokenizer_arg(tokenizer) == ("gpt2", None):
        return 4.2
    return max(1.0, 1.0 + 0.58 * math.log2(max(n, 256) / 256) ** 0.93)


def model_config(preset: str, tokenizer: str) -> GPTConfig:
    model = PRESETS[preset].model
    return replace(model, vocab_size=vocab_size(tokenizer) or model.vocab_size)


def step_flops(c: GPTConfig, batch_size: int) -> float:
    """Forward and backward of one batch: 6 FLOPs per parameter per token, plus attention (nanoGPT's count)."""
    tokens = batch_size * c.block_size
    return 6 * c.param_count * tokens + 12 * c.n_layer * c.n_embd * c.block_size * tokens


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
        return f"about {human_duration(self.seconds)} · {steps} · {params(self.params)} parameters\n({self.basis})"


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
    tok = tokenizer or PRESETS[preset].tokenizer
    config = model_config(preset, tok)
    batch = PRESETS[preset].train.batch_size
    measured = measured_flops(list(models), device)
    guess = (DEFAULT_FLOPS.get(device, DEFAULT_FLOPS["cpu"]), f"a rough guess for {device}")
    flops, basis = measured or guess
    step_s = STEP_OVERHEAD_S.get(device, 0.01) + step_flops(config, batch) / flops
    train_tokens = corpus_bytes / bytes_per_token(tok) * 0.95
    batch_tokens = batch * config.block_size
    steps: int | None = None
    if max_steps is None and time_limit_s is None and epochs is None:
        epochs = DEFAULT_EPOCHS
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
    return Estimate(steps=steps, seconds=seconds, flops_per_s=flops, basis=basis, params=config.param_count)


def _corpus_problems(size: CorpusSize | None) -> list[str]:
    """What stands in the way of any run on this corpus: its size not counted yet, or why it cannot be read."""
    if size is None:
        return ["the corpus is still being counted"]
    return [size.error] if size.error else []


def plan_request(
    size: CorpusSize | None, *, corpus: Path | None, preset: str, tokenizer: str, budget_kind: str, budget: str,
    name: str, taken: set[str], resumable: set[str],
) -> tuple[TrainRequest | None, list[str]]:
    """The run the training form describes (its fields as typed), or the problems that stand in its way."""
    problems = _corpus_problems(size)
    tok = tokenizer.strip() or None
    parsed = read_tokenizer_arg(tok) if tok is not None else None
    if tok is not None and parsed is None:
        problems.append(f"tokenizer {tok!r}: write gpt2 or bpe:N (e.g. bpe:2048)")
    elif parsed is not None and parsed[0] == "bpe":
        try:
            check_vocab_size(parsed[1])
        except SlmError as e:  # the trainer would refuse it at once: say so before it starts
            problems.append(f"tokenizer {tok!r}: {e}")
    text = budget.strip()
    limits: dict[str, float | int] = {}
    if budget_kind == "steps":
        if text.isdigit() and int(text) > 0:
            limits["max_steps"] = int(text)
        else:
            problems.append(f"steps: a whole number above 0, not {text!r}")
    elif budget_kind == "time":
        seconds = parse_duration(text)
        if seconds is None or seconds <= 0:
            problems.append(f"time: a duration such as 90s, 15m or 2h, not {text!r}")
        else:
            limits["time_limit_s"] = seconds
    else:
        try:
            epochs = float(text)
            if not epochs > 0:
                raise ValueError
            limits["epochs"] = epochs
        except ValueError:
            problems.append(f"epochs: a number above 0, not {text!r}")
    if not paths.is_model_name(name):
        problems.append(f"name {name!r}: use letters, digits, '.', '-' and '_' only")
    elif name in taken:
        hint = " (or Resume its saved run)" if name in resumable else ""
        problems.append(f"a model named {name!r} exists: choose another name{hint}")
    if problems:
        return None, problems
    return TrainRequest(corpus=corpus, preset=preset, tokenizer=tok, name=name, **limits), []  # type: ignore[arg-type]


@dataclass(frozen=True)
class Survey:
    """What the training form needs to know before a run: the corpus's size, the models folder, the device."""

    size: CorpusSize
    taken: set[str]
    """Folder names already in the user's models folder."""
    resumable: set[str]
    """Of those, the ones holding a run that stopped early and saved its state."""
    models: list[ModelInfo]
    device: str
    parent: ModelInfo | None = None
    """The model a fine-tune would start from (the one being written with), if it reads."""
    parent_error: str | None = None


def survey(corpus: Path | None, *, device: str | None = None, parent: str | None = None) -> Survey:
    """Size the corpus, look at the models folder and read the would-be parent's model.toml (slow on a big
    folder: call it off the UI thread). ``device`` fixes the device the estimate assumes; None asks torch."""
    from slmtui.core.model_catalog import list_models, model_folder_names, resolve_model
    from slmtui.core.model_folder import read_model_info
    from slmtui.engine.device import pick_device

    size = scan_corpus(corpus)
    models = list_models()
    resumable = {m.name for m in models if not m.bundled and m.resumable}
    info, error = None, None
    try:
        info = read_model_info(resolve_model(parent))
    except SlmError as e:
        error = str(e)
    return Survey(size, model_folder_names(), resumable, models, device or pick_device("auto").type, info, error)


FINETUNE_BUDGET = "10"
"""The fine-tune form's budget, in minutes: ten minutes take one book well past its first pass on a laptop CPU."""


def parse_minutes(text: str) -> float | None:
    """Seconds from the fine-tune budget as typed: minutes ('10', '2.5'), or a duration ('90s', '1h')."""
    text = text.strip()
    try:
        minutes = float(text)
    except ValueError:
        return parse_duration(text)
    return minutes * 60 if math.isfinite(minutes) else None


@dataclass(frozen=True)
class FinetuneEstimate:
    """What a fine-tune of ``budget_s`` buys: tokens, passes over the user's text, and the trainer's settings."""

    seconds: float
    train_tokens: int
    tokens_per_s: float
    basis: str
    config: TrainConfig

    @property
    def passes(self) -> float:
        """Passes the budget buys, up to the fine-tune's cap (its schedule ends there, and so does the run)."""
        bought = self.seconds * self.tokens_per_s / max(1, self.train_tokens)
        return min(bought, self.config.max_passes) if self.config.max_passes else bought

    @property
    def run_seconds(self) -> float:
        """The run's training time: the budget, or less when the pass cap comes first."""
        return min(self.seconds, self.passes * self.train_tokens / max(self.tokens_per_s, 1e-9))

    def describe(self) -> str:
        capped = self.run_seconds < self.seconds * 0.99
        return (f"about {human_duration(self.run_seconds + STARTUP_S)} · about {self.passes:.1f} passes over your "
                f"{self.train_tokens:,} tokens{' (more would memorise it)' if capped else ''} · scored on held-out "
                f"text every {self.config.eval_interval} steps, the best kept\n({self.basis})")


def estimate_finetune(*, corpus_bytes: int, parent: ModelInfo, budget_s: float, device: str = "cpu") -> FinetuneEstimate:
    """The trainer's fine-tune settings (``finetune_config``, the same call slm-train makes) and what they buy.
    Tokens come from the parent's own bytes per token on its held-out text when model.toml has them."""
    t = parent.training
    val_bytes, val_tokens = t.get("val_bytes"), t.get("val_tokens")
    if isinstance(val_bytes, int) and isinstance(val_tokens, int) and val_tokens > 0:
        per_token = val_bytes / val_tokens
    else:
        per_token = bytes_per_token(f"bpe:{parent.tokenizer.n_vocab}")
    train_tokens = int(corpus_bytes / per_token * (1 - TrainConfig.val_fraction))
    measured = measured_tokens_per_s(t, device)
    speed = measured or FALLBACK_TOKENS_PER_S
    basis = f"speed of {parent.name}'s own training" if measured else f"a rough guess for {device}"
    config = finetune_config(train_tokens=train_tokens, budget_s=budget_s, tokens_per_s=speed,
                             block_size=parent.config.block_size, optimizer=parent_optimizer(t))
    return FinetuneEstimate(seconds=budget_s, train_tokens=train_tokens, tokens_per_s=speed, basis=basis,
                            config=config)


def plan_finetune(
    size: CorpusSize | None, *, corpus: Path | None, parent: str, budget: str, name: str, taken: set[str],
) -> tuple[TrainRequest | None, list[str]]:
    """The fine-tune the form describes: ``parent`` taught the corpus for ``budget`` minutes."""
    problems = _corpus_problems(size)
    if not problems and corpus is None:
        problems.append("choose your books: a folder or a file (the bundled novels are what it already knows)")
    seconds = parse_minutes(budget)
    if seconds is None or seconds <= 0:
        problems.append(f"budget: minutes such as 10 or 2.5, not {budget.strip()!r}")
    if not name:
        if corpus is not None:
            problems.append("name: type a name for the new model")
    elif not paths.is_model_name(name):
        problems.append(f"name {name!r}: use letters, digits, '.', '-' and '_' only")
    elif name in taken:
        problems.append(f"a model named {name!r} exists: choose another name")
    if problems:
        return None, problems
    return TrainRequest(corpus=corpus, init_from=parent, name=name, time_limit_s=seconds), []


FINETUNE, SCRATCH = "finetune", "scratch"
"""The training form's two paths: fine-tuning (first, recommended) or pretraining from scratch."""


@dataclass(frozen=True)
class RunForm:
    """The training form's fields, as the user typed them."""

    path: str
    """FINETUNE or SCRATCH."""
    corpus: Path | None
    """None: the bundled corpus."""
    preset: str
    tokenizer: str
    budget_kind: str
    """From scratch: "steps", "time" or "epochs"."""
    budget: str
    minutes: str
    """A fine-tune's budget."""
    name: str


class RunSetup:
    """The training form's rules, over the latest survey of the corpus, the models folder and the device: the run
    the form describes (or what stands in its way), what it will cost, and which saved run Resume continues."""

    def __init__(self, *, device: str | None = None, current_model: Callable[[], str | None] = lambda: None) -> None:
        """``device`` fixes the device the estimate assumes (tests); None asks torch. ``current_model`` names the
        model being written with (None: the bundled one): the one a fine-tune teaches."""
        self.fixed_device = device
        self.current_model = current_model
        self.survey: Survey | None = None
        """The latest survey of the form's corpus; None until the first one is in."""

    def scan(self, corpus: Path | None) -> Survey:
        """A fresh survey of ``corpus`` (slow on a big folder: call it off the UI thread)."""
        return survey(corpus, device=self.fixed_device, parent=self.current_model())

    def accept(self, found: Survey, corpus: Path | None) -> bool:
        """Keep ``found`` if it is of ``corpus``, the form's corpus now; False: the corpus changed meanwhile, and
        its own survey is on the way."""
        if found.size.path != corpus:
            return False
        self.survey = found
        return True

    def parent_label(self) -> str:
        """The model a fine-tune starts from, in words."""
        parent = self.survey.parent if self.survey else None
        return parent.name if parent else str(self.current_model() or "the model")

    def suggested_preset(self) -> str | None:
        """The from-scratch preset for the corpus's size (None: its size is not known)."""
        size = self.survey.size if self.survey else None
        return scratch_preset(size.bytes) if size is not None and not size.error else None

    def suggested_name(self, preset: str, path: str = SCRATCH) -> str | None:
        """A model name that is free in the models folder, after the corpus (and, from scratch, the preset); None
        for a fine-tune before any books are chosen: it is named after them, and the bundled novels are not
        among the books it may be taught ("default-bundled" would name a run the form refuses)."""
        found = self.survey
        corpus = found.size.path if found else None
        if path == FINETUNE and corpus is None:
            return None
        return unique_run_name(corpus, preset, found.taken if found else set())

    def request(self, form: RunForm) -> tuple[TrainRequest | None, list[str]]:
        """The run the form describes, or the problems that stand in its way."""
        found = self.survey
        size = found.size if found else None
        taken = found.taken if found else set()
        if form.path == FINETUNE:
            if found is None or found.parent is None:
                return None, [(found.parent_error if found else None) or "reading the model to teach…"]
            parent = self.current_model() or found.parent.name
            return plan_finetune(size, corpus=form.corpus, parent=str(parent), budget=form.minutes, name=form.name,
                                 taken=taken)
        return plan_request(size, corpus=form.corpus, preset=form.preset, tokenizer=form.tokenizer,
                            budget_kind=form.budget_kind, budget=form.budget, name=form.name, taken=taken,
                            resumable=found.resumable if found else set())

    def outlook(self, form: RunForm) -> tuple[str, bool]:
        """What the form's run will cost, in words, or the problems that stand in its way; True when those
        problems are errors to show as such (not only a corpus still being counted)."""
        request, problems = self.request(form)
        found = self.survey
        if request is None or found is None:
            return "\n".join(f"• {p}" for p in problems), found is not None
        corpus_bytes = found.size.bytes
        if form.path == FINETUNE and found.parent is not None:
            return estimate_finetune(corpus_bytes=corpus_bytes, parent=found.parent,
                                     budget_s=request.time_limit_s or 0.0, device=found.device).describe(), False
        est = estimate(corpus_bytes=corpus_bytes, preset=request.preset, tokenizer=request.tokenizer,
                       max_steps=request.max_steps, time_limit_s=request.time_limit_s, epochs=request.epochs,
                       device=found.device, models=found.models)
        return est.describe(), False

    def resume_target(self, state: RunState, name: str) -> Path | None:
        """The saved run Resume continues: the session's last one, else the one of the model named ``name``."""
        if state.resumable is not None:
            return state.resumable
        if self.survey is not None and name in self.survey.resumable:
            return paths.models_dir() / name
        return None
