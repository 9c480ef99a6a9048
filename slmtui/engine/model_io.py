"""One model = one folder: save atomically, load safely, validate, list.

    models/<name>/
      model.safetensors   weights (safetensors: loading runs no code)
      model.toml          format, [model] architecture, [tokenizer] spec, [training] summary
      tokenizer.tiktoken  the rank file, so the folder is self-contained
      train_state.pt      optional: optimizer, schedule, RNG, data position (torch.load weights_only=True)
      metrics.jsonl       optional: every training step and evaluation

A folder is built under a temporary name beside its final place and renamed into place, so a crash
leaves the old model or the new one, never half of one. What may be replaced so is decided in one place,
``check_model_target`` (targets.py, re-exported here): nothing, an empty folder, or a proven model folder that the caller was asked to
replace; never a file, a link, someone's notes, the corpus or a folder that holds the user's data.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w
import torch
from safetensors import SafetensorError
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from slmtui.engine import paths
from slmtui.engine.errors import SlmError
from slmtui.engine.memory import check_fits, inference_bytes
from slmtui.engine.model import GPT, GPTConfig
from slmtui.engine.targets import check_model_target, is_model_folder, target_path  # noqa: F401 (re-exported)
from slmtui.engine.tokenizer import Tokenizer, TokenizerSpec

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
META = "model.toml"
TOKENIZER = "tokenizer.tiktoken"
TRAIN_STATE = "train_state.pt"
METRICS = "metrics.jsonl"
DEFAULT_MODEL = "default"
WEIGHT_DTYPES = ("float32", "float16", "bfloat16")
"""What [weights] dtype may say: the dtypes models are saved in."""
_DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2}  # safetensors' names for WEIGHT_DTYPES
RESUMABLE_STOPS = ("interrupted", "time_limit", "running")
"""``[training] stopped`` values of a run that can go on: stopped by the user, by its time budget, or saved mid-run
(its process was killed)."""


@dataclass(frozen=True)
class ModelInfo:
    """What model.toml says, read without touching the weights."""

    path: Path
    config: GPTConfig
    tokenizer: TokenizerSpec
    training: dict[str, object] = field(default_factory=dict)
    bundled: bool = False

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def n_params(self) -> int:
        return self.config.param_count

    @property
    def linked(self) -> bool:
        """Added from elsewhere: a link in the models folder to the user's own folder."""
        return self.path.is_symlink()

    @property
    def resumable(self) -> bool:
        """A run that stopped before its end and saved its state: ``slm-train --resume`` continues it."""
        return (self.path / TRAIN_STATE).is_file() and self.training.get("stopped") in RESUMABLE_STOPS


@dataclass
class LoadedModel:
    model: GPT
    tokenizer: Tokenizer
    info: ModelInfo


