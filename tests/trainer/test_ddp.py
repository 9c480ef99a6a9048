"""The same loop under torchrun: 2 CPU processes (gloo), each on half of every global batch.

torchrun starts a launcher and two workers, each importing torch: 10-15 s on a busy 2-core machine,
so one run is checked for everything.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from slmtui.engine.model_io import load_model_dir
from trainer.cli import main
from trainer.events import CheckpointEvent, DoneEvent, StartEvent, StepEvent, from_json

from excerpts import book_excerpt

REPO = Path(__file__).resolve().parents[2]


def torchrun(args: list[str], *, extra_env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    path = [extra_env.pop("PYTHONPATH", None), str(REPO), os.environ.get("PYTHONPATH")]
    env = {**os.environ, **extra_env, "PYTHONPATH": os.pathsep.join(filter(None, path)), "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    with socket.socket() as s:  # a free port, so that parallel test runs never meet
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port), *args]
    # Its own process group: on a timeout the workers are killed with the launcher, not orphaned.
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"torchrun did not finish in {timeout} s")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    path = tmp_path / "willows.txt"
    path.write_text(book_excerpt("grahame-wind-in-the-willows.txt", 24_000), encoding="utf-8")
    return path


# Imported by every Python process that finds it on sys.path. In the workers (RANK is set) it logs
# each step's (step, horizon, learning rate) to lr-RANK.txt, so the test can compare the ranks'
# schedules while the command stays exactly `python -m torch.distributed.run ... -m trainer`.
LR_LOGGER = textwrap.dedent('''
    import os
    if os.environ.get("RANK") is not None and os.environ.get("SLMTUI_TEST_LR_LOG"):
        import trainer.loop as loop

        _log = open(os.path.join(os.environ["SLMTUI_TEST_LR_LOG"], "lr-" + os.environ["RANK"] + ".txt"), "w")
        _lr_at = loop.lr_at

        def lr_at(step, cfg, max_steps, warmup=None):
            lr = _lr_at(step, cfg, max_steps, warmup)
            print(step, max_steps, repr(lr), file=_log, flush=True)
            return lr

        loop.lr_at = lr_at
''')


@pytest.mark.slow
def test_two_processes_train_like_one_on_the_same_global_batch(corpus_file: Path, tmp_path: Path) -> None:
    """One torchrun run (with a time budget, the case where ranks could disagree) checked three ways.

    - Only rank 0 reports and writes: one model folder, each step reported once.
    - Its first loss is a single process's on the same global batch (2 x 4 rows = 1 x 8 rows).
    - Every rank follows the same schedule. With only --time-limit the horizon is estimated from the
      clock; each rank timing itself gave ranks different horizons, so different learning rates (the
      replicas drifted apart) and different last steps (one rank then waits for the other forever).
    """
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(LR_LOGGER, encoding="utf-8")
    models = tmp_path / "models"
    out = models / "ddp"
    common = ["--corpus", str(corpus_file), "--preset", "tiny", "--time-limit", "3s", "--progress", "jsonl"]
    proc = torchrun(["-m", "trainer", *common, "--batch-size", "4", "--out", str(out)],
                    extra_env={"PYTHONPATH": str(hook), "SLMTUI_TEST_LR_LOG": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    events = [from_json(line) for line in proc.stdout.splitlines()]

    # Only rank 0 reports: one start, each step once, one done.
    starts = [e for e in events if isinstance(e, StartEvent)]
    assert len(starts) == 1 and starts[0].batch_tokens == 2 * 4 * 64  # the global batch
    ddp = {e.step: e.loss for e in events if isinstance(e, StepEvent)}
    n = max(ddp)
    assert [e.step for e in events if isinstance(e, StepEvent)] == list(range(1, n + 1))
    assert [e.reason for e in events if isinstance(e, DoneEvent)] == ["time_limit"]
    assert [e.step for e in events if isinstance(e, CheckpointEvent)][-1] == n

    # Only rank 0 writes: one model folder, nothing temporary beside it.
    assert sorted(p.name for p in models.iterdir()) == ["ddp"]
    info = load_model_dir(out).info
    assert info.training["world_size"] == 2
    assert info.training["tokens_seen"] == n * 8 * 64

    # Both ranks took the same learning rate at every step.
    rank0 = (tmp_path / "lr-0.txt").read_text().splitlines()
    rank1 = (tmp_path / "lr-1.txt").read_text().splitlines()
    assert len(rank0) == n
    assert rank0 == rank1

    # One process with the same global batch: the same first loss (the same weights, the same rows).
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main([*common, "--max-steps", "3", "--batch-size", "8", "--out", str(tmp_path / "single")]) == 0
    single = {e.step: e.loss for e in map(from_json, buf.getvalue().splitlines()) if isinstance(e, StepEvent)}
    assert ddp[1] == pytest.approx(single[1], abs=1e-4)
