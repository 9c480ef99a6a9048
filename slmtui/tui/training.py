"""TrainingScreen: choose what to train, start the trainer, and watch it learn.

The run itself belongs to the app's ``TrainingSession`` (trainer_process.py): this screen only describes a
request and draws ``session.state`` four times a second when it changed, so leaving the screen (to write while
a model trains) costs the run nothing and coming back shows it whole. Drawing on a timer instead of per event
keeps the event loop free however fast the trainer reports.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, ProgressBar, Select, Static
from textual.worker import get_current_worker

from slmtui.engine import PRESETS, paths
from slmtui.tui.commands import Command, binding_commands
from slmtui.tui.trainer_process import DEFAULT_TOKENIZER, PRESET_NAMES, RunState, TrainingSession, TrainRequest
from slmtui.tui.training_dialogs import FolderPicker, QuitWhileTraining
from slmtui.tui.training_plan import (
    NAME_RE,
    TOKENIZER_RE,
    CorpusSize,
    default_name,
    estimate,
    human_duration,
    parse_duration,
    scan_corpus,
)
from slmtui.tui.training_widgets import LossChart, SampleText, Stat

__all__ = ["FolderPicker", "LossChart", "QuitWhileTraining", "TrainingScreen", "describe_run", "describe_status"]

REFRESH_S = 0.25
"""How often the live view is redrawn while something changed."""
CHART_REFRESH_S = 0.5
"""The chart is the costly part (plotext draws it whole, ~10 ms): twice a second is live enough."""
BUDGET_KINDS = (("steps", "steps"), ("time (e.g. 15m)", "time"), ("epochs", "epochs"))
BUDGET_DEFAULTS = {"steps": "300", "time": "10m", "epochs": "3"}


def _preset_label(name: str) -> str:
    c = PRESETS[name]
    return f"{name} · {c.n_layer}×{c.n_embd} · context {c.block_size}"


class TrainingScreen(Screen[None]):
    """Set up a run, start it, watch it; Escape goes back to writing while it trains."""

    CSS_PATH = "training.tcss"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+g", "start", "Start", id="train_start"),
        Binding("ctrl+b", "stop", "Stop", id="train_stop"),
        Binding("ctrl+r", "resume", "Resume", id="train_resume"),
        Binding("ctrl+f", "browse", "Browse", id="train_browse"),
    ]

    def __init__(self, session: TrainingSession, *, corpus: Path | None = None, device: str | None = None) -> None:
        """``device`` fixes the device the estimate assumes (tests); None asks torch."""
        super().__init__()
        self.session = session
        self.fixed_device = device
        self.initial_corpus = corpus
        self.corpus_size: CorpusSize | None = None
        self.taken: set[str] = set()
        """Folder names already in the user's models folder."""
        self.resumable_names: set[str] = set()
        """Of those, the ones holding a run that stopped early and saved its state."""
        self.device = "cpu"
        self.known_models: list = []
        self._drawn_version = -1
        self._drawn_running = False
        self._buttons_shown: tuple[bool, ...] = ()
        self._drawn_points = (-1, -1)
        self._chart_drawn_at = 0.0
        self._shown: dict[str, Text] = {}
        self.stats: dict[str | None, Stat] = {}

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header(icon="✎")
        with Horizontal(id="train-body"):
            with VerticalScroll(id="train-setup"):
                with Vertical(id="train-form"):
                    yield Label("Corpus", classes="field-label")
                    with Horizontal(classes="field-row"):
                        yield Input(str(self.initial_corpus or ""), placeholder="the bundled novels, or a folder path",
                                    id="train-corpus", compact=True)
                        yield Button("Browse…", id="train-browse", compact=True)
                    yield Static("", id="train-corpus-size")
                    yield Label("Preset", classes="field-label")
                    yield Select([(_preset_label(p), p) for p in PRESET_NAMES], value="tiny", allow_blank=False,
                                 id="train-preset", compact=True)
                    yield Label("Tokenizer (gpt2 or bpe:N)", classes="field-label")
                    yield Input(placeholder=DEFAULT_TOKENIZER["tiny"], id="train-tokenizer", compact=True)
                    yield Label("Budget", classes="field-label")
                    with Horizontal(classes="field-row"):
                        yield Select(list(BUDGET_KINDS), value="steps", allow_blank=False, id="train-budget-kind",
                                     compact=True)
                        yield Input(BUDGET_DEFAULTS["steps"], id="train-budget", compact=True)
                    yield Label("Model name", classes="field-label")
                    yield Input(placeholder="tiny-bundled", id="train-name", compact=True)
                    yield Static("", id="train-estimate")
                yield Static("", id="train-summary")
                with Horizontal(id="train-buttons"):
                    yield Button("Start", variant="success", id="train-start")
                    yield Button("Stop", variant="error", id="train-stop")
                    yield Button("Resume", variant="primary", id="train-resume")
                    yield Button("Write with it", variant="primary", id="train-use")
            with Vertical(id="train-live"):
                yield Static("", id="train-status")
                with Grid(id="train-stats"):
                    yield Stat("step", id="stat-step")
                    yield Stat("epoch", id="stat-epoch")
                    yield Stat("train loss", id="stat-loss")
                    yield Stat("val loss", id="stat-val")
                    yield Stat("perplexity", id="stat-ppl")
                    yield Stat("tokens/s", id="stat-speed")
                    yield Stat("elapsed", id="stat-elapsed")
                    yield Stat("ETA", id="stat-eta")
                yield ProgressBar(total=None, show_eta=False, id="train-progress")
                yield LossChart(id="train-chart")
                yield SampleText(id="train-sample")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "training"
        self.stats = {s.id: s for s in self.query(Stat)}
        self.rescan()
        self.redraw()
        self.set_interval(REFRESH_S, self._tick)
        self.query_one("#train-corpus", Input).focus()

    def on_screen_resume(self) -> None:
        self.redraw()
        self.rescan()

    # ------------------------------------------------------------------ the form

    @on(Input.Changed, "#train-corpus")
    def _corpus_changed(self) -> None:
        self.rescan()

    @on(Select.Changed, "#train-preset")
    def _preset_changed(self, event: Select.Changed) -> None:
        self.query_one("#train-tokenizer", Input).placeholder = DEFAULT_TOKENIZER.get(str(event.value), "")
        self._update_estimate()

    @on(Select.Changed, "#train-budget-kind")
    def _budget_kind_changed(self, event: Select.Changed) -> None:
        self.query_one("#train-budget", Input).value = BUDGET_DEFAULTS.get(str(event.value), "")
        self._update_estimate()

    @on(Input.Changed, "#train-tokenizer, #train-budget, #train-name")
    def _field_changed(self) -> None:
        self._update_estimate()

    def corpus(self) -> Path | None:
        text = self.query_one("#train-corpus", Input).value.strip()
        return Path(text).expanduser() if text and text != "bundled" else None

    def preset(self) -> str:
        return str(self.query_one("#train-preset", Select).value)

    def model_name(self) -> str:
        typed = self.query_one("#train-name", Input).value.strip()
        return typed or self.query_one("#train-name", Input).placeholder

    def rescan(self) -> None:
        self.query_one("#train-corpus-size", Static).update("counting…")
        self._scan(self.corpus())

    @work(thread=True, exclusive=True, group="train-scan")
    def _scan(self, corpus: Path | None) -> None:
        """Size the corpus, list the models (names taken, runs to resume) and find the device, off the UI."""
        from slmtui.engine import list_models, read_model_info

        size = scan_corpus(corpus)
        if get_current_worker().is_cancelled:
            return
        taken, resumable = set(), set()
        base = paths.models_dir()
        if base.is_dir():
            for folder in base.iterdir():
                if folder.name.startswith("."):
                    continue
                taken.add(folder.name)
                if (folder / "train_state.pt").is_file():
                    try:
                        stopped = read_model_info(folder).training.get("stopped")
                    except Exception:  # noqa: BLE001 - an unreadable folder is simply not resumable
                        continue
                    if stopped in ("interrupted", "time_limit", "running"):
                        resumable.add(folder.name)
        models = list_models()
        device = self.fixed_device or "cpu"
        if self.fixed_device is None:
            try:
                import torch

                device = "cuda" if torch.cuda.is_available() else "cpu"
            except Exception:  # noqa: BLE001 - no torch, no GPU: the guess stays "cpu"
                pass
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._scanned, size, taken, resumable, models, device)

    def _scanned(self, size: CorpusSize, taken: set[str], resumable: set[str], models: list, device: str) -> None:
        try:
            self._show_scan(size, taken, resumable, models, device)
        except NoMatches:  # the app is closing and the screen's widgets are going (they go before its workers stop)
            pass

    def _show_scan(self, size: CorpusSize, taken: set[str], resumable: set[str], models: list, device: str) -> None:
        if size.path != self.corpus():
            return  # the corpus changed again meanwhile; its own scan is on the way
        self.corpus_size, self.taken, self.resumable_names = size, taken, resumable
        self.known_models, self.device = models, device
        label = self.query_one("#train-corpus-size", Static)
        label.update(size.describe() if size.path is not None or size.error else f"bundled novels: {size.describe()}")
        label.set_class(size.error is not None, "-error")
        self.query_one("#train-name", Input).placeholder = default_name(size.path, self.preset(), taken)
        self._update_estimate()

    def _request(self) -> tuple[TrainRequest | None, list[str]]:
        """The run the form describes, or the problems that stand in its way."""
        problems: list[str] = []
        size = self.corpus_size
        if size is None:
            problems.append("the corpus is still being counted")
        elif size.error:
            problems.append(size.error)
        preset = self.preset()
        tokenizer = self.query_one("#train-tokenizer", Input).value.strip() or None
        if tokenizer is not None and not TOKENIZER_RE.fullmatch(tokenizer):
            problems.append(f"tokenizer {tokenizer!r}: write gpt2 or bpe:N (e.g. bpe:2048)")
        kind = str(self.query_one("#train-budget-kind", Select).value)
        text = self.query_one("#train-budget", Input).value.strip()
        budget: dict[str, float | int] = {}
        if kind == "steps":
            if text.isdigit() and int(text) > 0:
                budget["max_steps"] = int(text)
            else:
                problems.append(f"steps: a whole number above 0, not {text!r}")
        elif kind == "time":
            seconds = parse_duration(text)
            if seconds is None:
                problems.append(f"time: a duration such as 90s, 15m or 2h, not {text!r}")
            else:
                budget["time_limit_s"] = seconds
        else:
            try:
                epochs = float(text)
                if not epochs > 0:
                    raise ValueError
                budget["epochs"] = epochs
            except ValueError:
                problems.append(f"epochs: a number above 0, not {text!r}")
        name = self.model_name()
        if not NAME_RE.fullmatch(name) or name.startswith("."):
            problems.append(f"name {name!r}: use letters, digits, '.', '-' and '_' only")
        elif name in self.taken:
            hint = " (or Resume its saved run)" if name in self.resumable_names else ""
            problems.append(f"a model named {name!r} exists: choose another name{hint}")
        if problems:
            return None, problems
        request = TrainRequest(corpus=self.corpus(), preset=preset, tokenizer=tokenizer, name=name,
                               **budget)  # type: ignore[arg-type]
        return request, []

    def _update_estimate(self) -> None:
        box = self.query_one("#train-estimate", Static)
        request, problems = self._request()
        if request is None:
            box.update("\n".join(f"• {p}" for p in problems))
            box.set_class(self.corpus_size is not None, "-error")
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
        return True

    def action_back(self) -> None:
        self.app.pop_screen()

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
        self._drawn_points = (-1, -1)
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
        out = self.session.state.out
        set_active = getattr(self.app, "set_active_model", None)
        if out is None or set_active is None:
            return
        set_active(out.name if out.parent == paths.models_dir() else str(out))
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

    def commands(self) -> Iterator[Command]:
        yield from binding_commands(self)
        yield Command("Use the bundled corpus", "train on the shipped novels",
                      lambda: setattr(self.query_one("#train-corpus", Input), "value", ""))
        if self.session.state.status == "done":
            yield Command("Write with the model just trained", "make it the active model", self.action_use)

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
        self._update_static("#train-status", describe_status(state))
        status = self.query_one("#train-status", Static)
        status.set_class(state.status == "failed", "-error")
        status.set_class(state.status == "done", "-done")
        step = state.step
        start = state.start
        stat = self.stats
        max_steps = step.max_steps if step else start.max_steps if start else 0
        current = step.step if step else start.start_step if start else 0
        stat["stat-step"].value = f"{current:,} / {max_steps:,}" if max_steps else (f"{current:,}" if start else "–")
        stat["stat-epoch"].value = f"{step.epoch:.2f}" if step else "–"
        stat["stat-loss"].value = f"{step.loss:.3f}" if step and math.isfinite(step.loss) else "–"
        if state.eval is not None:
            stat["stat-val"].value = f"{state.eval.val_loss:.3f}"
            stat["stat-ppl"].value = f"{state.eval.val_perplexity:,.1f}"
        else:
            stat["stat-val"].value = "–"
            train_ppl = math.exp(min(step.loss, 50)) if step and math.isfinite(step.loss) else None
            stat["stat-ppl"].value = f"{train_ppl:,.1f}" if train_ppl is not None else "–"
        stat["stat-speed"].value = f"{step.tokens_per_s:,.0f}" if step else "–"
        stat["stat-elapsed"].value = human_duration(step.elapsed_s) if step else "–"
        eta = step.eta_s if step and state.active else (0.0 if state.status == "done" else None)
        stat["stat-eta"].value = human_duration(eta) if eta is not None else "–"
        bar = self.query_one(ProgressBar)
        if max_steps:
            bar.update(total=max_steps, progress=current)
        elif state.active:
            bar.update(total=None)  # the indeterminate pulse: preparing, steps unknown yet
        else:
            bar.update(total=1, progress=0)
        points = (len(state.train_loss), len(state.val_loss))
        now = time.monotonic()
        if points != self._drawn_points and (now - self._chart_drawn_at >= CHART_REFRESH_S or not state.active):
            self._drawn_points = points
            self._chart_drawn_at = now
            self.query_one(LossChart).draw(state.train_loss, state.val_loss)
        sample = self.query_one(SampleText)
        if state.sample is not None:
            sample.border_title = f"sample at step {state.sample.step}"
            sample.text = Text.assemble((state.sample.prompt, "bold"), state.sample.text.replace("\n", " ⏎ "))
        else:
            sample.border_title = "sample"
            sample.text = Text("The model writes a few words here at every evaluation.", style="dim")

    def _update_static(self, selector: str, text: Text) -> None:
        """Update a Static only when its text changes: an update re-lays out the screen (heights are auto)."""
        if self._shown.get(selector) != text:
            self._shown[selector] = text
            self.query_one(selector, Static).update(text)


