"""The training screen's actions on a run: start, resume, stop, browse for a corpus, write with the result, and
the palette's list of them.

A mixin of ``TrainingScreen`` (screens/training.py), kept apart so the screen module stays one screenful of
composing, routing and drawing; the run itself is the app's ``TrainingSession``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from textual.widgets import Input

from slmtui.core import paths
from slmtui.training.state import TrainRequest
from slmtui.tui.commands import Command, binding_commands
from slmtui.tui.messages import UseModel
from slmtui.tui.screens.training_dialogs import FolderPicker
from slmtui.tui.widgets.run_view import RunView

if TYPE_CHECKING:
    from textual.screen import Screen

    from slmtui.training.process import TrainingSession

    _Base = Screen[None]
else:
    _Base = object


class RunActions(_Base):
    """Start, resume, stop, browse, use; the screen supplies the session, the form's request and the drawing."""

    session: TrainingSession

    if TYPE_CHECKING:  # TrainingScreen's (screens/training.py)
        def _request(self) -> tuple[TrainRequest | None, list[str]]: ...

        def resume_target(self) -> Path | None: ...

        def corpus(self) -> Path | None: ...

        def redraw(self) -> None: ...

    async def action_start(self) -> None:
        if self.session.running:
            return
        request, problems = self._request()
        if request is None:
            self.notify("\n".join(problems), title="Cannot start", severity="warning")
            return
        await self._launch(request)

    async def action_resume(self) -> None:
        target = self.resume_target()
        if self.session.running or target is None:
            return
        await self._launch(TrainRequest(resume=target))

    async def _launch(self, request: TrainRequest) -> None:
        self.query_one(RunView).reset()
        await self.session.start(request)
        self.redraw()

    def action_stop(self) -> None:
        self.session.cancel()
        self.redraw()

    def action_browse(self) -> None:
        def chosen(path: Path | None) -> None:
            if path is not None:
                self.query_one("#train-corpus", Input).value = str(path)

        self.app.push_screen(FolderPicker(self.corpus()), chosen)

    def action_use(self) -> None:
        """Write with the model just trained: it becomes the active model (the app's ``UseModel``)."""
        out = self.session.state.out
        if out is None or self.session.running or self.session.state.status != "done":
            return
        self.post_message(UseModel(out.name if out.parent == paths.models_dir() else str(out)))
        self.app.pop_screen()

    def commands(self) -> Iterator[Command]:
        yield from binding_commands(self)
        yield Command("Use the bundled corpus", "train on the shipped novels",
                      lambda: setattr(self.query_one("#train-corpus", Input), "value", ""))
        if self.session.state.status == "done":
            yield Command("Write with the model just trained", "make it the active model", self.action_use)
