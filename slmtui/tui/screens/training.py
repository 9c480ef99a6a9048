"""TrainingScreen: choose what to train, start the trainer, and watch it learn.

The run itself belongs to the app's ``TrainingSession`` (slmtui/training/process.py): this screen only describes a
request and draws ``session.state`` four times a second when it changed, so leaving the screen (to write while
a model trains) costs the run nothing and coming back shows it whole. Drawing on a timer instead of per event
keeps the event loop free however fast the trainer reports. The actions on a run (start, resume, stop, browse,
use) are a mixin in training_actions.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Select, Static
from textual.worker import get_current_worker

from slmtui.core import paths
from slmtui.core.model_folder import ModelInfo
from slmtui.format import BUNDLED_CORPUS
from slmtui.training.plan import (
    CorpusSize,
    Survey,
    estimate,
    estimate_finetune,
    plan_finetune,
    plan_request,
    survey,
)
from slmtui.training.process import TrainingSession
from slmtui.training.state import TrainRequest
from slmtui.tui.screens.training_actions import RunActions
from slmtui.tui.widgets.run_view import RunView
from slmtui.tui.widgets.training_form import FINETUNE, TrainingForm
from slmtui.tui.widgets.training_text import describe_run
from trainer.config import scratch_preset, unique_run_name

REFRESH_S = 0.25
"""How often the live view is redrawn while something changed."""

class TrainingScreen(RunActions, Screen[None]):
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
        self.current_model = current_model
        self.parent_model: ModelInfo | None = None
        self.parent_error: str | None = None
        self.fixed_device = device
        self.initial_corpus = corpus
        self.corpus_size: CorpusSize | None = None
        self.taken: set[str] = set()
        """Folder names already in the user's models folder."""
        self.resumable_names: set[str] = set()
        """Of those, the ones holding a run that stopped early and saved its state."""
        self.device = "cpu"
        self.known_models: list[ModelInfo] = []
        self._drawn_version = -1
        self._drawn_running = False
        self._buttons_shown: tuple[bool, ...] = ()
        self._shown: dict[str, Text] = {}

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header(icon="✎")
        with Horizontal(id="train-body"):
            with VerticalScroll(id="train-setup"):
                yield TrainingForm(self.initial_corpus, id="train-form")
                yield Static("", id="train-summary")
                with Horizontal(id="train-buttons"):
                    yield Button("Start", variant="success", id="train-start")
                    yield Button("Stop", variant="error", id="train-stop")
                    yield Button("Resume", variant="primary", id="train-resume")
                    yield Button("Write with it", variant="primary", id="train-use")
            yield RunView(id="train-live")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "training"
        self.rescan()
        self.redraw()
        self.set_interval(REFRESH_S, self._tick)
        self.query_one("#train-corpus", Input).focus()

    def on_screen_resume(self) -> None:
        self.redraw()
        self.rescan()

    # ------------------------------------------------------------------ the form

    @on(TrainingForm.Changed)
    def _form_changed(self, event: TrainingForm.Changed) -> None:
        if event.corpus:
            self.rescan()
        else:
            self._update_estimate()

    def corpus(self) -> Path | None:
        return self.query_one(TrainingForm).corpus()

    def preset(self) -> str:
        return self.query_one(TrainingForm).preset()

    def model_name(self) -> str:
        return self.query_one(TrainingForm).model_name()

    def rescan(self) -> None:
        self.query_one("#train-corpus-size", Static).update("counting…")
        self._scan(self.corpus())

    @work(thread=True, exclusive=True, group="train-scan")
    def _scan(self, corpus: Path | None) -> None:
        """Size the corpus, list the models, read the current model and find the device, off the UI thread."""
        found = survey(corpus, device=self.fixed_device, parent=self.current_model())
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._scanned, found)

    def _scanned(self, found: Survey) -> None:
        try:
            self._show_scan(found)
        except NoMatches:  # the app is closing and the screen's widgets are going (they go before its workers stop)
            pass

    def _show_scan(self, found: Survey) -> None:
        size = found.size
        if size.path != self.corpus():
            return  # the corpus changed again meanwhile; its own scan is on the way
        self.corpus_size, self.taken, self.resumable_names = size, found.taken, found.resumable
        self.known_models, self.device = found.models, found.device
        self.parent_model, self.parent_error = found.parent, found.parent_error
        form = self.query_one(TrainingForm)
        form.set_parent(found.parent.name if found.parent else str(self.current_model() or "the model"))
        if not size.error:
            form.suggest_preset(scratch_preset(size.bytes))
        label = self.query_one("#train-corpus-size", Static)
        label.update(size.describe() if size.path is not None or size.error else f"{BUNDLED_CORPUS}: {size.describe()}")
        label.set_class(size.error is not None, "-error")
        self.query_one("#train-name", Input).placeholder = unique_run_name(size.path, self.preset(), found.taken)
        self._update_estimate()

    def fine_tuning(self) -> bool:
        return self.query_one(TrainingForm).path() == FINETUNE

    def _request(self) -> tuple[TrainRequest | None, list[str]]:
        """The run the form describes, or the problems that stand in its way."""
        if self.fine_tuning():
            if self.parent_model is None:
                return None, [self.parent_error or "reading the model to teach…"]
            parent = self.current_model() or self.parent_model.name
            return plan_finetune(self.corpus_size, corpus=self.corpus(), parent=str(parent),
                                 budget=self.query_one(TrainingForm).minutes(), name=self.model_name(),
                                 taken=self.taken)
        return plan_request(
            self.corpus_size, corpus=self.corpus(), preset=self.preset(),
            tokenizer=self.query_one("#train-tokenizer", Input).value,
            budget_kind=str(self.query_one("#train-budget-kind", Select).value),
            budget=self.query_one("#train-budget", Input).value, name=self.model_name(), taken=self.taken,
            resumable=self.resumable_names)

    def _update_estimate(self) -> None:
        box = self.query_one("#train-estimate", Static)
        request, problems = self._request()
        if request is None:
            box.update("\n".join(f"• {p}" for p in problems))
            box.set_class(self.corpus_size is not None, "-error")
        elif self.fine_tuning() and self.parent_model is not None:
            size = self.corpus_size
            box.update(estimate_finetune(corpus_bytes=size.bytes if size else 0, parent=self.parent_model,
                                         budget_s=request.time_limit_s or 0.0, device=self.device).describe())
            box.remove_class("-error")
        else:
            size = self.corpus_size
            est = estimate(corpus_bytes=size.bytes if size else 0, preset=request.preset, tokenizer=request.tokenizer,
                           max_steps=request.max_steps, time_limit_s=request.time_limit_s, epochs=request.epochs,
                           device=self.device, models=self.known_models)
            box.update(est.describe())
            box.remove_class("-error")
        self._update_buttons()

    # ------------------------------------------------------------------ actions

    def resume_target(self) -> Path | None:
        """The saved run Resume continues: this session's last one, else the named model's."""
        state = self.session.state
        if state.resumable is not None:
            return state.resumable
        name = self.model_name()
        if name in self.resumable_names:
            return paths.models_dir() / name
        return None

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
