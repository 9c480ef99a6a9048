"""``chmod 000`` as a user other than root sees it, for tests that run as root (for whom chmod changes nothing).

Inside ``unreadable(path, ...)``: each path's own ``stat`` still works (its parent lists it), but opening or
listing it and reaching anything in it raises PermissionError (EACCES), through every call the code under test makes: os.stat,
os.lstat, os.listdir, os.scandir, os.open, io.open (pathlib's exists/is_dir/iterdir/read_text, os.walk, glob and
open all go through these). What is not Python's (safetensors' Rust, SQLite's C) is not covered: the code
checks with Python first, which is what these tests prove.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def unreadable(*folders: Path) -> Iterator[None]:
    roots = [os.path.abspath(f) for f in folders]

    def name(p: object) -> str | None:
        if isinstance(p, int):
            return None
        try:
            return os.path.abspath(os.fsdecode(p))  # type: ignore[arg-type]
        except TypeError:
            return None

    def inside(p: object) -> bool:
        s = name(p)
        return s is not None and any(s.startswith(r + os.sep) for r in roots)

    def listed(p: object) -> bool:
        s = name(p)
        return s is not None and (s in roots or inside(p))

    def deny(p: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(p))  # type: ignore[arg-type]

    def guard(real, test):  # type: ignore[no-untyped-def]
        def call(p=".", *a, **k):  # type: ignore[no-untyped-def]
            if test(p):
                deny(p)
            return real(p, *a, **k)

        return call

    with pytest.MonkeyPatch.context() as mp:
        for fn, test in (("stat", inside), ("lstat", inside), ("open", listed), ("listdir", listed),
                         ("scandir", listed)):
            mp.setattr(os, fn, guard(getattr(os, fn), test))
        mp.setattr(io, "open", guard(io.open, listed))  # a file named is itself unreadable (chmod 000 on it)
        mp.setattr(builtins, "open", guard(builtins.open, listed))
        yield
