"""A model folder written from tensors and read back into them: the engine's half of the model folder.

The format (file names, model.toml, what proves a folder is a model) is ``slmtui.core.model_folder``; where a folder
may be written, ``slmtui.core.model_target``; the user's models by name, ``slmtui.core.model_catalog``. Here: the
weights saved with safetensors (loading runs no code), the folder built beside its place and renamed into it, and a
load that checks model.toml, the weights' header and free memory against each other before allocating the model.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import tomli_w
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from slmtui.core.errors import ENVIRONMENT_ERRNOS, SlmError
from slmtui.core.model_folder import (
    FORMAT_VERSION,
    META,
    TOKENIZER,
    WEIGHTS,
    WEIGHT_DTYPE_BYTES,
    ModelInfo,
    kept_name,
    new_temp_folder,
    read_model_info,
    remove_leftovers,
    swap_into_place,
)
from slmtui.core.model_target import check_model_target, target_path
from slmtui.engine.memory import check_fits, inference_bytes
from slmtui.engine.model import GPT
from slmtui.engine.threads import threads_context
from slmtui.engine.tokenizer import Tokenizer


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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = new_temp_folder(path)
    except OSError as e:
        raise SlmError(f"cannot save the model to {path}: {e.strerror or e}", exit_code=1) from e
    keep_tmp = False
    umask = os.umask(0)
    os.umask(umask)
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
            kept = kept_name(path)
            os.replace(tmp, kept)
            raise SlmError(f"{e}; the new model is kept at {kept}", exit_code=e.exit_code) from e
        swap_into_place(tmp, path)
        remove_leftovers(path.parent)  # what killed saves left beside it (model_folder.remove_leftovers)
    except OSError as e:  # a full disk, a read-only folder, a name too long: one line, and nothing half-written
        shutil.rmtree(tmp, ignore_errors=True)
        if e.errno not in ENVIRONMENT_ERRNOS:
            raise  # a bug (an extra file that is not there): keep the traceback
        raise SlmError(f"cannot save the model to {path}: {e.strerror or e}", exit_code=1) from e
    except BaseException:
        if not keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _toml_safe(value: object) -> object:
    """TOML has no null: drop None values so a training summary always serialises."""
    if isinstance(value, dict):
        return {str(k): _toml_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_toml_safe(v) for v in value if v is not None]
    if isinstance(value, Path):
        return str(value)
    return value


def _read_header(weights: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Each tensor's shape and dtype, from the safetensors header alone (no tensor is read)."""
    try:  # opened here first: safetensors says "No such file or directory" of a file it may not read
        with open(weights, "rb") as fh:
            fh.read(8)
    except OSError as e:
        raise SlmError(f"cannot read {weights}: {e.strerror or e}") from e
    try:
        with safe_open(str(weights), framework="pt") as f:
            header = {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise SlmError(f"{weights} is damaged or truncated: {e}") from e
    for key, (_, kind) in header.items():
        if kind not in WEIGHT_DTYPE_BYTES:
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
    try:
        missing = not weights.is_file()
    except OSError as e:
        raise SlmError(f"cannot read {weights}: {e.strerror or e}") from e
    if missing:
        raise SlmError(f"{weights} is missing")
    header = _read_header(weights)
    layers = len({k.split(".")[2] for k in header if k.startswith("transformer.h.")})
    if info.config.n_layer > layers:  # before building even a shapes-only model of n_layer blocks
        raise SlmError(f"{weights} does not match model.toml: missing transformer.h.{layers} "
                       f"(n_layer = {info.config.n_layer}, the file holds {layers} layers)")
    check_fits(f"{info.path / META} ({info.n_params:,} parameters, context {info.config.block_size})",
               inference_bytes(info.config, weight_bytes=max(WEIGHT_DTYPE_BYTES[d] for _, d in header.values())), device)
    # One intra-op thread for the rest: on a busy machine (a training run beside it) the second thread of each
    # op waits for a core, and the finiteness sums of the default model took 1.08 s on 2 threads against 0.07
    # on one (wall clock, 2-core AMD EPYC, load average 9); the tensors are far too small to gain from two.
    with threads_context(1):
        return _load_weights(info, tokenizer, weights, header, device, dtype)


def _load_weights(info: ModelInfo, tokenizer: Tokenizer, weights: Path, header: dict[str, tuple[tuple[int, ...], str]],
                  device: str | torch.device, dtype: torch.dtype) -> LoadedModel:
    # The model the weights load into gives the shapes to check them against. Its parameters are made on the
    # meta device (a module's device argument, not the `with torch.device("meta")` mode, which imports torch's
    # compiler stack: 1.5 s of start-up), so no random initialisation is computed only to be overwritten
    # (0.12 s of CPU, 0.3-0.4 s of wall clock on the loaded 2-core machine); the file's tensors are assigned.
    model = GPT(info.config, device="meta")
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
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
        # One float32 sum per tensor is finite when every value is (the exact check runs only when it is not: a
        # sum of huge finite values may overflow); isfinite().all() on every bf16 tensor took 0.8 s of start-up.
        if (tensor.is_floating_point() and not torch.isfinite(tensor.sum(dtype=torch.float32))
                and not torch.isfinite(tensor).all()):
            raise SlmError(f"{weights}: {key} holds NaN or infinite values")
    model.load_state_dict(state, strict=False, assign=True)
    if info.config.tie_embeddings:  # assign replaced the embedding's parameter: tie the head to the new one
        model.lm_head.weight = model.transformer.wte.weight
    # assign keeps the file's dtype (bf16 for the bundled model), so the dtype is set on the module itself.
    model.to(device=device, dtype=dtype).eval()
    return LoadedModel(model=model, tokenizer=tokenizer, info=info)