def describe_run(state: RunState) -> Text:
    """The run being trained, for the side panel while the form is hidden."""
    request, start = state.request, state.start
    rows: list[tuple[str, str]] = []
    name = (start.name if start else request.resume.name if request and request.resume
            else request.name if request else None)
    rows.append(("model", name or "…"))
    if start is not None:
        rows.append(("corpus", "bundled novels" if start.corpus == "bundled" else Path(start.corpus).name))
    elif request is not None and request.resume is None:
        rows.append(("corpus", "bundled novels" if request.corpus is None else request.corpus.name))
    if request is not None and request.resume is None:
        rows.append(("preset", request.preset))
        rows.append(("tokenizer", request.tokenizer or DEFAULT_TOKENIZER.get(request.preset, "?")))
        budget = (f"{request.max_steps:,} steps" if request.max_steps else
                  human_duration(request.time_limit_s) if request.time_limit_s else
                  f"{request.epochs:g} epochs" if request.epochs else "10 epochs")
        rows.append(("budget", budget))
    elif request is not None:
        rows.append(("run", "resumed"))
    if start is not None:
        rows.append(("size", f"{start.n_params / 1e6:.2f}M params"))
        rows.append(("device", f"{start.device} {start.dtype}"))
    text = Text()
    for label, value in rows:
        text.append(f"{label:<10}", style="dim")
        text.append(f"{value}\n")
    text.rstrip()
    return text


