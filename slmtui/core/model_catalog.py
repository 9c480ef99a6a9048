"""Managing the user's models folder: the names taken, a new name's check, rename, delete, add a folder from
elsewhere. The models screen and any command may use these; reading and writing one model is modeldir.py."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from slmtui.engine import paths
from slmtui.engine.errors import SlmError
from slmtui.engine.modeldir import ModelInfo, read_model_info


def model_folder_names() -> set[str]:
    """Every name taken in the user's models folder, readable model or not (a new model may not reuse one)."""
    base = paths.models_dir()
    if not base.is_dir():
        return set()
    return {p.name for p in base.iterdir() if not p.name.startswith(".")}


def check_model_name(name: str, *, base: Path | None = None) -> str | None:
    """Why ``name`` cannot be a new model's folder name in ``base`` (default: the models folder), or None."""
    base = paths.models_dir() if base is None else base
    if not paths.is_model_name(name):
        return f"“{name}”: use letters, digits, '.', '-' and '_' only"
    if (base / name).exists() or (base / name).is_symlink():
        return f"a model named “{name}” exists already"
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
