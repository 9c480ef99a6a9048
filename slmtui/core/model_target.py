"""Where a model folder may be written: the one guard every writer of a model folder asks first.

``check_model_target`` allows nothing there yet, an empty folder, or a proven model folder (``is_model_folder``)
the caller was asked to replace; never a file, a link, someone's notes, the corpus or a folder that holds the
user's data.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from slmtui.core import paths
from slmtui.core.errors import SlmError
from slmtui.core.model_folder import is_model_folder


def target_path(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute with its folders' links resolved but not a link at its last component,
    so that ``check_model_target`` sees (and refuses) a link rather than the folder it points to."""
    p = Path(os.path.abspath(Path(path).expanduser()))
    return p.parent.resolve() / p.name if p.name else p


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a folder"


def _is_within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_model_target(
    path: str | os.PathLike[str],
    *,
    replace_model: bool,
    corpus: str | os.PathLike[str] | None = None,
    how_to_replace: str = "it is replaced only when you ask for that",
) -> Path:
    """The one rule for where a model folder may be written; returns ``path`` normalised (``target_path``).

    Allowed: nothing there yet, an empty folder, or a proven model folder (``is_model_folder``) when
    ``replace_model`` says the user asked to replace it (``--resume``, ``--force``) or this run wrote it.
    Refused, with an SlmError (exit 2) that names the path: a link; a file, FIFO or device; a non-empty
    folder that is not a model folder; slmtui's data, models, config and cache folders, stories.db,
    config.toml and any folder that holds one of them; the corpus, a folder inside it or one holding it;
    and a model folder nobody asked to replace (``how_to_replace`` tells the user how to ask).
    Every check only reads: a refused run has touched nothing.
    """
    target = target_path(path)
    try:
        return _check_model_target(target, replace_model=replace_model, corpus=corpus, how_to_replace=how_to_replace)
    except OSError as e:  # an unreadable folder on the way, a name too long: one line, nothing touched
        raise SlmError(f"cannot write a model at {target}: {e.strerror or e}"
                       + (f" ({e.filename})" if e.filename and str(e.filename) != str(target) else "")) from e


def _check_model_target(target: Path, *, replace_model: bool, corpus: str | os.PathLike[str] | None,
                        how_to_replace: str) -> Path:
    if target.is_symlink():
        raise SlmError(f"{target} is a symbolic link (to {os.readlink(target)}): a model is never written "
                       f"through a link; give the folder itself ({target.resolve()})")
    for label, kept in paths.user_files().items():
        kept = target_path(kept).resolve()
        if target == kept:
            raise SlmError(f"{target} is {label}: a model is never written there")
        if _is_within(kept, target):
            raise SlmError(f"{target} holds {label} ({kept}): a model is never written there")
    if corpus is not None:
        source = Path(corpus).expanduser().resolve()
        if target == source:
            raise SlmError(f"{target} is the corpus: a model is never written over its training text")
        if _is_within(source, target):
            raise SlmError(f"{target} holds the corpus ({source}): a model is never written there")
        if _is_within(target, source):
            raise SlmError(f"{target} is inside the corpus ({source}): write the model somewhere else")
    try:
        mode = target.lstat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        above = next(p for p in target.parents if os.path.lexists(p))  # "/" always exists
        if not above.is_dir():
            raise SlmError(f"cannot write a model at {target}: {above} is not a folder") from None
        return target
    except OSError as e:
        raise SlmError(f"cannot write a model at {target}: {e.strerror or e}") from e
    if not stat.S_ISDIR(mode):
        raise SlmError(f"{target} is {_kind(mode)}, not a model folder: it is never replaced by a model")
    try:
        with os.scandir(target) as entries:
            empty = next(entries, None) is None
    except OSError as e:
        raise SlmError(f"cannot read the folder {target}: {e.strerror or e}") from e
    if empty:
        return target
    if not is_model_folder(target):
        raise SlmError(f"{target} is not empty and is not a model folder: it is never replaced by a model "
                       "(choose a new or an empty folder)")
    if not replace_model:
        raise SlmError(f"{target} already holds a model: {how_to_replace}")
    return target
