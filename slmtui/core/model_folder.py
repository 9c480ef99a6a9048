"""One model = one folder: its format, model.toml read and checked, and what proves a folder is one.

    models/<name>/
      model.safetensors   weights (safetensors: loading runs no code)
      model.toml          format, [model] architecture, [tokenizer] spec, [weights] dtype, [training] summary
      tokenizer.tiktoken  the rank file, so the folder is self-contained
      train_state.pt      optional: optimizer, schedule, RNG, data position (torch.load weights_only=True)
      metrics.jsonl       optional: every training step and evaluation

A folder is built under a temporary name beside its final place (``new_temp_folder``) and renamed into place
(``swap_into_place``), so a crash leaves the old model or the new one, never half of one; ``recover_swap``
finishes a swap a crash cut between its two renames. The tensors are written and read by
``slmtui.engine.model_io``; where a folder may be written is ``slmtui.core.model_target``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from slmtui.core import paths
from slmtui.core.errors import SlmError
from slmtui.core.gpt_config import GPTConfig
from slmtui.core.tokenizer_spec import TokenizerSpec

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
META = "model.toml"
TOKENIZER = "tokenizer.tiktoken"
TRAIN_STATE = "train_state.pt"
METRICS = "metrics.jsonl"
WEIGHT_DTYPES = ("float32", "float16", "bfloat16")
"""What [weights] dtype may say: the dtypes models are saved in."""
WEIGHT_DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2}
"""safetensors' names for WEIGHT_DTYPES, and the bytes of one value."""
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
        """A run that stopped before its end and saved its state: ``slm-train --resume`` continues it.

        The trainer records whether it does (``[training] resumable``): a run given a time budget plans its
        schedule to fit it and ends with ``stopped = "time_limit"`` finished, while one with a fixed number of
        steps that ran out of time can go on. In a record from before that key, a time limit whose ``train_config``
        fixed no steps or passes was such a finished schedule."""
        t = self.training
        if not (self.path / TRAIN_STATE).is_file():
            return False
        if isinstance(t.get("resumable"), bool):
            return bool(t["resumable"])
        if t.get("stopped") == "time_limit":
            settings = t.get("train_config")
            return not isinstance(settings, dict) or bool(settings.get("max_steps") or settings.get("epochs"))
        return t.get("stopped") in RESUMABLE_STOPS


def new_temp_folder(path: Path) -> Path:
    """An empty hidden folder beside ``path`` to build its model in, readable as the umask allows (listings skip
    hidden folders, so a half-built model is never offered)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp's 0700 would hide a shared model from other users
    return tmp


def swap_into_place(tmp: Path, path: Path) -> None:
    """Rename the finished folder ``tmp`` to ``path``; an old model there is renamed aside first, then removed."""
    if not path.exists():
        os.replace(tmp, path)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
    old.rmdir()
    os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def recover_swap(path: Path) -> None:
    """Finish a swap that a crash interrupted between its two renames (the old model is put back)."""
    if path.exists() or not path.parent.is_dir():
        return
    olds = sorted(path.parent.glob(f".{path.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds:
        os.replace(olds[-1], path)


LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>old|tmp)-[A-Za-z0-9_]{8}$")
"""The hidden folders a save makes beside a model (new_temp_folder, swap_into_place): what a kill -9 in the
middle of one leaves behind."""
LEFTOVER_AGE_S = 3600.0
"""A ``.NAME.tmp-*`` untouched this long is no save in progress (one writes its files within minutes)."""


def remove_leftovers(base: Path, *, min_age_s: float = LEFTOVER_AGE_S) -> list[Path]:
    """Remove what killed saves left in ``base``, and nothing else: a real folder named as our temporary folders
    are, that is itself a proven model folder (``is_model_folder``: a copy of a model), beside the model it
    belongs to, which is a proven model folder too (while it is missing, ``recover_swap`` puts the old one back
    instead); a ``.tmp-*`` one also untouched for ``min_age_s``. A save whose place was taken keeps its model
    under a visible name (``kept_name``), never under these. Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        match = LEFTOVER.match(entry.name)
        if match is None or entry.is_symlink() or not entry.is_dir(follow_symlinks=False):
            continue
        leftover, model = Path(entry.path), base / match["name"]
        try:
            if not (is_model_folder(model) and is_model_folder(leftover)):
                continue
            if match["kind"] == "tmp":
                newest = max([leftover.stat().st_mtime, *(f.stat().st_mtime for f in leftover.iterdir())])
                if now - newest < min_age_s:
                    continue
            shutil.rmtree(leftover)
            removed.append(leftover)
        except OSError:
            continue
    return removed


def kept_name(path: Path) -> Path:
    """Where a finished model goes when its place was taken meanwhile: ``NAME-kept-N`` beside it, visible (it
    is a model the user is told about), never a hidden temporary name that ``remove_leftovers`` could take."""
    n = 1
    while (candidate := path.with_name(f"{path.name}-kept-{n}")).exists() or candidate.is_symlink():
        n += 1
    return candidate


def read_model_info(path: Path) -> ModelInfo:
    """Read and check model.toml alone: cheap enough for listing many models. A folder that cannot be read
    (``chmod 000``, a name too long) is an SlmError that says so, never a traceback."""
    path = Path(path)
    try:
        recover_swap(path)
        return _parse_model_info(path)
    except OSError as e:
        raise SlmError(f"cannot read {e.filename or path}: {e.strerror or e}") from e


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


def is_model_folder(path: Path) -> bool:
    """Proven, not guessed from one file name: a real folder whose model.toml parses with the expected
    tables and values, beside a model.safetensors file. Reads model.toml only; renames nothing."""
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        return False
    weights = path / WEIGHTS
    if weights.is_symlink() or not weights.is_file():
        return False
    try:
        _parse_model_info(path)
    except Exception:  # any failure to read it (SlmError, OSError, a bad value) means: not proven
        return False
    return True
