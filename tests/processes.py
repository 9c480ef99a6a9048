"""What the tests of the decoding child ask of a process: whether it is still there."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """Whether a process with this id exists at all (a zombie counts: it was not reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
