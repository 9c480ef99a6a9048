"""The writer, headless, streaming until it is killed: the subject of test_app.py's kill -9 tests (not a test
itself).

Usage: python kill_child.py LOG [CHOICES]. Opens the model named "tiny" from $SLMTUI_HOME, starts a story and
lets the model write without end (CHOICES candidates at once, default 1). Every frame, the text it draws is appended to LOG as a JSON line with the time, so
the test can tell what was on screen when, and compare it with what stories.db kept after a kill -9.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import torch
from tui_helpers import default_settings, start_writing, wait_for

from slmtui.core.sampling import Sampling
from slmtui.tui.app import SlmApp
from slmtui.tui.screens.writer import WriterScreen
from slmtui.tui.widgets.candidates_view import CandidatesView
from slmtui.tui.widgets.story_view import StoryView


def main(log_path: str, choices: int = 1) -> None:
    torch.set_num_threads(1)
    log = open(log_path, "a", buffering=1)  # line-buffered: each line is a write(2), kept by the OS on kill -9
    draw = StoryView.append

    def logged_append(self: StoryView, passage_id: int, text: str) -> None:
        """What the writer draws of a stream, as it draws it (once a frame)."""
        draw(self, passage_id, text)
        if text and type(self) is StoryView:  # a candidate's pane is a StoryView too: logged below, once
            log.write(json.dumps({"t": time.time(), "passage": passage_id, "text": text}) + "\n")

    StoryView.append = logged_append  # type: ignore[method-assign]
    draw_candidate = CandidatesView.append

    def logged_candidate(self: CandidatesView, index: int, passage_id: int, text: str) -> None:
        draw_candidate(self, index, passage_id, text)
        if text:
            log.write(json.dumps({"t": time.time(), "passage": passage_id, "text": text}) + "\n")

    CandidatesView.append = logged_candidate  # type: ignore[method-assign]

    async def run() -> None:
        app = SlmApp(model="tiny", device="cpu", settings=default_settings())
        async with app.run_test(headless=True) as pilot:
            writer = app.screen
            assert isinstance(writer, WriterScreen)
            await wait_for(pilot, lambda: writer.session.model is not None, timeout=60)
            writer.set_sampling(Sampling(max_new_tokens=100_000, seed=1))
            writer.set_choices(choices)
            await pilot.press(*"Once upon a time")
            await start_writing(pilot, writer)
            await asyncio.sleep(3600)

    asyncio.run(run())


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
