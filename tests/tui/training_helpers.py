"""``TrainHost``: a minimal app holding a ``TrainingSession`` as ``SlmApp`` does, with ``set_active_model``, for
the training and models screens' tests (no tests in here: imported by name; test folders are not packages).
The runs it follows come from tests/training_runs.py."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Label

from slmtui.training.process import TrainingSession
from slmtui.tui.messages import UseModel
from slmtui.tui.screens.training_dialogs import QuitWhileTraining


APP_TCSS = Path(__file__).resolve().parents[2] / "slmtui" / "tui" / "app.tcss"


class TrainHost(App[None]):
    """What the training and models screens need of the app: a session, a ``UseModel`` handler, a quit guard."""

    CSS_PATH = str(APP_TCSS)
    TITLE = "slmtui"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (90, "-medium"), (110, "-wide")]  # as SlmApp's
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True)]

    def __init__(self, session: TrainingSession | None = None) -> None:
        super().__init__()
        self.training = session or TrainingSession()
        self.active_models: list[str | None] = []

    def compose(self) -> ComposeResult:
        yield Label("the writer would be here", id="base")

    def on_use_model(self, message: UseModel) -> None:
        self.active_models.append(message.name)

    async def action_quit(self) -> None:
        if self.training.running:
            self.push_screen(QuitWhileTraining(self.training), lambda ok: ok and self.exit())
        else:
            self.exit()


def screen_lines(app: App[object]) -> list[str]:
    """The screen as the user sees it, a string a row (what a snapshot shows, as text to assert on)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text().splitlines()
