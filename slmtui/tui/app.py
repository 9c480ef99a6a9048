"""SlmApp: owns the services (settings, the writing session, the training run), opens the writer at once and
loads the model behind it; global keys; the command palette.

The screen comes first and the model second: loading runs in a thread worker, so the app is usable (stories,
panels, typing) while the weights are read, and a missing model is a message on the screen, not a crash.
Screens tell the app what to do with typed messages (slmtui/tui/messages.py), never by calling it by name.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from slmtui.core.errors import SlmError
from slmtui.core import paths
from slmtui.settings import LoadResult, Settings, load_settings, save_settings
from slmtui.stories.store import DamagedStoreError, StoryStore, fresh_path_beside
from slmtui.training.process import TrainingSession
from slmtui.training.state import RunState
from slmtui.tui.commands import HasCommands
from slmtui.tui.modals import ConfirmScreen
from slmtui.tui.messages import ChoicesChosen, ColoursToggled, PresetSaved, SamplingChosen, UseModel
from slmtui.tui.screens.models import ModelsScreen
from slmtui.tui.screens.training import TrainingScreen
from slmtui.tui.screens.training_dialogs import QuitWhileTraining
from slmtui.tui.screens.writer import WriterScreen
from slmtui.writing.records import ActiveModel
from slmtui.writing.session import WritingSession


class SlmApp(App[int]):
    """The slmtui terminal app."""

    CSS_PATH = "app.tcss"
    TITLE = "slmtui"
    # The writer's side panel shows from -wide on (toggled with ctrl+s below); the stories preview from -medium.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (90, "-medium"), (110, "-wide")]
    # Under 40 rows the writer's memory and note boxes shrink so the History tree keeps room.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (40, "-tall")]
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True),
        Binding("f5", "training", "Train", id="training"),
        Binding("f6", "models", "Models", id="models"),
    ]

    def __init__(
        self,
        *,
        model: str | None = None,
        device: str = "auto",
        engine: ActiveModel | None = None,
        store: StoryStore | None = None,
        settings: LoadResult | None = None,
        engine_process: bool = True,
    ) -> None:
        """``engine`` and ``store`` are for tests: a model and a database made there, used as they are.
        ``engine_process``: decode in a child process once it has started (False: always in this one)."""
        super().__init__()
        self.engine_process = engine_process
        self.loaded_settings = settings or load_settings()
        self.settings = self.loaded_settings.settings
        self._explicit_model = model
        self.model_name = model or self.settings.model
        self.device = device
        self._engine = engine
        self._store = store
        self._owns_store = store is None
        self.writer: WriterScreen | None = None
        self.startup_error: str | None = None
        """Why the app could not start (stories.db unusable and no fresh one wanted): printed after it exits."""
        self.writing: WritingSession | None = None
        """The story being written, owned here: the writer screen draws it."""
        self.training = TrainingSession()
        """The training run, owned here and not by its screen: it goes on while the user writes."""
        self._warned_unsaved = False
        if self.settings.keys:
            self.set_keymap(dict(self.settings.keys))

    @property
    def store(self) -> StoryStore:
        if self._store is None:
            self._store = StoryStore()
        return self._store

    async def on_mount(self) -> None:
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        if self._store is None:
            try:
                self._store = StoryStore()
            except DamagedStoreError as e:
                self._offer_fresh_store(e)
                return
            except SlmError as e:  # read-only, full, unreadable: not damage, and a fresh file would not help
                self.startup_error = e.message
                self.exit(return_code=2)
                return
        await self._open_writer()

    def _offer_fresh_store(self, error: SlmError) -> None:
        """stories.db cannot be opened: leave it exactly as it is, and offer a fresh database beside it."""
        damaged = paths.stories_db()
        try:
            fresh = fresh_path_beside(damaged)
        except SlmError as e:
            self.startup_error = f"{error.message}; {e.message}"
            self.exit(return_code=2)
            return
        where = "made on an earlier start" if fresh.exists() else "a fresh one"
        question = (f"{error.message}.\n\nWrite in {fresh.name} beside it ({where}) instead? "
                    f"Your stories in {damaged.name} stay there for you to recover.")

        async def answered(use_fresh: bool | None) -> None:
            if not use_fresh:
                self.startup_error = error.message
                self.exit(return_code=2)
                return
            try:
                self._store = StoryStore(fresh)
            except SlmError as e:
                self.startup_error = e.message
                self.exit(return_code=2)
                return
            await self._open_writer()
            self.notify(f"Writing in {fresh}; {damaged.name} is left as it was.", title="Stories", timeout=12)

        self.push_screen(ConfirmScreen(question, yes=f"Use {fresh.name}", no="Quit"), answered)

    async def _open_writer(self) -> None:
        self.writing = WritingSession(self.store, sampling=self.settings.sampling)
        self.writing.choices = self.settings.choices
        self.writing.lore_settings = self.settings.lore
        self.writing.listeners.append(self._writing_changed)
        self.writing.open_recent()
        self.writer = WriterScreen(self.writing, presets=dict(self.settings.presets),
                                   prob_colours=self.settings.prob_colours)
        await self.push_screen(self.writer)
        for text in self.loaded_settings.problems:
            self.notify(text, title="Settings", severity="warning", timeout=12)
        if self._engine is not None:
            self.writing.set_model(self._engine)
        else:
            self.load_model(self.model_name)
        self.training.listeners.append(self._training_changed)
        self.run_worker(self.training.reattach(), group="training", exit_on_error=False)  # a run left going
        # Start-up's objects (Textual's and the app's; torch's come with the model, frozen in _model_loaded) are
        # never garbage: exempt them from collection, or full collections walk them all on the UI thread.
        gc.freeze()

    def on_unmount(self) -> None:
        if self.writing is not None:
            self.writing.shutdown()
        if self._engine is not None:
            self._engine.close()  # the decoding child exits with the app: no process left behind
        if self._store is not None and self._owns_store:
            self._store.close()

    # --- the model ---------------------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="model", exit_on_error=False)
    def load_model(self, name: str | None) -> None:
        """Import torch, read the weights and build a Generator, off the UI thread; then start the same model
        in a child process, in the background (generation moves there once it is ready: engine/remote.py)."""
        from slmtui.engine.device import pick_device
        from slmtui.engine.generate import Generator
        from slmtui.core.model_catalog import resolve_model
        from slmtui.engine.model_io import load_model_dir
        from slmtui.engine.remote import RemoteGenerator

        try:
            path = resolve_model(name)
        except SlmError as e:
            if name is None or self._explicit_model is not None:
                self.call_from_thread(self._model_missing, name, e.message)
                return
            try:  # the last model used is gone: fall back to the bundled one
                path = resolve_model(None)
            except SlmError:
                self.call_from_thread(self._model_missing, None, e.message)
                return
            self.call_from_thread(self.notify, f"{e.message}; opening the bundled model", severity="warning")
        try:
            device = pick_device(self.device)
            loaded = load_model_dir(path, device=device)
            remote = RemoteGenerator(path, device=str(device)) if self.engine_process else None
            engine = ActiveModel(Generator(loaded.model, loaded.tokenizer), loaded.info.name, remote)
            if remote is not None:
                remote.start()  # returns at once; until the child is ready, the session writes in this process
        except SlmError as e:
            self.call_from_thread(self._model_failed, e.message)
            return
        except Exception as e:  # a bug or an allocator failure: still said on the screen, never "loading…" forever
            self.call_from_thread(self._model_failed, f"{type(e).__name__}: {' '.join(str(e).split())[:300]}")
            return
        self.call_from_thread(self._model_loaded, engine)

    def _model_loaded(self, engine: ActiveModel) -> None:
        # The model and torch's modules were made after start-up's freeze (the load runs in a worker): exempt
        # them too. Unfrozen, each full collection walked them all on the UI thread: 220-270 ms stalls, several
        # every 5 s while four candidates streamed (gc.callbacks during bench_ui_latency --choices 4).
        gc.freeze()
        old, self._engine = self._engine, engine
        if old is not None and old is not engine:  # its child ends (after the stream in progress, if any)
            threading.Thread(target=old.close, name="slmtui-close-model", daemon=True).start()
        if self._explicit_model is not None and self._explicit_model != self.settings.model:
            self.save(replace(self.settings, model=self._explicit_model))  # the last model used opens next time
        if self.writing is not None:
            self.writing.set_model(engine)

    def _model_missing(self, name: str | None, message: str) -> None:
        # No model chosen and none bundled: nothing to fix but to train one.
        if self.writing is not None:
            self.writing.model_failed(message, missing=name is None)

    def _model_failed(self, message: str) -> None:
        if self.writing is not None:
            self.writing.model_failed(message, missing=False)

    # --- settings ----------------------------------------------------------------------------------------------

    def save(self, settings: Settings) -> None:
        """Keep ``settings`` and write config.toml; a broken config file is left alone (its problem was shown)."""
        self.settings = settings
        if not self.loaded_settings.writable:
            return
        try:
            save_settings(settings, self.loaded_settings.path)
        except SlmError as e:
            self.notify(e.message, title="Settings not saved", severity="warning", timeout=8)

    def on_sampling_chosen(self, message: SamplingChosen) -> None:
        """The panel's settings become the starting values next time."""
        self.save(replace(self.settings, sampling=message.sampling))

    def on_choices_chosen(self, message: ChoicesChosen) -> None:
        self.save(replace(self.settings, choices=message.choices))

    def on_colours_toggled(self, message: ColoursToggled) -> None:
        self.save(replace(self.settings, prob_colours=message.on))

    def _theme_changed(self, theme: object) -> None:
        if self.theme != self.settings.theme:
            self.save(replace(self.settings, theme=self.theme))

    def on_preset_saved(self, message: PresetSaved) -> None:
        self.save(replace(self.settings, presets={**self.settings.presets, message.name: message.values}))

    # --- training and models -----------------------------------------------------------------------------------

    def action_training(self) -> None:
        """The training screen: one, kept installed, so its form and the run's view survive a visit."""
        if isinstance(self.screen, TrainingScreen) or self.screen.is_modal:
            return
        if isinstance(self.screen, ModelsScreen):
            self.pop_screen()
        if not self.is_screen_installed("training"):
            self.install_screen(TrainingScreen(self.training, current_model=lambda: self.model_name), "training")
        self.push_screen("training")

    def action_models(self) -> None:
        if isinstance(self.screen, ModelsScreen) or self.screen.is_modal:
            return
        if isinstance(self.screen, TrainingScreen):
            self.pop_screen()
        training = self.training
        busy = lambda: training.state.out if training.running else None  # noqa: E731 - the folder being written
        self.push_screen(ModelsScreen(active=self.model_name, busy=busy))

    def on_use_model(self, message: UseModel) -> None:
        """The models or training screen chose a model to write with: remembered and loaded into the writer."""
        self.set_active_model(message.name)

    def set_active_model(self, name: str | None) -> None:
        """Write with ``name`` (a model's name or folder; None: the bundled one) from now on: remembered in
        config.toml and loaded into the writer."""
        self._explicit_model = name
        self.model_name = name
        self.save(replace(self.settings, model=name))
        self.load_model(name)

    def _training_changed(self, state: RunState) -> None:
        """How a run ended, said wherever the user is (the training screen shows it itself)."""
        if isinstance(self.screen, TrainingScreen):
            return
        if state.status == "done" and state.done is not None:
            change = f" {state.change}." if state.change else ""
            self.notify(f"“{Path(state.done.path).name}” is trained and saved.{change} Write with it from the "
                        "models screen (f6).", title="Training done", timeout=10)
        elif state.status == "interrupted" and state.done is not None:
            self.notify(f"Stopped at step {state.done.step:,} and saved: resume it on the training screen (f5).",
                        title="Training stopped", timeout=10)
        elif state.status == "failed":
            self.notify(state.error or "the trainer stopped", title="Training failed", severity="error", timeout=15)

    def _writing_changed(self, change: str) -> None:
        """What the store refused (a full disk, a story deleted in another window) is said at once."""
        writing = self.writing
        if change == "problem" and writing is not None and writing.problem:
            self.notify(writing.problem, title="Stories", severity="error", timeout=20)

    async def action_quit(self) -> None:
        """Quitting while a model trains asks first: stop it (the trainer saves) or leave it running. Text the
        store refused is tried once more; still refused, the first ctrl+q says so, the second quits."""
        writing = self.writing
        if writing is not None and writing.unsaved and not writing.save_unsaved() and not self._warned_unsaved:
            self._warned_unsaved = True
            self.notify(f"{writing.unsaved_chars:,} characters on screen are not in stories.db: copy the story "
                        "(ctrl+p, Copy story) or free space and quit again; ctrl+q again quits without them.",
                        title="Not saved", severity="error", timeout=30)
            return
        if not self.training.running:
            self.exit()
        elif not isinstance(self.screen, QuitWhileTraining):
            self.push_screen(QuitWhileTraining(self.training), lambda quit_now: self.exit() if quit_now else None)

    # --- the command palette -----------------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Train a model", "f5: on your own text files; watch it learn", self.action_training)
        yield SystemCommand("Models", "f6: choose the model to write with; rename, delete, add a folder",
                            self.action_models)
        if isinstance(screen, HasCommands):
            for command in screen.commands():
                yield SystemCommand(command.title, command.help, command.callback)


def run_app(*, model: str | None, device: str) -> int:
    """``slmtui`` with no subcommand: the writer, on the last model used or the bundled one."""
    app = SlmApp(model=model, device=device)
    app.run()
    if app.startup_error:
        raise SlmError(app.startup_error, exit_code=app.return_code or 2)
    return app.return_code or 0
