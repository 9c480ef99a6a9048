"""The trainer as a child process, owned by the app rather than by a screen.

``TrainingSession`` starts ``python -m trainer ... --progress jsonl`` and follows its events; the training
screen only draws ``session.state``. Because the session belongs to the app, leaving the screen (to write
while a model trains) neither stops the run nor loses its history.

The trainer writes its events and its stderr to files under ``<cache>/runs/<id>/``, not to pipes, and runs in
its own session (``start_new_session=True``). So a run the user leaves going when they quit keeps writing
somewhere (a closed pipe would kill it at its next line), and the next ``slmtui`` finds it and follows it
again from the first line (``TrainingSession.reattach``). Following a file is a read every 50 ms on the event
loop: a few microseconds when nothing is new, never a blocking call.

No Textual in here: tests and the benchmark drive a session directly (``feed_line`` replays recorded events).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import trainer.events as trainer_events
from slmtui.core import paths
from slmtui.core.model_folder import METRICS
from slmtui.training.state import RunState, TrainRequest, read_history
from trainer.events import EvalEvent, SampleEvent, StartEvent, StepEvent

POLL_S = 0.05
"""How often the event file is read while the trainer runs."""
STDERR_TAIL_LINES = 8
TRAINER_NICENESS = 5
"""How much lower the trainer's CPU priority is than the app's."""


Listener = Callable[[RunState], None]


class TrainingSession:
    """The app's one training run at a time: start, follow, cancel, resume, reattach.

    ``listeners`` are called when the status changes (not on every step): the app uses one to say "training
    done" wherever the user is.
    """

    def __init__(self, *, command: list[str] | None = None, env: dict[str, str] | None = None,
                 poll_s: float = POLL_S) -> None:
        """``command`` runs the trainer (default: this Python's ``-m trainer``; tests give a fake one)."""
        self.command = command or [sys.executable, "-m", "trainer"]
        self.env = env
        self.poll_s = poll_s
        self.state = RunState()
        self.listeners: list[Listener] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._follow_task: asyncio.Task[None] | None = None
        self._detached = False

    # ------------------------------------------------------------------ control

    @property
    def running(self) -> bool:
        """Whether a trainer is being followed: from start until its process has exited and been read to the end
        (a little after its done event)."""
        task = self._follow_task
        return self.state.active or (task is not None and not task.done())

    async def start(self, request: TrainRequest) -> None:
        """Start the trainer for ``request`` and follow it; returns once the process exists."""
        if self.running:
            raise RuntimeError("a training run is already going")
        previous = self.state
        self.state = RunState(status="starting", request=request, started_at=time.time())
        if request.resume is not None and previous.out == request.resume:
            # The same run going on: keep its curve so the chart continues.
            self.state.train_loss, self.state.val_loss = previous.train_loss, previous.val_loss
        run_dir = _new_run_dir(request)
        self.state.run_dir = run_dir
        argv = [*self.command, *request.argv()]
        env = {**(self.env if self.env is not None else os.environ)}
        # The trainer package sits beside this one; the child finds it even when slmtui is not installed.
        root = str(Path(trainer_events.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        out = open(run_dir / "events.jsonl", "wb")  # noqa: SIM115 - handed to the child, closed below
        err = open(run_dir / "stderr.txt", "wb")  # noqa: SIM115
        try:
            # Forking a process that holds a loaded model can take tens of milliseconds: not on the event loop.
            proc = await asyncio.to_thread(
                subprocess.Popen, argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                start_new_session=True,  # its own process group: it outlives the app if the user says so
            )
        except OSError as e:
            self.state.error = f"could not start the trainer: {e}"
            self.state.status = "failed"
            self._changed()
            return
        finally:
            out.close()
            err.close()
        self._proc = proc
        self.state.pid = proc.pid
        try:
            # A little below the app: the trainer takes every core it is given, and on a small machine the
            # screen must still answer at once. Set before torch starts its threads, so they inherit it.
            os.setpriority(os.PRIO_PROCESS, proc.pid, min(19, os.getpriority(os.PRIO_PROCESS, 0) + TRAINER_NICENESS))
        except (AttributeError, OSError):  # no setpriority (Windows), or not allowed: run at the app's priority
            pass
        (run_dir / "run.json").write_text(json.dumps({"pid": proc.pid, "argv": argv, "started": self.state.started_at}))
        self._detached = False
        self._changed()
        self._follow_task = asyncio.create_task(self._follow(run_dir, proc.pid))

    def cancel(self) -> None:
        """SIGINT: the trainer saves the run (resumable) and exits. A second call gives up without saving."""
        if not self.running or self.state.pid is None:
            return
        try:
            os.kill(self.state.pid, signal.SIGINT)
        except ProcessLookupError:
            return
        if self.state.status != "stopping":
            self.state.status = "stopping"
            self._changed()

    async def wait(self, timeout: float | None = None) -> RunState:
        """Until the run ends (or ``timeout`` seconds pass)."""
        if self._follow_task is not None:
            await asyncio.wait({self._follow_task}, timeout=timeout)
        return self.state

    async def stop_and_wait(self, timeout: float = 120.0) -> RunState:
        """Cancel, and wait for the trainer to save and exit."""
        self.cancel()
        return await self.wait(timeout)

    def detach(self) -> None:
        """Stop following the run and leave the trainer going (the app is quitting; the next one reattaches)."""
        self._detached = True
        if self._follow_task is not None:
            self._follow_task.cancel()
            self._follow_task = None

    def kill(self) -> None:
        """SIGKILL, for tests and emergencies: nothing is saved."""
        if self.state.pid is not None and self.running:
            try:
                os.killpg(self.state.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    async def reattach(self) -> bool:
        """Follow a run a previous app left going in the background, if its trainer still runs."""
        if self.running:
            return False
        runs = paths.cache_dir() / "runs"
        found = list(runs.glob("*/run.json")) if runs.is_dir() else []
        candidates = sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
        for meta_file in candidates[:5]:
            try:
                meta = json.loads(meta_file.read_text())
                pid = int(meta["pid"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if not _is_trainer(pid):
                continue
            self.state = RunState(status="starting", pid=pid, run_dir=meta_file.parent,
                                  started_at=float(meta.get("started", 0.0)))
            self._proc = None
            self._changed()
            self._follow_task = asyncio.create_task(self._follow(meta_file.parent, pid))
            return True
        return False

    # ------------------------------------------------------------------ events

    def feed_line(self, line: str | bytes) -> None:
        """One line of the trainer's stdout. Lines that are not events (a stray print) are ignored."""
        if isinstance(line, bytes):
            line = line.decode("utf-8", errors="replace")
        line = line.strip()
        if not line:
            return
        try:
            event = trainer_events.from_json(line)
        except (ValueError, TypeError):
            return
        before = self.state.status
        if self.state.status == "stopping" and isinstance(event, (StartEvent, StepEvent, EvalEvent, SampleEvent)):
            status = "stopping"
            self.state.apply(event)
            self.state.status = status
        else:
            self.state.apply(event)
        if isinstance(event, StartEvent) and event.start_step and not self.state.train_loss:
            self._load_history(Path(event.path), event.start_step)
        if self.state.status != before:
            self._notify()

    def _load_history(self, folder: Path, up_to: int) -> None:
        """A resumed run followed from its start (reattached, or resumed in an earlier app): the curve before
        ``up_to`` comes from the model folder's metrics.jsonl, read off the event loop when there is one."""
        state = self.state

        def merge(history: tuple[list[tuple[int, float]], list[tuple[int, float]]]) -> None:
            train, val = history
            if self.state is state:
                state.train_loss[:0] = [p for p in train if p[0] <= up_to]
                state.val_loss[:0] = [p for p in val if p[0] <= up_to]
                state.version += 1

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            merge(read_history(folder / METRICS))
            return
        future = loop.run_in_executor(None, read_history, folder / METRICS)
        future.add_done_callback(lambda f: merge(f.result()) if not f.exception() else None)

    def _changed(self) -> None:
        self.state.version += 1
        self._notify()

    def _notify(self) -> None:
        for listener in list(self.listeners):
            listener(self.state)

    async def _follow(self, run_dir: Path, pid: int) -> None:
        events, errors = run_dir / "events.jsonl", run_dir / "stderr.txt"
        state = self.state
        buffer = b""
        err_buffer = b""
        try:
            with open(events, "rb") as f, open(errors, "rb") as ferr:
                while True:
                    chunk = f.read(1 << 16)
                    err_chunk = ferr.read(1 << 16)
                    if err_chunk:
                        err_buffer = self._stderr_lines(err_buffer + err_chunk)
                    if chunk:
                        *lines, buffer = (buffer + chunk).split(b"\n")
                        for line in lines:
                            self.feed_line(line)
                        await asyncio.sleep(0)  # a long backlog is read in slices, never in one block
                        continue
                    if self._exited(pid):
                        rest = f.read()
                        for line in (buffer + rest).split(b"\n"):
                            self.feed_line(line)
                        break
                    await asyncio.sleep(self.poll_s)
        except asyncio.CancelledError:
            raise
        except OSError as e:
            state.error = f"lost the trainer's output: {e}"
        if self.state is state:
            self._finish(errors)

    def _stderr_lines(self, data: bytes) -> bytes:
        """Keep the trainer's warnings (skipped files and the like) as they come; returns an unfinished line."""
        *lines, rest = data.split(b"\n")
        for raw in lines:
            text = raw.decode("utf-8", errors="replace").strip()
            if text.startswith("warning:"):
                self.state.warnings.append(text.removeprefix("warning:").strip())
                self.state.version += 1
        return rest

    def _exited(self, pid: int) -> bool:
        if self._proc is not None:
            code = self._proc.poll()
            if code is not None:
                self.state.returncode = code
                return True
            return False
        return not _is_trainer(pid)  # a reattached run is not our child: no exit code

    def _finish(self, stderr_file: Path) -> None:
        state = self.state
        code = state.returncode
        ok = state.done is not None and (code is None or code in (0, 130))
        if state.status == "failed" or not ok:
            state.status = "failed"
            if state.error is None:
                tail = _tail_lines(stderr_file, STDERR_TAIL_LINES)
                how = f"the trainer exited with code {code}" if code is not None else "the trainer stopped"
                state.error = "\n".join(tail) if tail else f"{how} without finishing"
        self._changed()


def _new_run_dir(request: TrainRequest) -> Path:
    label = request.resume.name if request.resume is not None else (request.name or "run")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = paths.cache_dir() / "runs"
    base.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        candidate = base / f"{stamp}-{label}" if n == 0 else base / f"{stamp}-{label}-{n}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot make a run folder in {base}")


def _tail_lines(path: Path, n: int) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    # The trainer's own "slm-train: error: ..." line is the message; a traceback's last lines otherwise.
    for line in reversed(lines):
        if line.startswith("slm-train: error:"):
            return [line.removeprefix("slm-train: error:").strip()]
    return lines[-n:]


def _is_trainer(pid: int) -> bool:
    """Whether ``pid`` is alive and still a trainer (a reused pid is not mistaken for one)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): trust the pid
    if not cmdline:
        return False  # a zombie
    return b"trainer" in cmdline
