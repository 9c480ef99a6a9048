"""The user's models, by name: the user's models folder, then the bundled ones; finding one, listing them all
(and the folders that fail to read), and managing the folder: a new name's check, rename, delete, adding a
folder from elsewhere. One model's format is model_folder.py; its tensors, slmtui.engine.model_io.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from slmtui.core import paths
from slmtui.core.errors import SlmError
from slmtui.core.model_folder import META, ModelInfo, read_model_info, recover_swap, remove_leftovers

DEFAULT_MODEL = "default"
"""The model a command uses when none is named: the user's own "default", else the bundled one."""


def bundled_default() -> Path:
    return paths.BUNDLED_MODELS_DIR / DEFAULT_MODEL


def resolve_model(name_or_path: str | os.PathLike[str] | None) -> Path:
    """A model name (in the user's models folder, then the bundled ones) or a folder path."""
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    text = str(name_or_path)
    try:
        return _resolve(text)
    except OSError as e:  # a name longer than a file name may be, a folder that may not be read
        if e.errno == errno.ENAMETOOLONG:
            raise SlmError(f"no model named {text[:40] + '…' if len(text) > 40 else text!r}: a name of "
                           f"{len(text)} characters is longer than a folder's name may be") from e
        raise SlmError(f"cannot read {e.filename or text}: {e.strerror or e}") from e


def _resolve(text: str) -> Path:
    candidate = Path(text).expanduser()
    if os.sep in text or text.startswith(".") or (candidate.is_dir() and (candidate / META).exists()):
        recover_swap(candidate.resolve())
        if not candidate.is_dir():
            raise SlmError(f"no model folder at {candidate}")
        return candidate.resolve()
    for base in (paths.models_dir(), paths.BUNDLED_MODELS_DIR):
        recover_swap(base / text)
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
        try:
            if not base.is_dir():
                continue
            if base != paths.BUNDLED_MODELS_DIR:
                remove_leftovers(base)
            folders = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError as e:  # the models folder itself unreadable: shown as broken, the bundled ones still listed
            broken.append(BrokenModel(base, f"cannot read {e.filename or base}: {e.strerror or e}",
                                      bundled=base == paths.BUNDLED_MODELS_DIR))
            continue
        for folder in folders:
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


def model_folder_names() -> set[str]:
    """Every name taken in the user's models folder, readable model or not (a new model may not reuse one)."""
    base = paths.models_dir()
    try:
        if not base.is_dir():
            return set()
        return {p.name for p in base.iterdir() if not p.name.startswith(".")}
    except OSError as e:
        raise SlmError(f"cannot read the models folder {base}: {e.strerror or e}") from e


def check_model_name(name: str, *, base: Path | None = None) -> str | None:
    """Why ``name`` cannot be a new model's folder name in ``base`` (default: the models folder), or None."""
    base = paths.models_dir() if base is None else base
    if not paths.is_model_name(name):
        return f"“{name}”: use letters, digits, '.', '-' and '_' only"
    try:
        if (base / name).exists() or (base / name).is_symlink():
            return f"a model named “{name}” exists already"
    except OSError as e:
        return f"“{name[:40]}”: {e.strerror or e}"
    return None


def rename_model(info: ModelInfo, new_name: str) -> Path:
    """Rename a model folder in one ``os.replace`` (a link is renamed, not its target)."""
    if info.bundled:
        raise SlmError("the bundled model cannot be renamed")
    base = info.path.parent
    problem = check_model_name(new_name, base=base)
    if problem:
        raise SlmError(problem)
    target = base / new_name
    try:
        os.replace(info.path, target)  # checked above that nothing is there: a folder is never replaced
    except OSError as e:
        raise SlmError(f"cannot rename {info.path} to {new_name}: {e.strerror or e}") from e
    return target


def delete_model(info: ModelInfo) -> None:
    """Remove a model: a linked folder loses its link only; a folder of ours is hidden at once, then removed."""
    if info.bundled:
        raise SlmError("the bundled model cannot be deleted")
    path = info.path
    try:
        if path.is_symlink():
            path.unlink()
            return
        gone = Path(tempfile.mkdtemp(prefix=f".{path.name}.deleted-", dir=path.parent))
        gone.rmdir()
        os.replace(path, gone)  # atomic: the model vanishes from every listing in one step
    except OSError as e:
        raise SlmError(f"cannot delete {path}: {e.strerror or e}") from e
    shutil.rmtree(gone, ignore_errors=True)


def add_model_folder(folder: Path) -> Path:
    """Link a model folder from elsewhere into the models folder, under its own name (made unique), so every part
    of slmtui finds it by name and deleting it removes the link only, never the user's folder."""
    folder = Path(folder).expanduser().resolve()
    read_model_info(folder)  # raises SlmError, in words, when it is not a model folder
    base = paths.models_dir()
    base.mkdir(parents=True, exist_ok=True)
    if folder.parent == base.resolve():
        raise SlmError(f"{folder.name} is in the models folder already")
    stem = folder.name if paths.is_model_name(folder.name) else "model"
    name, n = stem, 2
    while (base / name).exists() or (base / name).is_symlink():
        name, n = f"{stem}-{n}", n + 1
    link = base / name
    try:
        link.symlink_to(folder, target_is_directory=True)
    except OSError as e:
        raise SlmError(f"cannot add {folder}: {e.strerror or e}") from e
    return link
