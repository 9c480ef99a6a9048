"""Decoding in a child process: ``RemoteGenerator.stream`` yields what ``Generator.stream`` does, from another process.

Why: in the app the engine shared a process with the Textual UI, and so the GIL. A decode step is ~100 small
torch ops, each releasing and re-taking the GIL, while the UI thread renders: the two convoy, and the app wrote
at 25-42% of the engine's pace with N=4 (tests/bench/bench_ui_latency.py). A child process has its own GIL; the
app's worker thread only waits on a pipe and unpacks a batch of events every few milliseconds.

The child (``_child_main``, started with the ``spawn`` context: never a fork of a process holding threads and
torch state) loads the same model folder on the same device and builds its own ``Generator`` (its own path
calibrations of path and thread count). The protocol, one pickled tuple a message over a ``multiprocessing`` Pipe:

    parent -> child   ("stream", prompt, sampling, n, memory, page)   (prompt, memory: text or token ids)   ("sampling", s)   ("stop",)
                      ("path_for", n)   ("threads_for", n)       ("close",)
    child -> parent   ("ready", path)   ("tokens", [TokenEvent, ...])   ("done", after_stop)
                      ("answer", value)                              ("error", message)

The parent reads its ``sampling`` callable and ``should_stop`` as events arrive (and every ``POLL_S`` while
none do) and sends a change at once; the child reads its pipe, without blocking, before every token it draws,
so a change applies to the next token it draws and a stop ends it within one token. Each event carries the
Sampling it was drawn with. The child exits on ("close",) and on EOF: when the parent closes the pipe or dies.

``spawn`` runs the parent's ``__main__`` script again in the child (as ``__mp_main__``): a script that opens
the app must keep its work under ``if __name__ == "__main__":``, as the ``slmtui`` script, ``python -m slmtui``
and the benches do; otherwise each child would start the app again.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slmtui.core.errors import SlmError, gist
from slmtui.core.token_events import TokenEvent
from slmtui.engine.threads import AUTO, ThreadCount

if TYPE_CHECKING:  # types only: a Sampling is handed in, never made here
    from slmtui.core.sampling import Sampling
    from slmtui.engine.generate import SamplingSource

FLUSH_S = 0.004
"""The child sends its events at most this often (and at the end): one pipe message per few ms, not per token."""
POLL_S = 0.05
"""While no events arrive (a long prefill), the parent still passes on a stop or a sampling change this often."""
STOP_WAIT_S = 10.0
"""How long the parent waits for the child to confirm a stop before it ends the child (a new one starts next time)."""
CLOSE_WAIT_S = 1.0
"""How long ``close`` waits for the child to exit on its own before it terminates it."""


_TRACKER_LOCK = threading.Lock()


def _ensure_tracker() -> None:
    """Start multiprocessing's resource tracker (spawn needs it) with a usable stderr.

    The tracker is handed ``sys.stderr.fileno()``; inside a Textual app stderr is captured and says -1, which
    fails every spawn ("bad value(s) in fds_to_keep"). So while it starts, stderr is /dev/null.
    """
    from multiprocessing import resource_tracker

    try:
        usable = sys.stderr.fileno() >= 0
    except Exception:  # no fileno at all: the tracker skips it
        usable = True
    if usable:
        return
    with _TRACKER_LOCK, open(os.devnull, "w") as devnull:
        saved, sys.stderr = sys.stderr, devnull
        try:
            resource_tracker.ensure_running()
        finally:
            sys.stderr = saved


def _error_text(e: Exception) -> str:
    """What the parent is told of an error in the child: an SlmError's message, or an unexpected exception in
    words, on one line (the app shows it in the status bar)."""
    return e.message if isinstance(e, SlmError) else f"{type(e).__name__}: {gist(e, 300)}"


class RemoteGenerator:
    """A ``Generator`` in a child process, streamed from this one. One caller at a time (the writing worker).

    ``start()`` returns at once; the child imports torch and loads the model meanwhile (seconds), and ``ready``
    says when it can write. ``stream`` and ``path_for`` start a child and wait for it when none is running
    (the first call after the child died starts a fresh one).
    """

    def __init__(
        self, model_dir: str | os.PathLike[str], *, device: str = "cpu", path: str | None = None,
        num_threads: ThreadCount = AUTO,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.device = device
        self.path = path
        """The decoding path to run (None: the child measures the fastest, as ``Generator`` does)."""
        self.num_threads = num_threads
        self.error: str | None = None
        """Why the last child could not start or stopped (None while all is well)."""
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._ready = threading.Event()
        self._started = threading.Event()
        """Set once the last start has an outcome (ready, or failed)."""
        self._lock = threading.RLock()
        self._streaming = False
        self._close_after_stream = False
        self._closed = False

    # --- the child's life ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start a child in the background unless one is running or starting."""
        with self._lock:
            if self._closed:
                raise SlmError("the generation process was closed")
            if self._process is not None and self._process.is_alive() and not self._started.is_set():
                return  # starting
            if self._ready.is_set() and self._process is not None and self._process.is_alive():
                return
            self._reap()
            self.error = None
            self.failed_to_start = False
            self._ready.clear()
            self._started.clear()
            _ensure_tracker()
            ctx = multiprocessing.get_context("spawn")
            parent, child = ctx.Pipe()
            process = ctx.Process(
                target=_child_main, args=(child, str(self.model_dir), self.device, self.path, self.num_threads),
                name="slmtui-decode", daemon=True,
            )
            process.start()
            child.close()  # only the child holds its end: the parent's exit or close is its EOF
            self._process, self._conn = process, parent
        threading.Thread(target=self._await_ready, args=(parent,), name="slmtui-decode-start", daemon=True).start()

    def _await_ready(self, conn: Connection) -> None:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            message = ("error", "the generation process stopped while it started")
        if message[0] == "ready":
            self.ready_path = message[1]
            self._ready.set()
        else:
            self.error = message[1]
            self.failed_to_start = True
            self._drop()
        self._started.set()

    @property
    def ready(self) -> bool:
        """A child is running and waiting for work."""
        return self._ready.is_set() and self._process is not None and self._process.is_alive()

    @property
    def starting(self) -> bool:
        return self._process is not None and not self._started.is_set()

    @property
    def restartable(self) -> bool:
        """No child runs or starts, and one may: not closed, and the last one did not fail to start (a model
        the child cannot load would fail again; one that died after it was ready is worth a fresh start)."""
        process = self._process
        idle = process is None or (self._started.is_set() and not process.is_alive())
        return not self._closed and not self.failed_to_start and idle

    failed_to_start: bool = False
    """The last child could not load the model or build its generator (``error`` says why)."""

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the current start has an outcome; True when the child is ready (False when none started)."""
        if self._process is None:
            return False
        self._started.wait(timeout)
        return self.ready

    def _ensure(self) -> Connection:
        if not self.ready:
            self.start()
            if not self.wait_ready() or self._conn is None:
                raise SlmError(self.error or "the generation process did not start")
        return self._conn  # type: ignore[return-value]

    def _drop(self) -> None:
        """Forget the current child: close our end (its EOF), give it a moment to exit, end it if it does not
        (at once while it is still starting: it reads nothing then), and reap it."""
        with self._lock:
            ready = self._ready.is_set()
            self._ready.clear()
            conn, process = self._conn, self._process
            self._conn = self._process = None
        if conn is not None:
            conn.close()
        if process is not None:
            if ready:
                process.join(CLOSE_WAIT_S)
            if process.is_alive():
                process.terminate()
                process.join(CLOSE_WAIT_S)
            if process.is_alive():
                process.kill()
                process.join()
            process.close()

    def _reap(self) -> None:
        if self._process is not None and not self._process.is_alive():
            self._drop()

    def _died(self, while_doing: str) -> SlmError:
        code = self._process.exitcode if self._process is not None else None
        return self._lost(f"the generation process stopped {while_doing}" + (f" (exit code {code})" if code else ""))

    def _lost(self, error: str) -> SlmError:
        """Forget the child, remember why, and say so to the caller."""
        self._drop()
        self.error = error
        return SlmError(error)

    def close(self) -> None:
        """End the child (at once, or when the stream in progress ends); no process is left behind."""
        with self._lock:
            self._closed = True
            if self._streaming:
                self._close_after_stream = True
                return
        conn = self._conn
        if conn is not None:
            try:
                conn.send(("close",))
            except OSError:
                pass
        self._drop()

    # --- work ---------------------------------------------------------------------------------------------------

    def path_for(self, n: int) -> str:
        """The decoding path the child's generator runs ``n`` streams on (not while a stream is in progress)."""
        return str(self._ask("path_for", n))

    def threads_for(self, n: int) -> int | None:
        """The intra-op thread count the child's generator decodes ``n`` streams with (as ``path_for``)."""
        answer = self._ask("threads_for", n)
        return None if answer is None else int(answer)

    def _ask(self, question: str, n: int) -> object:
        conn = self._ensure()
        try:
            conn.send((question, n))
            message = conn.recv()
        except (EOFError, OSError) as e:
            raise self._died(f"while answering {question}") from e
        if message[0] == "error":
            raise SlmError(message[1])
        return message[1]

    def stream(
        self,
        prompt: str | Sequence[int],
        sampling: SamplingSource,
        *,
        n: int = 1,
        memory: str | Sequence[int] = "",
        should_stop: Callable[[], bool] | None = None,
        page: str | None = None,
    ) -> Iterator[TokenEvent]:
        """``Generator.stream`` in the child: the same events, each with the Sampling it was drawn with.

        ``sampling`` is one source for every stream (the app's case). A child error is an SlmError with its
        message; a child that dies is one too, and the next call starts a fresh child.
        """
        if n < 1:
            raise SlmError(f"n must be at least 1, got {n}")
        source: Callable[[], Sampling] = sampling if callable(sampling) else (lambda: sampling)  # type: ignore[assignment,return-value]
        return self._stream(prompt if isinstance(prompt, str) else list(prompt), source, n,
                            memory if isinstance(memory, str) else list(memory), should_stop, page)

    def _stream(
        self, prompt: str | list[int], source: Callable[[], Sampling], n: int, memory: str | list[int],
        should_stop: Callable[[], bool] | None, page: str | None = None,
    ) -> Iterator[TokenEvent]:
        conn = self._ensure()
        with self._lock:
            self._streaming = True
        current = source()
        stopping = finished = False

        def check() -> None:
            """Pass on a stop or a changed sampling (parent side: the panel is read here)."""
            nonlocal current, stopping
            if stopping:
                return
            if should_stop is not None and should_stop():
                conn.send(("stop",))
                stopping = True
                return
            s = source()
            if s is not current:
                if s != current:
                    conn.send(("sampling", s))
                current = s

        try:
            conn.send(("stream", prompt, current, n, memory, page))
            while True:
                check()
                if not conn.poll(STOP_WAIT_S if stopping else POLL_S):
                    if stopping:
                        raise self._lost("the generation process did not stop; a fresh one starts next time")
                    continue
                message: tuple[Any, ...] = conn.recv()
                kind = message[0]
                if kind == "tokens":
                    if stopping:
                        continue  # made before the child read the stop: dropped, as if never drawn
                    for event in message[1]:
                        yield event
                        check()
                        if stopping:
                            break
                elif kind == "done":
                    finished = True
                    self.after_stop = message[1]
                    return
                elif kind == "error":
                    finished = True
                    raise SlmError(message[1])
        except (EOFError, OSError) as e:
            finished = True
            raise self._died("while writing") from e
        finally:
            if not finished and self._conn is conn:
                self._finish(conn)  # the caller closed the stream early: stop the child and wait until it is idle
            with self._lock:
                self._streaming = False
                close = self._close_after_stream
            if close:
                self._close_after_stream = False
                self.close()

    def _finish(self, conn: Connection) -> None:
        """Stop the child's stream and read up to its end, so the next request finds it idle."""
        try:
            conn.send(("stop",))
            deadline = time.monotonic() + STOP_WAIT_S
            while conn.poll(max(0.0, deadline - time.monotonic())):
                message = conn.recv()
                if message[0] in ("done", "error"):
                    if message[0] == "done":
                        self.after_stop = message[1]
                    return
            self._drop()  # it did not stop: end it
        except (EOFError, OSError):
            self._drop()

    after_stop: int = 0
    """Tokens the child drew after it read the last stop (its loop checks before every token: 0)."""
    ready_path: str | None = None
    """The path the child's generator chose for one stream, as it said when it was ready."""


