"""What tests ask of processes: whether one is still there (the decoding child), how many cores this one may use."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """Whether a process with this id exists at all (a zombie counts: it was not reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def cores_per_worker() -> int:
    """The cores one test process may use: all of them alone, its share beside the other pytest-xdist workers."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, (os.cpu_count() or 1) // workers)
