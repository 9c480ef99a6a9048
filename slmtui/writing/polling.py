"""The writing session's side of a stream: what the UI thread takes from it once a frame, and stopping it.

A mixin of ``WritingSession`` (session.py); the worker that fills the ``StreamJob`` is in stream.py.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from slmtui.stories import Passage
from slmtui.writing.records import Progress, Streamed
from slmtui.writing.stream import StreamJob, TokenMark

if TYPE_CHECKING:
    from slmtui.writing.context import StreamWindow
    from slmtui.writing.session import StateKind

STOP_WAIT_S = 5.0
"""How long stopping waits for the worker to finish the token it is on (one token: milliseconds)."""


class SessionPolling:
    """``poll``, ``stop`` and ``shutdown``: draining and ending the session's stream."""

    if TYPE_CHECKING:  # WritingSession's state and helpers (session.py)
        job: StreamJob | None
        path: list[Passage]
        tokens: dict[int, list[TokenMark]]
        candidate_text: dict[int, str]
        _window: StreamWindow | None

        def _reload(self, *, tree: bool = True) -> None: ...

        def _set_state(self, state: str, kind: StateKind = "idle") -> None: ...

    def poll(self) -> Progress | None:
        """What was streamed since the last poll (UI thread, once a frame); None when nothing is being written."""
        job = self.job
        if job is None:
            return None
        done = job.done
        taken = job.take()
        streamed: list[Streamed] = []
        window = None
        if taken:
            by_stream: dict[int, list] = {}
            for t in taken:
                by_stream.setdefault(t.stream, []).append(t)
            for index, tokens in sorted(by_stream.items()):
                pid = job.passage_ids[index]
                new = tuple(t.mark for t in tokens)
                text = "".join(t.event.text for t in tokens)
                self.tokens.setdefault(pid, []).extend(new)
                if job.n > 1:
                    self.candidate_text[pid] = self.candidate_text.get(pid, "") + text
                elif self.path and self.path[-1].id == pid:
                    self.path[-1] = replace(self.path[-1], text=self.path[-1].text + text)
                else:
                    continue
                streamed.append(Streamed(index, pid, text, new))
                if index == 0 and self._window is not None:
                    window = self._window.at(job.produced_by[0], tokens[-1].event.window_tokens, self.tokens[pid])
        if done:
            self._finish(job)
        return Progress(tuple(streamed), window, job.tokens_per_second, done, job.error if done else None)

    def _finish(self, job: StreamJob) -> None:
        if self.job is not job:
            return
        self.job = None
        self._window = None
        if job.error:
            self._set_state(f"error: {job.error}", "error")
        elif job.stopped_at is None:
            self._set_state("ready")
        self._reload()

    def stop(self) -> bool:
        """Stop the continuation being written and wait for its last token (at most one more); True if one was."""
        if not self._stop():
            return False
        self._set_state("stopped")
        return True

    def _stop(self) -> bool:
        job = self.job
        if job is None:
            return False
        job.cancel()
        job.finished.wait(STOP_WAIT_S)
        self.poll()
        self._set_state("stopped")
        return True

    def shutdown(self) -> None:
        """The app is closing: end the worker and wait until its text is saved."""
        job = self.job
        if job is not None:
            job.cancel()
            job.finished.wait(STOP_WAIT_S)
            self.job = None