def describe_status(state: RunState) -> Text:
    """One or two lines on what the run is doing, in words."""
    start, done, request = state.start, state.done, state.request
    name = (start.name if start else request.resume.name if request and request.resume
            else request.name if request and request.name else "the model")
    warnings = Text("".join(f"\nskipped {w.removeprefix('skipped ')}" for w in state.warnings[-2:]), style="dim")
    if state.status == "idle":
        return Text("Choose a corpus and a budget, then Start (ctrl+g). "
                    "Training runs in the background: Escape to write meanwhile.")
    if state.status == "starting":
        return Text.assemble(f"Starting {name}: reading the corpus, building the tokenizer…", warnings)
    if state.status == "running" and start is not None:
        corpus = "the bundled novels" if start.corpus == "bundled" else Path(start.corpus).name
        resumed = f", resumed at step {start.start_step:,}" if start.start_step else ""
        return Text.assemble("Training ", (name, "bold"), f" on {corpus}: {start.n_params / 1e6:.2f}M parameters, "
                             f"{start.train_tokens:,} tokens{resumed}", warnings)
    if state.status == "stopping":
        return Text("Stopping: the trainer is saving the run…")
    if state.status == "done" and done is not None:
        val = f", validation loss {done.best_val_loss:.3f}" if done.best_val_loss is not None else ""
        bpb = f" ({done.val_bpb:.2f} bits/byte)" if done.val_bpb is not None else ""
        return Text.assemble(f"Done ({done.reason.replace('_', ' ')}): ", (Path(done.path).name, "bold"),
                             f" saved at step {done.step:,}{val}{bpb}. Write with it, or find it on the models screen.")
    if state.status == "interrupted" and done is not None:
        return Text(f"Stopped at step {done.step:,} and saved. Resume (ctrl+r) continues from there.")
    if state.status == "failed":
        return Text.assemble(("Training failed:\n", "bold"), state.error or "the trainer stopped without saying why")
    return Text(state.status)
