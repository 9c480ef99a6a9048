"""TrainingScreen: choose what to train, start the trainer, and watch it learn.

The run itself belongs to the app's ``TrainingSession`` (slmtui/training/process.py): this screen only describes a
request and draws ``session.state`` four times a second when it changed, so leaving the screen (to write while
a model trains) costs the run nothing and coming back shows it whole. Drawing on a timer instead of per event
keeps the event loop free however fast the trainer reports. What the form's run will be (its checks, its
estimate, what Resume continues) is the ``RunSetup``'s (slmtui/training/plan.py), over the fields the form hands
out; the screen keeps only what it drew last.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Static
from textual.worker import get_current_worker

from slmtui.core import paths
from slmtui.format import BUNDLED_CORPUS
from slmtui.training.plan import FINETUNE, RunSetup, Survey
from slmtui.training.process import TrainingSession
from slmtui.training.state import TrainRequest
from slmtui.tui.commands import Command, binding_commands
from slmtui.tui.messages import UseModel
from slmtui.tui.screens.training_dialogs import FolderPicker
from slmtui.tui.widgets.run_view import RunView
from slmtui.tui.widgets.training_form import TrainingForm
from slmtui.tui.widgets.training_text import describe_run

REFRESH_S = 0.25
"""How often the live view is redrawn while something changed."""


class TrainingScreen(Screen[None]):
    """Set up a run, start it, watch it; Escape goes back to writing while it trains."""

    CSS_PATH = "training.tcss"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+g", "start", "Start", id="train_start"),
        Binding("ctrl+b", "stop", "Stop", id="train_stop"),
        Binding("ctrl+r", "resume", "Resume", id="train_resume"),
        Binding("ctrl+f", "browse", "Browse", id="train_browse"),
        Binding("ctrl+o", "use", "Write with it", id="train_use"),
    ]

    def __init__(self, session: TrainingSession, *, corpus: Path | None = None, device: str | None = None,
                 current_model: Callable[[], str | None] = lambda: None) -> None:
        """``device`` fixes the device the estimate assumes (tests); None asks torch. ``current_model`` names the
        model being written with (None: the bundled one): the one a fine-tune teaches."""
        super().__init__()
        self.session = session
        self.setup = RunSetup(device=device, current_model=current_model)
        self.initial_corpus = corpus
        self._drawn_version = -1
        self._drawn_running = False
        self._buttons_shown: tuple[bool, ...] = ()
        self._shown: dict[str, Text] = {}

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header(icon="✎")
        with Horizontal(id="train-body"):
            with Vertical(id="train-side"):
                with VerticalScroll(id="train-setup"):
                    yield TrainingForm(self.initial_corpus, id="train-form")
                    yield Static("", id="train-summary")
                # Below the scrolling form, never under it: at 80x24 the form is taller than the screen.
                with Horizontal(id="train-buttons"):
                    yield Button("Start", variant="success", id="train-start", compact=True)
                    yield Button("Stop", variant="error", id="train-stop", compact=True)
                    yield Button("Resume", variant="primary", id="train-resume", compact=True)
                    yield Button("Write with it", variant="primary", id="train-use", compact=True)
            yield RunView(id="train-live")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "training"
        self.rescan()
        self.redraw()
        self.set_interval(REFRESH_S, self._tick)
        self.form.focus_corpus()

    def on_screen_resume(self) -> None:
        self.redraw()
        self.rescan()

    # ------------------------------------------------------------------ the form

    @property
    def form(self) -> TrainingForm:
        return self.query_one(TrainingForm)

    @on(TrainingForm.Changed)
    def _form_changed(self, event: TrainingForm.Changed) -> None:
        if event.corpus:
            self.rescan()
        else:
            self._show_corpus_size()  # the path may have changed what is said of it
            self._suggest_name()  # and the name suggested
            self._update_estimate()

    def _show_corpus_size(self) -> None:
        """The corpus's size; on the fine-tune path with none chosen, that there is none (not the bundled novels'
        size: they are not what a fine-tune is taught)."""
        found = self.setup.survey
        if found is None:
            return
        size, form = found.size, self.form
        if size.path is None and not size.error and form.path() == FINETUNE:
            form.show_corpus_size("no books chosen yet: type a path, or Browse (ctrl+f)", error=False)
        else:
            form.show_corpus_size(size.describe() if size.path is not None or size.error else
                                  f"{BUNDLED_CORPUS}: {size.describe()}", error=size.error is not None)

    def _suggest_name(self) -> None:
        form = self.form
        form.suggest_name(self.setup.suggested_name(form.preset(), form.path()))

    def rescan(self) -> None:
        self.form.show_corpus_size("counting…")
        self._scan(self.form.corpus())

    @work(thread=True, exclusive=True, group="train-scan")
    def _scan(self, corpus: Path | None) -> None:
        """Size the corpus, list the models, read the current model and find the device, off the UI thread."""
        found = self.setup.scan(corpus)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._scanned, found)

    def _scanned(self, found: Survey) -> None:
        try:
            self._show_scan(found)
        except NoMatches:  # the app is closing and the screen's widgets are going (they go before its workers stop)
            pass

    def _show_scan(self, found: Survey) -> None:
        form = self.form
        if not self.setup.accept(found, form.corpus()):
            return  # the corpus changed again meanwhile; its own scan is on the way
        form.set_parent(self.setup.parent_label())
        preset = self.setup.suggested_preset()
        if preset is not None:
            form.suggest_preset(preset)
        self._show_corpus_size()
        self._suggest_name()
        self._update_estimate()

    def request(self) -> tuple[TrainRequest | None, list[str]]:
        """The run the form describes, or the problems that stand in its way."""
        return self.setup.request(self.form.fields())

    def _update_estimate(self) -> None:
        text, error = self.setup.outlook(self.form.fields())
        self.form.show_outlook(text, error=error)
        self._update_buttons()

    # ------------------------------------------------------------------ actions

    def resume_target(self) -> Path | None:
        """The saved run Resume continues: this session's last one, else the named model's."""
        return self.setup.resume_target(self.session.state, self.form.model_name())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer offers only what can be done now."""
        running = self.session.running
        if action in ("start", "browse"):
            return not running
        if action == "stop":
            return running
        if action == "resume":
            return not running and self.resume_target() is not None
        if action == "use":
            return not running and self.session.state.status == "done"
        return True

    def action_back(self) -> None:
        self.app.pop_screen()

    async def action_start(self) -> None:
        if self.session.running:
            return
        request, problems = self.request()
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
                self.form.set_corpus(path)

        self.app.push_screen(FolderPicker(self.form.corpus()), chosen)

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
                      lambda: self.form.set_corpus(None))
        if self.session.state.status == "done":
            yield Command("Write with the model just trained", "make it the active model", self.action_use)

    @on(Button.Pressed)
    async def _pressed(self, event: Button.Pressed) -> None:
        actions = {"train-start": self.action_start, "train-stop": self.action_stop, "train-resume": self.action_resume,
                   "train-browse": self.action_browse, "train-use": self.action_use}
        action = actions.get(event.button.id or "")
        if action is not None:
            result = action()
            if result is not None:
                await result

    # ------------------------------------------------------------------ the live view

    def _tick(self) -> None:
        if self.session.state.version != self._drawn_version or self.session.running != self._drawn_running:
            try:
                self.redraw()
            except NoMatches:  # the app is closing and the screen's widgets are going
                pass

    def _update_buttons(self) -> None:
        """While a run goes on, the form gives way to a summary of the run and its Stop button.

        Everything is set only when it changes: setting ``display`` or refreshing the bindings (which rebuilds
        the footer) re-lays out the screen even when nothing moved, and this runs four times a second."""
        state = self.session.state
        running = self.session.running
        resumable = not running and self.resume_target() is not None
        shown = (running, resumable, state.status == "done" and not running, state.status == "stopping")
        if shown == self._buttons_shown:
            return
        self._buttons_shown = shown
        self.set_class(running, "-running")
        self.query_one("#train-start", Button).display = not running
        self.query_one("#train-stop", Button).display = running
        self.query_one("#train-stop", Button).disabled = state.status == "stopping"
        self.query_one("#train-resume", Button).display = resumable
        self.query_one("#train-use", Button).display = shown[2]
        self.refresh_bindings()

    def redraw(self) -> None:
        """Draw ``session.state`` (the timer calls this only when its version moved)."""
        state = self.session.state
        self._drawn_version = state.version
        self._drawn_running = self.session.running
        self._update_buttons()
        if self._drawn_running:
            self._update_static("#train-summary", describe_run(state))
        self.query_one(RunView).draw(state)

    def _update_static(self, selector: str, text: Text) -> None:
        """Update a Static only when its text changes: an update re-lays out the screen (heights are auto)."""
        if self._shown.get(selector) != text:
            self._shown[selector] = text
            self.query_one(selector, Static).update(text)
