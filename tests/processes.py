"""What tests ask of processes: whether one is still there (the decoding child), how many cores this one may use."""

from __future__ import annotations

import os

from slmtui.engine.threads import usable_cores  # bound here, before the conftest's fixture replaces it for tests


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
    return max(1, usable_cores() // workers)
