"""Helpers for the TUI tests (imported by name: the tests folders are not packages)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from textual import events
from textual.pilot import Pilot

from slmtui.core import paths
from slmtui.core.token_events import TokenEvent
from slmtui.engine.generate import Generator
from slmtui.settings import LoadResult, Settings
from slmtui.tui.screens.writer import WriterScreen


class PacedGenerator(Generator):
    """The real engine, slowed to one token per ``delay`` seconds so a test can act mid-generation."""

    delay = 0.0
    memory: object = None
    """The memory the last stream was given (the context builder's prefix: memory and lore tokens)."""
    prompt: object = None
    """The prompt the last stream was given (the context builder's tokens, the note woven in)."""

    def stream(self, *args, **kwargs) -> Iterator[TokenEvent]:  # type: ignore[no-untyped-def, override]
        self.memory = kwargs.get("memory")
        self.prompt = args[0] if args else kwargs.get("prompt")
        for event in super().stream(*args, **kwargs):
            if self.delay:
                time.sleep(self.delay)
            yield event


async def press_now(pilot: Pilot[object], *keys: str) -> None:
    """Press keys and wait until the app has handled them, but not for the CPU to go idle as
    ``pilot.press`` does: while the model writes it never is, and each key would cost a second."""
    for key in keys:
        pilot.app.post_message(events.Key(key, key if len(key) == 1 else None))
        await pilot.pause(0.01)


def default_settings() -> LoadResult:
    """Settings as on a first run, never read from or written to a real config file."""
    return LoadResult(Settings(), [], paths.config_file(), writable=True)


async def wait_for(pilot: Pilot[object], condition: Callable[[], object], *, timeout: float = 30.0) -> None:
    """Let the app run until ``condition()`` holds (or fail after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await pilot.pause(0.02)


async def start_writing(pilot: Pilot[object], writer: WriterScreen) -> None:
    """Press Enter in the prompt and wait until the model has started (not for the CPU to idle), or has already
    finished: a short stream from the decoding child can come and go between two looks."""
    session = writer.session
    last = session.path[-1].id if session.path else None
    await press_now(pilot, "enter")
    await wait_for(pilot, lambda: session.job is not None or (
        bool(session.path) and session.path[-1].id != last and session.path[-1].author == "model"))


async def wait_idle(pilot: Pilot[object], writer: WriterScreen, *, timeout: float = 30.0) -> None:
    """Until the writer has finished the continuation it is writing."""
    await wait_for(pilot, lambda: writer.session.job is None, timeout=timeout)
    await pilot.pause()


def passage_rows(db: Path) -> list[tuple[int, int | None, str, str]]:
    """Every passage in the database, read with plain sqlite3: (id, parent_id, author, text)."""
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT id, parent_id, author, text FROM passages ORDER BY id"))


def screen_text(app: object) -> list[str]:
    """The screen's cells as text, one string a row: what a user reads (Textual has no public call for it; its
    compositor's strips are what it paints)."""
    strips = app.screen._compositor.render_strips()  # type: ignore[attr-defined]
    return ["".join(segment.text for segment in strip) for strip in strips]
