"""kill -9 mid-generation loses at most the text of the last 2 seconds (the app commits every half second)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from slmtui.core import paths

CHILD = Path(__file__).with_name("kill_child.py")
STREAM_S = 2.5
"""How long the child streams before it is killed."""
MAX_LOSS_S = 2.0


def read_log(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by the kill
            break
    return out


def run_and_kill(log: Path, choices: int) -> float:
    """Start the child writing ``choices`` candidates, let it stream STREAM_S seconds, kill -9 it; when."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, str(CHILD), str(log), str(choices)], env=env, cwd=CHILD.parent,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while True:
            frames = read_log(log)
            if frames and time.time() - float(frames[0]["t"]) >= STREAM_S:  # type: ignore[arg-type]
                break
            assert child.poll() is None, f"the app exited early: {child.stderr.read().decode()[-2000:]}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the app never started streaming"
            time.sleep(0.05)
        killed_at = time.time()
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return killed_at


def check_passage(frames: list[dict[str, object]], passage: object, killed_at: float) -> None:
    """What the screen showed of ``passage`` against what stories.db kept: a prefix, short by at most 2 s."""
    mine = [f for f in frames if f["passage"] == passage]
    shown = "".join(str(f["text"]) for f in mine)
    with sqlite3.connect(paths.stories_db()) as db:  # WAL: the committed appends are replayed on open
        (saved,) = db.execute("SELECT text FROM passages WHERE id = ?", (passage,)).fetchone()
    assert shown and saved, "text was streamed and saved"
    # The worker saves what it made; the screen draws it a frame later: one is a prefix of the other.
    assert shown.startswith(saved) or saved.startswith(shown)
    lost = shown[len(saved):]
    print(f"passage {passage}: {len(shown)} characters shown, {len(saved)} saved, {len(lost)} lost")
    if lost:
        drawn = 0
        first_lost_at = None
        for f in mine:
            drawn += len(str(f["text"]))
            if drawn > len(saved):
                first_lost_at = float(f["t"])  # type: ignore[arg-type]
                break
        assert first_lost_at is not None
        assert killed_at - first_lost_at <= MAX_LOSS_S, (
            f"lost {len(lost)} characters shown since {killed_at - first_lost_at:.2f} s before the kill"
        )


def test_kill_9_mid_generation_loses_at_most_two_seconds(tiny_model_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "frames.jsonl"
    killed_at = run_and_kill(log, 1)
    frames = read_log(log)
    check_passage(frames, frames[0]["passage"], killed_at)


def test_kill_9_while_three_candidates_stream_keeps_each_and_the_branch(tiny_model_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "frames.jsonl"
    killed_at = run_and_kill(log, 3)
    frames = read_log(log)
    passages = sorted({f["passage"] for f in frames})  # type: ignore[type-var]
    assert len(passages) == 3, "three candidates were drawn"
    for passage in passages:
        check_passage(frames, passage, killed_at)
    with sqlite3.connect(paths.stories_db()) as db:
        parents = {db.execute("SELECT parent_id FROM passages WHERE id = ?", (p,)).fetchone()[0] for p in passages}
        (current,) = db.execute("SELECT current_passage_id FROM stories").fetchone()
        (author,) = db.execute("SELECT author FROM passages WHERE id = ?", (current,)).fetchone()
    assert len(parents) == 1 and parents == {current}, "the story is on the branch it was on: the candidates' parent"
    assert author == "user"