# --- the child --------------------------------------------------------------------------------------------------


def _child_main(conn: Connection, model_dir: str, device: str, path: str | None, num_threads: ThreadCount) -> None:
    """The child's body: load the model, say ready, then serve requests until close or EOF."""
    # The app owns the terminal: the child writes nothing to it (errors go back over the pipe), and Ctrl+C in
    # the terminal is the app's to handle; the child ends when the app closes the pipe or exits.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A session of its own: where the kernel groups CPU time by session (Linux's autogroup, on by default),
    # the decoder then gets its own share instead of splitting the app's with the UI thread. Measured on a
    # busy two-core machine (a training run beside it): the child got 0.64 s of CPU a second, the UI 0.23,
    # together the one share an engine alone gets (/proc/sys/kernel/sched_autogroup_enabled).
    if hasattr(os, "setsid"):
        try:
            os.setsid()
        except OSError:
            pass
    try:
        from slmtui.engine.generate import Generator
        from slmtui.engine.model_io import load_model_dir

        loaded = load_model_dir(Path(model_dir), device=device)
        generator = Generator(loaded.model, loaded.tokenizer, num_threads=num_threads, path=path)
        conn.send(("ready", generator.path_for(1)))
    except (EOFError, OSError):
        return
    except Exception as e:
        _send_quietly(conn, ("error", _error_text(e)))
        return
    try:
        _serve(conn, generator)
    except (EOFError, OSError):
        return


