"""The training screen's questions: which folder to train on, and what to do with a run when quitting."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Label

from slmtui.training.process import TrainingSession


class TextFiles(DirectoryTree):
    """Folders and the files the trainer reads (.txt, .md); hidden entries left out."""

    def filter_paths(self, paths: list[Path]) -> list[Path]:  # type: ignore[override]
        return [p for p in paths if not p.name.startswith(".") and (p.is_dir() or p.suffix.lower() in (".txt", ".md"))]


class FolderPicker(ModalScreen[Path | None]):
    """Pick a corpus folder (or one text file) in a directory tree, or type its path."""

    CSS_PATH = "training.tcss"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, start: Path | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.start = start if start is not None and start.is_dir() else Path.home()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide", id="folder-picker"):
            yield Label("Choose the folder of text files to train on", classes="dialog-question")
            yield TextFiles(self.start, id="folder-tree")
            yield Input(str(self.start), id="folder-path")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Use this folder", variant="primary", id="folder-use")
                yield Button("Up", id="folder-up")
                yield Button("Cancel", id="folder-cancel")

    def on_mount(self) -> None:
        self.query_one(TextFiles).focus()

    @on(DirectoryTree.DirectorySelected)
    @on(DirectoryTree.FileSelected)
    def _selected(self, event: DirectoryTree.DirectorySelected | DirectoryTree.FileSelected) -> None:
        self.query_one("#folder-path", Input).value = str(event.path)

    @on(DirectoryTree.NodeHighlighted)
    def _highlighted(self, event: DirectoryTree.NodeHighlighted) -> None:  # type: ignore[type-arg]
        data = event.node.data
        if data is not None:
            self.query_one("#folder-path", Input).value = str(data.path)

    @on(Button.Pressed, "#folder-up")
    def _up(self) -> None:
        tree = self.query_one(TextFiles)
        tree.path = Path(tree.path).resolve().parent

    @on(Button.Pressed, "#folder-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#folder-use")
    @on(Input.Submitted, "#folder-path")
    def _use(self) -> None:
        text = self.query_one("#folder-path", Input).value.strip()
        path = Path(text).expanduser()
        if not text or not path.exists():
            self.notify(f"no such folder: {text}", severity="warning")
            return
        self.dismiss(path)


class QuitWhileTraining(ModalScreen[bool]):
    """The app is quitting while a model trains: stop (the trainer saves) or leave it running? True: quit."""

    CSS_PATH = "training.tcss"
    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel")]

    def __init__(self, session: TrainingSession) -> None:
        super().__init__(classes="dialog-screen")
        self.session = session

    def compose(self) -> ComposeResult:
        state = self.session.state
        name = state.start.name if state.start else "a model"
        with Vertical(classes="dialog", id="quit-training"):
            yield Label(f"Training {name} is still running.", classes="dialog-question")
            yield Label("Stop it (the run is saved and can be resumed), or leave it running in the background? "
                        "slmtui shows it again when you come back.", id="quit-training-hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Stop and save", variant="error", id="quit-stop")
                yield Button("Leave running", variant="primary", id="quit-leave")
                yield Button("Cancel", id="quit-cancel")

    def on_mount(self) -> None:
        self.query_one("#quit-cancel", Button).focus()

    @on(Button.Pressed, "#quit-cancel")
    def _cancel(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#quit-leave")
    def _leave(self) -> None:
        self.session.detach()
        self.dismiss(True)

    @on(Button.Pressed, "#quit-stop")
    async def _stop(self) -> None:
        for button in self.query(Button):
            button.disabled = True
        self.query_one("#quit-training-hint", Label).update("Stopping: the trainer is saving the run…")
        self.session.cancel()
        self._wait_saved()

    @work(exclusive=True, group="quit")
    async def _wait_saved(self) -> None:
        await self.session.wait(timeout=300)
        self.dismiss(True)
