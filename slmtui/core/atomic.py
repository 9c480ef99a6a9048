"""Atomic file writes: a crash leaves the old file or the new one, never half of one.

``write_regular_file`` is for a path a person named (an export): it writes regular files only, and
replaces one only when asked.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from slmtui.core.errors import SlmError


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file beside ``path``, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make the file private to this user
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_regular_file(path: Path, data: bytes, *, replace: bool) -> Path:
    """Write ``data`` as the regular file ``path``, atomically; for exports, whose path a person typed.

    Only a regular file is ever written or replaced: a link, FIFO, device or folder at ``path`` is refused
    (renaming over it would swap a user's link or a device node for a plain file), and an existing file
    is replaced only with ``replace``. Without ``replace`` the new file is linked into place, which fails
    if anything appeared there meanwhile, so not even a race overwrites a file. Raises SlmError (exit 2).
    """
    path = Path(os.path.abspath(Path(path).expanduser()))
    _check_regular_target(path, replace=replace)
    if not path.parent.is_dir():
        raise SlmError(f"cannot write {path}: the folder {path.parent} does not exist")
    mode = path.stat().st_mode & 0o777 if path.exists() else None  # a replaced file keeps its permissions
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise SlmError(f"cannot write {path}: {e.strerror or e}") from e
    try:
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _check_regular_target(path, replace=replace)  # again, at the last moment
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails with EEXIST rather than replace what appeared meanwhile
            except FileExistsError as e:
                raise SlmError(f"{path} already exists: add --force to replace it") from e
            except OSError:  # a file system without hard links: the check above is the guard
                os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        raise SlmError(f"cannot write {path}: {e.strerror or e}") from e
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def _check_regular_target(path: Path, *, replace: bool) -> None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise SlmError(f"cannot write {path}: {e.strerror or e}") from e
    if stat.S_ISLNK(mode):
        raise SlmError(f"{path} is a symbolic link: an export never replaces one (write to the file itself, "
                       f"or choose another name)")
    if stat.S_ISDIR(mode):
        raise SlmError(f"{path} is a folder: give a file name")
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"
        raise SlmError(f"{path} is {kind}: an export writes regular files only")
    if not replace:
        raise SlmError(f"{path} already exists: add --force to replace it")


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; a file system that cannot fsync a folder is left as it is."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