def save_model_dir(
    path: Path,
    model: GPT,
    tokenizer: Tokenizer,
    *,
    training: dict[str, object] | None = None,
    dtype: torch.dtype = torch.float32,
    extra_files: dict[str, bytes | Path] | None = None,
    replace_model: bool = False,
    corpus: Path | None = None,
) -> Path:
    """Write a complete model folder at ``path`` and rename it into place.

    ``check_model_target`` decides, just before the rename, whether the place may be taken: an existing
    model folder there is replaced only with ``replace_model``. When it refuses, nothing there is touched
    and the new folder is kept beside it, under the name the error gives: a run that saw its folder
    taken during hours of training keeps what it learned. Callers check once more before any work
    (the trainer and the exporter do), so that a refusal up front writes nothing at all.
    """
    path = target_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    keep_tmp = False
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp's 0700 would hide a shared model from other users
    try:
        tied = model.config.tie_embeddings
        state = {
            k: v.detach().to("cpu", dtype=dtype if v.is_floating_point() else v.dtype).contiguous()
            for k, v in model.state_dict().items()
            if not (tied and k == "lm_head.weight")  # tied: stored once, as the embedding
        }
        save_file(state, str(tmp / WEIGHTS), metadata={"format": "pt"})
        tokenizer.save_ranks(tmp / TOKENIZER)
        meta = {
            "format": FORMAT_VERSION,
            "model": model.config.to_dict(),
            "tokenizer": {**tokenizer.spec.to_dict(), "file": TOKENIZER},
            "weights": {"file": WEIGHTS, "dtype": str(dtype).removeprefix("torch.")},
            "training": _toml_safe(training or {}),
        }
        (tmp / META).write_bytes(tomli_w.dumps(meta).encode())
        for name, content in (extra_files or {}).items():
            target = tmp / name
            if isinstance(content, Path):
                shutil.copyfile(content, target)
            else:
                target.write_bytes(content)
        for f in tmp.iterdir():
            f.chmod(0o666 & ~umask)
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        try:
            check_model_target(path, replace_model=replace_model, corpus=corpus)
        except SlmError as e:
            keep_tmp = True  # hours of training are not thrown away because the place was taken meanwhile
            raise SlmError(f"{e}; the new model is kept at {tmp}", exit_code=e.exit_code) from e
        _swap_into_place(tmp, path)
    except BaseException:
        if not keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _swap_into_place(tmp: Path, path: Path) -> None:
    if not path.exists():
        os.replace(tmp, path)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
    old.rmdir()
    os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def _recover(path: Path) -> None:
    """Finish a swap that a crash interrupted between its two renames."""
    if path.exists() or not path.parent.is_dir():
        return
    olds = sorted(path.parent.glob(f".{path.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds:
        os.replace(olds[-1], path)


def _toml_safe(value: object) -> object:
    """TOML has no null: drop None values so a training summary always serialises."""
    if isinstance(value, dict):
        return {str(k): _toml_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_toml_safe(v) for v in value if v is not None]
    if isinstance(value, Path):
        return str(value)
    return value


def read_model_info(path: Path) -> ModelInfo:
    """Read and check model.toml alone: cheap enough for listing many models."""
    path = Path(path)
    _recover(path)
    return _parse_model_info(path)


def _parse_model_info(path: Path) -> ModelInfo:
    """model.toml read and checked; renames nothing (read_model_info first finishes an interrupted swap)."""
    meta_file = path / META
    if not path.is_dir():
        raise SlmError(f"no model folder at {path}")
    if not meta_file.is_file():
        raise SlmError(f"{path} is not a model folder: {META} is missing")
    try:
        meta = tomllib.loads(meta_file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SlmError(f"{meta_file} is not valid TOML: {e}") from e
    if not isinstance(meta.get("format"), int) or meta["format"] > FORMAT_VERSION:
        raise SlmError(f"{meta_file}: unsupported format {meta.get('format')!r} (this slmtui reads {FORMAT_VERSION})")
    try:
        config = GPTConfig.from_dict(dict(meta["model"]))
        spec = TokenizerSpec.from_dict(dict(meta["tokenizer"]), source=str(meta_file))
    except KeyError as e:
        raise SlmError(f"{meta_file}: the [{e.args[0]}] table is missing") from e
    except (TypeError, SlmError) as e:
        raise SlmError(f"{meta_file}: {e}") from e
    stored = meta.get("weights", {})
    kind = stored.get("dtype", "float32") if isinstance(stored, dict) else None
    if kind not in WEIGHT_DTYPES:
        raise SlmError(f"{meta_file}: [weights] dtype must be one of {', '.join(WEIGHT_DTYPES)}, got {kind!r}")
    if spec.n_vocab > config.vocab_size:
        raise SlmError(
            f"{meta_file}: the tokenizer has {spec.n_vocab} tokens but the model's vocab_size is {config.vocab_size}"
        )
    bundled = paths.BUNDLED_MODELS_DIR in path.resolve().parents
    return ModelInfo(path=path, config=config, tokenizer=spec, training=dict(meta.get("training", {})), bundled=bundled)


def _read_header(weights: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Each tensor's shape and dtype, from the safetensors header alone (no tensor is read)."""
    try:
        with safe_open(str(weights), framework="pt") as f:
            header = {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise SlmError(f"{weights} is damaged or truncated: {e}") from e
    for key, (_, kind) in header.items():
        if kind not in _DTYPE_BYTES:
            raise SlmError(f"{weights}: {key} is {kind}; weights must be float32, float16 or bfloat16")
    return header


def load_tokenizer(info: ModelInfo) -> Tokenizer:
    tokenizer = Tokenizer.from_rank_file(info.path / TOKENIZER, info.tokenizer)
    if tokenizer.n_vocab != info.tokenizer.n_vocab:
        raise SlmError(f"{info.path / TOKENIZER} has {tokenizer.n_vocab} tokens, model.toml says {info.tokenizer.n_vocab}")
    return tokenizer


def load_model_dir(path: Path, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> LoadedModel:
    """Load and validate a model folder; every problem is an SlmError naming the file.

    The order matters: model.toml and the weights' header are checked against each other, and the sizes
    against free memory, before anything as large as the model is allocated.
    """
    info = read_model_info(path)
    tokenizer = load_tokenizer(info)
    weights = info.path / WEIGHTS
    if not weights.is_file():
        raise SlmError(f"{weights} is missing")
    header = _read_header(weights)
    layers = len({k.split(".")[2] for k in header if k.startswith("transformer.h.")})
    if info.config.n_layer > layers:  # before building even a shapes-only model of n_layer blocks
        raise SlmError(f"{weights} does not match model.toml: missing transformer.h.{layers} "
                       f"(n_layer = {info.config.n_layer}, the file holds {layers} layers)")
    check_fits(f"{info.path / META} ({info.n_params:,} parameters, context {info.config.block_size})",
               inference_bytes(info.config, weight_bytes=max(_DTYPE_BYTES[d] for _, d in header.values())), device)
    with torch.device("meta"):  # shapes only: nothing allocated
        expected = {k: tuple(v.shape) for k, v in GPT(info.config).state_dict().items()}
    if info.config.tie_embeddings:
        expected.pop("lm_head.weight")
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    if missing or unexpected:
        parts = [f"missing {', '.join(missing[:3])}" if missing else "", f"unexpected {', '.join(unexpected[:3])}" if unexpected else ""]
        raise SlmError(f"{weights} does not match model.toml: " + "; ".join(p for p in parts if p))
    for key, (shape, _) in header.items():
        if shape != expected[key]:
            raise SlmError(f"{weights}: {key} has shape {shape}, model.toml implies {expected[key]}")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise SlmError(f"{weights} is damaged or truncated: {e}") from e
    for key, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise SlmError(f"{weights}: {key} holds NaN or infinite values")
    model = GPT(info.config)
    model.load_state_dict(state, strict=False)
    # load_state_dict copies into the float32 parameters, so the dtype is set on the module itself.
    model.to(device=device, dtype=dtype).eval()
    return LoadedModel(model=model, tokenizer=tokenizer, info=info)


def bundled_default() -> Path:
    return paths.BUNDLED_MODELS_DIR / DEFAULT_MODEL


def resolve_model(name_or_path: str | os.PathLike[str] | None) -> Path:
    """A model name (in the user's models folder, then the bundled ones) or a folder path."""
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if os.sep in text or text.startswith(".") or (candidate.is_dir() and (candidate / META).exists()):
        _recover(candidate.resolve())
        if not candidate.is_dir():
            raise SlmError(f"no model folder at {candidate}")
        return candidate.resolve()
    for base in (paths.models_dir(), paths.BUNDLED_MODELS_DIR):
        _recover(base / text)
        if (base / text).is_dir():
            return base / text
    known = ", ".join(i.name for i in list_models()) or "none yet (train one with slm-train)"
    raise SlmError(f"no model named {text!r}; models: {known}")


@dataclass(frozen=True)
class BrokenModel:
    """A folder in a models folder that cannot be read as a model, and why (shown by `slmtui models`)."""

    path: Path
    reason: str
    bundled: bool = False

    @property
    def name(self) -> str:
        return self.path.name


def scan_models() -> tuple[list[ModelInfo], list[BrokenModel]]:
    """The user's models, then bundled ones they do not shadow; and the folders that failed to read, with why.

    Hidden folders (a save's temporary ``.name.tmp-*``) are neither."""
    seen: set[str] = set()
    out: list[ModelInfo] = []
    broken: list[BrokenModel] = []
    for base in (paths.models_dir(), paths.BUNDLED_MODELS_DIR):
        if not base.is_dir():
            continue
        for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if folder.name in seen:
                continue
            try:
                out.append(read_model_info(folder))
                seen.add(folder.name)
            except SlmError as e:
                broken.append(BrokenModel(folder, e.message, bundled=base == paths.BUNDLED_MODELS_DIR))
    return out, broken


def list_models() -> list[ModelInfo]:
    """The models that read; see ``scan_models`` for the folders that do not."""
    return scan_models()[0]
