"""A snapshot of a folder tree, to prove that a refused command changed nothing in it.

``snapshot(root)`` records every path under ``root`` (and ``root`` itself, as ".") without following links:
its kind, and for a file its bytes' sha256 and permission bits, for a link its target. With ``inodes`` (the
default) it also records each entry's inode, so that a file or folder replaced by an identical copy (the
rename-over that data loss comes from) counts as a change too.

    before = snapshot(tmp_path)
    ... run the command that must refuse ...
    assert_unchanged(before, snapshot(tmp_path))

``changes(before, after)`` lists the differences as lines for people, for an assertion message.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

Entry = tuple[object, ...]
Snapshot = dict[str, Entry]


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "link"), (stat.S_ISDIR, "dir"), (stat.S_ISREG, "file"),
                       (stat.S_ISFIFO, "fifo"), (stat.S_ISCHR, "char-device"), (stat.S_ISBLK, "block-device"),
                       (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return f"mode-{stat.S_IFMT(mode):o}"


def _entry(path: Path, *, inodes: bool) -> Entry:
    st = path.lstat()
    kind = _kind(st.st_mode)
    ino = (st.st_ino,) if inodes else ()
    if kind == "link":
        return ("link", os.readlink(path), *ino)
    if kind == "file":
        return ("file", hashlib.sha256(path.read_bytes()).hexdigest(), stat.S_IMODE(st.st_mode), *ino)
    if kind in ("char-device", "block-device"):
        return (kind, st.st_rdev, *ino)
    return (kind, stat.S_IMODE(st.st_mode), *ino)  # a folder, FIFO or socket: never opened (a FIFO would block)


def snapshot(root: Path, *, inodes: bool = True) -> Snapshot:
    """Every path under ``root`` (relative, POSIX form; ``root`` itself is "."): kind, content hash, link target.

    A ``root`` that does not exist gives an empty snapshot, so "nothing was created" is ``snapshot(p) == {}``.
    """
    root = Path(root)
    if not os.path.lexists(root):
        return {}
    out: Snapshot = {".": _entry(root, inodes=inodes)}
    if root.is_symlink() or not root.is_dir():
        return out
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in sorted(dirs + files):
            path = Path(folder) / name
            out[path.relative_to(root).as_posix()] = _entry(path, inodes=inodes)
    return out


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    """The differences, one line each: "removed x", "added y", "changed z: (...) -> (...)"."""
    lines = [f"removed {p}" for p in sorted(before.keys() - after.keys())]
    lines += [f"added {p}" for p in sorted(after.keys() - before.keys())]
    lines += [f"changed {p}: {before[p]} -> {after[p]}" for p in sorted(before.keys() & after.keys())
              if before[p] != after[p]]
    return lines


def assert_unchanged(before: Snapshot, after: Snapshot) -> None:
    diff = changes(before, after)
    assert not diff, "the tree changed:\n" + "\n".join(diff)