def _send_quietly(conn: Connection, message: tuple[Any, ...]) -> None:
    try:
        conn.send(message)
    except OSError:
        pass


def _serve(conn: Connection, generator: Any) -> None:
    while True:
        message = conn.recv()
        kind = message[0]
        if kind == "close":
            return
        if kind in ("path_for", "threads_for"):
            try:
                conn.send(("answer", getattr(generator, kind)(message[1])))
            except Exception as e:
                conn.send(("error", _error_text(e)))
        elif kind == "stream":
            if not _serve_stream(conn, generator, *message[1:]):
                return
        # ("sampling", s) or ("stop",) after a stream ended on its own: nothing to apply them to


def _serve_stream(conn: Connection, generator: Any, prompt: str | list[int], sampling: Sampling, n: int,
                  memory: str | list[int], page: str | None = None) -> bool:
    """One generation, its events sent in batches; False when the parent has gone (or asked to close)."""
    state = {"sampling": sampling, "stop": False, "gone": False}
    after_stop = 0

    def drain() -> None:
        while not state["stop"] and conn.poll():
            try:
                message = conn.recv()
            except (EOFError, OSError):
                state["stop"] = state["gone"] = True
                return
            if message[0] == "sampling":
                state["sampling"] = message[1]
            elif message[0] == "stop":
                state["stop"] = True
            elif message[0] == "close":
                state["stop"] = state["gone"] = True

    def source() -> Sampling:
        drain()
        return state["sampling"]  # type: ignore[return-value]

    def should_stop() -> bool:
        drain()
        return bool(state["stop"])

    batch: list[TokenEvent] = []
    last = time.monotonic()
    try:
        for event in generator.stream(prompt, source, n=n, memory=memory, should_stop=should_stop, page=page):
            if state["stop"]:
                after_stop += 1
            batch.append(event)
            now = time.monotonic()
            if now - last >= FLUSH_S:
                conn.send(("tokens", batch))
                batch, last = [], now
        if batch:
            conn.send(("tokens", batch))
        conn.send(("done", after_stop))
    except (EOFError, OSError):
        return False
    except Exception as e:
        conn.send(("error", _error_text(e)))
    return not state["gone"]
