"""The writing room: the story, the prompt line, and the panels that steer the model.

Generation runs in a thread worker (``StreamJob.run``): the engine streams as fast as it can, the job
buffers its events and commits the new text every half second, and a 30 Hz timer on this screen drains the
buffer into the story view in one batch per frame. The worker reads ``self.sampling`` before every token,
so the panel's changes apply to the very next one; stopping cancels the worker, which ends after at most
the token it is computing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import var
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, Input
from textual.worker import Worker, get_current_worker

from slmtui.engine.errors import SlmError
from slmtui.engine.generate import Alternative, Generator
from slmtui.engine.sampling import Sampling
from slmtui.engine.tokenizer import Tokenizer
from slmtui.stories import Passage, Story, StoryStore
from slmtui.tui.commands import Command, binding_commands
from slmtui.tui.context import StreamWindow, Window, idle_window, memory_tokens
from slmtui.tui.modals import AlternativesScreen, EditTextScreen
from slmtui.tui.streaming import StreamJob
from slmtui.tui.widgets.context_meter import ContextMeter
from slmtui.tui.widgets.history_panel import HistoryPanel
from slmtui.tui.widgets.memory_box import MemoryBox
from slmtui.tui.widgets.prompt_line import PromptLine
from slmtui.tui.widgets.sampling_panel import SamplingPanel
from slmtui.tui.widgets.status_line import StatusLine
from slmtui.tui.widgets.story_view import Shown, StoryView, TokenMark

FRAME_S = 1 / 30
"""How often streamed tokens are drawn: once a frame, however fast the engine runs."""
STOP_WAIT_S = 5.0
"""How long stopping waits for the worker to finish the token it is on (one token: milliseconds)."""

EMPTY_STORY = "An empty page. Write the opening lines below and press Enter, or press Enter on an empty line to let the model begin."
NO_MODEL = "No model yet: train one with slm-train or from the Training screen. Your stories are kept meanwhile."


@dataclass(frozen=True)
class Engine:
    """A loaded model as the writer uses it."""

    generator: Generator
    name: str

    @property
    def tokenizer(self) -> Tokenizer:
        return self.generator.tokenizer

    @property
    def block_size(self) -> int:
        return self.generator.model.config.block_size


def join_text(before: str, text: str) -> str:
    """The user's line as it joins the story: a space between words, nothing before punctuation."""
    if before and text and not before[-1].isspace() and not text[0].isspace() and text[0] not in ".,;:!?)'\"”’":
        return " " + text
    return text


class WriterScreen(Screen[None]):
    """Write with the model: one story at a time, streamed, branched, saved as it goes."""

    BINDINGS = [
        Binding("escape", "stop", "Stop", id="stop"),
        # Escape while nothing is being written: back to the prompt line from wherever the focus is.
        Binding("escape", "focus_prompt", "Back to writing", show=False),
        Binding("ctrl+z", "undo", "Undo", id="undo"),
        Binding("ctrl+y", "redo", "Redo", id="redo", show=False),  # beside Undo in README and the palette
        Binding("ctrl+r", "retry", "Retry", id="retry"),
        Binding("alt+left", "sibling(-1)", "Previous branch", id="prev_branch", show=False),
        # The footer shows the pair as one key; the palette lists both.
        Binding("alt+right", "sibling(1)", "Branch", id="next_branch", key_display="alt+←→", tooltip="Next branch"),
        Binding("ctrl+t", "toggle_tokens", "Tokens", id="token_view"),
        Binding("f2", "edit_current", "Edit", id="edit", show=False),
        Binding("ctrl+s", "toggle_panels", "Panels", id="panels"),
        Binding("ctrl+o", "stories", "Stories", id="stories"),
    ]

    engine: var[Engine | None] = var(None)
    """The model, once loaded (set by the app)."""
    state: var[str] = var("loading model…")
    """What the status line says the writer is doing."""

    def __init__(
        self,
        store: StoryStore,
        *,
        sampling: Sampling | None = None,
        presets: dict[str, dict[str, Any]] | None = None,
        story_id: int | None = None,
    ) -> None:
        super().__init__()
        self.presets = presets or {}
        self.store = store
        self.sampling: Sampling = sampling or Sampling()
        """The settings the worker reads before every token. Replaced whole, never changed in place."""
        self.story: Story | None = None
        self.path: list[Passage] = []
        self.tokens: dict[int, list[TokenMark]] = {}
        """The tokens written this session, per passage: what token view shades and offers alternatives for."""
        self.job: StreamJob | None = None
        self._worker: Worker[None] | None = None
        self._stream_window: StreamWindow | None = None
        self._memory_tokens = 0
        self._root_ids: list[int] = []
        self._initial_story = story_id
        self._timer: Timer | None = None

    # --- layout ------------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(icon="✎")
        with Horizontal(id="body"):
            with Vertical(id="main"):
                yield StoryView(id="story")
                yield ContextMeter(id="context")
                yield PromptLine(id="prompt")
            with Vertical(id="side"):
                yield SamplingPanel(id="sampling")
                yield MemoryBox(id="memory")
                yield HistoryPanel(id="history")
        yield StatusLine(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        panel = self.query_one(SamplingPanel)
        panel.user_presets = self.presets
        panel.sampling = self.sampling
        self.query_one(PromptLine).focus()
        story = None
        if self._initial_story is not None:
            story = self.store.get_story(self._initial_story)
        else:
            recent = self.store.list_stories()
            story = recent[0] if recent else None
        self.open_story(story.id if story else None)
        self._timer = self.set_interval(FRAME_S, self._flush)
        self._ready = True
        self.watch_state(self.state)
        if self.engine is not None:
            self.watch_engine(self.engine)

    @property
    def story_view(self) -> StoryView:
        return self.query_one(StoryView)

    # --- the model ---------------------------------------------------------------------------------------------

    _ready = False
    """Set at the end of on_mount (is_mounted is not yet True there): watchers may touch the widgets."""

    def watch_engine(self, engine: Engine | None) -> None:
        if not self._ready:
            return
        status = self.query_one(StatusLine)
        meter = self.query_one(ContextMeter)
        if engine is None:
            return
        status.model_name = engine.name
        status.context_length = meter.context_length = engine.block_size
        self.state = "ready"
        self._update_memory_tokens()
        self._show_story()

    def model_failed(self, message: str, *, missing: bool) -> None:
        """The app could not load a model: say so where the story would be, and keep the stories usable."""
        self.state = "no model" if missing else f"error: {message}"
        self.query_one(StatusLine).model_name = "no model"
        self.story_view.placeholder = NO_MODEL if missing else f"The model could not be loaded: {message}"
        if not missing:
            self.notify(message, title="Model not loaded", severity="error", timeout=10)

    def watch_state(self, state: str) -> None:
        if self._ready:
            self.query_one(StatusLine).state = state

    # --- stories -----------------------------------------------------------------------------------------------

    def open_story(self, story_id: int | None) -> None:
        """Show a story (None: a fresh page, made a story once something is written)."""
        self._stop()
        self.story = self.store.get_story(story_id) if story_id is not None else None
        self.tokens = {}
        self._root_ids = []
        memory = self.query_one(MemoryBox)
        memory.text = self.story.memory if self.story else ""
        self._update_memory_tokens()
        self._show_story()

    def _ensure_story(self) -> Story:
        if self.story is None:
            self.story = self.store.create_story(model=self.engine.name if self.engine else None,
                                                 memory=self.query_one(MemoryBox).text)
        return self.story

    def _show_story(self) -> None:
        """Redraw everything from the database: the story at its current passage, the tree, the meter."""
        view = self.story_view
        if self.story is None:
            self.path = []
            self.sub_title = "new story"
        else:
            self.story = self.store.get_story(self.story.id)
            self.path = self.store.current_path(self.story.id)
            self.sub_title = self.story.title
        if self.path:
            self._root_ids = [p.id for p in self.store.siblings(self.path[0].id)]
        if view.placeholder != NO_MODEL or self.engine is not None:
            view.placeholder = EMPTY_STORY
        view.show([Shown(p.id, p.author, p.text) for p in self.path], {p.id: self.tokens[p.id] for p in self.path if p.id in self.tokens})
        self._show_history()
        self._update_context_idle()

    def _show_history(self) -> None:
        children: dict[int | None, list[Passage]] = {}
        if self._root_ids:
            roots = self.store.siblings(self._root_ids[0])
            children[None] = roots
            stack = [p.id for p in roots]
            while stack:
                pid = stack.pop()
                kids = self.store.children(pid)
                if kids:
                    children[pid] = kids
                    stack.extend(k.id for k in kids)
        self.query_one(HistoryPanel).show(children, [p.id for p in self.path])

    # --- writing -----------------------------------------------------------------------------------------------

    @on(Input.Submitted, "#prompt")
    def _prompt_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value
        event.input.value = ""
        self.send(text)

    def send(self, text: str) -> None:
        """The user's line joins the story (if any), then the model continues it."""
        self._stop()
        story = self._ensure_story()
        parent = self.path[-1].id if self.path else None
        if text.strip():
            before = self.path[-1].text if self.path else ""
            user = self.store.add_passage(story.id, parent_id=parent, author="user", text=join_text(before, text))
            parent = user.id
        self._continue_from(parent)

    def _continue_from(self, parent_id: int | None, *, text: str = "", tokens: list[TokenMark] | None = None) -> None:
        """Add a model passage under ``parent_id`` (starting with ``text``) and stream into it."""
        story = self._ensure_story()
        if self.engine is None:
            self._show_story()
            self.notify("The model is not loaded yet: your text is saved, press Enter again once it is.",
                        severity="warning")
            return
        seed = self.sampling.seed if self.sampling.seed is not None else secrets.randbelow(2**31)
        passage = self.store.add_passage(story.id, parent_id=parent_id, author="model", text=text,
                                         sampling={**self.sampling.to_dict(), "seed": seed})
        if tokens:
            self.tokens[passage.id] = tokens
        prompt = self.store.story_text(story.id, passage.id)
        self._start(StreamJob(passage.id, prompt, memory=self.story.memory if self.story else "", seed=seed))

    def _start(self, job: StreamJob) -> None:
        assert self.engine is not None
        self.job = job
        self._show_story()
        self._stream_window = StreamWindow(
            self.engine.tokenizer,
            job.prompt,
            passage_start=len(job.prompt) - len(self.path[-1].text) if self.path else 0,
            first_mark=len(self.tokens.setdefault(job.passage_id, [])),
        )
        self.state = "writing…"
        self._worker = self._generate(job, self.engine.generator)
        self.refresh_bindings()

    @work(thread=True, exclusive=True, group="generate", exit_on_error=False)
    def _generate(self, job: StreamJob, generator: Generator) -> None:
        worker = get_current_worker()
        try:
            job.run(generator, self.store, lambda: self.sampling, lambda: worker.is_cancelled)
        except SlmError as e:
            job.error = e.message
        except Exception as e:  # a bug: keep it visible in the log, and tell the user in words
            self.log.error(f"generation failed: {e!r}")
            job.error = f"{type(e).__name__}: {e}"
            raise

    def _flush(self) -> None:
        """Draw what the worker streamed since the last frame (UI thread, 30 times a second)."""
        job = self.job
        if job is None:
            return
        done = job.done
        events = job.take()
        if events:
            marks = self.tokens.setdefault(job.passage_id, [])
            view = self.story_view
            shown = view.text_of(job.passage_id)
            offset = len(shown) if shown is not None else 0
            pieces = []
            for e in events:
                marks.append(TokenMark(offset, offset + len(e.text), e.token_id, e.prob, e.alternatives))
                offset += len(e.text)
                pieces.append(e.text)
            view.append(job.passage_id, "".join(pieces))
            self._update_context_streaming(job, events[-1].window_tokens)
            self.query_one(StatusLine).tokens_per_second = job.tokens_per_second
        if done:
            self._finish(job)

    def _finish(self, job: StreamJob) -> None:
        if self.job is not job:
            return
        self.job = None
        self._worker = None
        self.refresh_bindings()
        if job.error:
            self.state = f"error: {job.error}"
            self.notify(job.error, title="Generation failed", severity="error", timeout=10)
        else:
            self.state = "ready"
        self._show_story()

    def _stop(self) -> bool:
        """Stop the continuation being written (if any) and wait for its last token: at most one more."""
        job, worker = self.job, self._worker
        if job is None:
            return False
        job.stopped_at = job.produced
        if worker is not None:
            worker.cancel()
        job.finished.wait(STOP_WAIT_S)
        self._flush()
        self.state = "stopped"
        return True

    def shutdown(self) -> None:
        """The app is closing: end the worker and wait until its text is saved (the widgets may be gone)."""
        job, worker = self.job, self._worker
        if job is not None:
            if worker is not None:
                worker.cancel()
            job.finished.wait(STOP_WAIT_S)
            self.job = None

    def action_focus_prompt(self) -> None:
        self.story_view.token_view = False
        self.query_one(PromptLine).focus()

    def action_stop(self) -> None:
        if self._stop():
            self.notify("Stopped.", timeout=2)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.job is not None  # shown in the footer only while the model writes
        return True

    @property
    def generating(self) -> bool:
        return self.job is not None

    # --- the tree: undo, redo, retry, branches -----------------------------------------------------------------

    def action_undo(self) -> None:
        """Drop the last passage from the story; it stays in the tree, and redo brings it back."""
        self._stop()
        if self.story is not None and self.path:
            self.store.undo(self.story.id)
            self._show_story()

    def action_redo(self) -> None:
        self._stop()
        if self.story is not None:
            self.store.redo(self.story.id)
            self._show_story()

    def action_retry(self) -> None:
        """A new continuation of the same point; the old one stays, as a sibling."""
        self._stop()
        current = self.path[-1] if self.path else None
        if current is not None and current.author == "model":
            self._continue_from(current.parent_id)
        else:
            self._continue_from(current.id if current else None)

    def action_sibling(self, step: int) -> None:
        self._stop()
        if self.story is None or not self.path:
            return
        moved = self.store.next_sibling(self.story.id) if step > 0 else self.store.prev_sibling(self.story.id)
        count = len(self.store.siblings(moved.id)) if moved else 1
        self._show_story()
        if count == 1:
            self.notify("No other branch here: Retry (ctrl+r) writes one.", timeout=3)

    @on(HistoryPanel.Chosen)
    def _history_chosen(self, event: HistoryPanel.Chosen) -> None:
        self._stop()
        if self.story is not None:
            self.store.set_current(self.story.id, event.passage_id)
            self._show_story()

    # --- editing -----------------------------------------------------------------------------------------------

    def action_edit_current(self) -> None:
        if self.path:
            self.edit_passage(self.path[-1].id)
        else:
            self.notify("Nothing to edit yet.", timeout=3)

    @on(HistoryPanel.EditRequested)
    def _history_edit(self, event: HistoryPanel.EditRequested) -> None:
        self.edit_passage(event.passage_id)

    def edit_passage(self, passage_id: int) -> None:
        self._stop()
        passage = self.store.get_passage(passage_id)
        who = "your" if passage.author == "user" else "the model's"

        def save(text: str | None) -> None:
            if text is not None and text != passage.text:
                self.store.set_passage_text(passage_id, text)
                self.tokens.pop(passage_id, None)  # its tokens are no longer the model's
                self._show_story()

        self.app.push_screen(EditTextScreen(f"Edit {who} passage (ctrl+s saves, Esc cancels)", passage.text), save)

    @on(MemoryBox.Changed)
    def _memory_changed(self, event: MemoryBox.Changed) -> None:
        if self.story is None and not event.text:
            return
        story = self._ensure_story()
        self.store.set_memory(story.id, event.text)
        self.story = self.store.get_story(story.id)
        self._update_memory_tokens()
        if self.job is None:
            self._update_context_idle()

    # --- sampling ----------------------------------------------------------------------------------------------

    @on(SamplingPanel.Changed)
    def _sampling_changed(self, event: SamplingPanel.Changed) -> None:
        self.sampling = event.sampling  # one reference swap: the worker's next token uses it
        save = getattr(self.app, "remember_sampling", None)
        if save is not None:
            save(event.sampling)

    def set_sampling(self, sampling: Sampling) -> None:
        """Set from outside (tests, presets): the panel shows it and the next token uses it."""
        self.sampling = sampling
        self.query_one(SamplingPanel).sampling = sampling

    # --- token view --------------------------------------------------------------------------------------------

    def action_toggle_tokens(self) -> None:
        view = self.story_view
        view.token_view = not view.token_view
        if view.token_view:
            view.focus()
            if not view.token_positions():
                self.notify("Token view shades the tokens the model writes from now on; none to show yet.",
                            timeout=4)
            else:
                self.notify("Token view: ←/→ move between tokens, Enter shows the alternatives.", timeout=4)
        else:
            self.query_one(PromptLine).focus()

    @on(StoryView.TokenChosen)
    def _token_chosen(self, event: StoryView.TokenChosen) -> None:
        mark = event.mark
        shown = self.story_view.text_of(event.passage_id) or ""

        def picked(alt: Alternative | None) -> None:
            if alt is not None:
                self.branch_from_token(event.passage_id, event.token_index, alt)

        self.app.push_screen(AlternativesScreen(shown[mark.start : mark.end], mark.prob, mark.alternatives), picked)

    def branch_from_token(self, passage_id: int, token_index: int, alt: Alternative) -> None:
        """Rewrite the story from a token: a new sibling of its passage, with the text up to that token and
        the chosen alternative, then the model continues it."""
        self._stop()
        passage = self.store.get_passage(passage_id)
        marks = self.tokens.get(passage_id, [])
        mark = marks[token_index]
        text = passage.text[: mark.start] + alt.text
        kept = marks[:token_index] + [
            TokenMark(mark.start, mark.start + len(alt.text), alt.token_id, alt.prob, mark.alternatives)
        ]
        self._continue_from(passage.parent_id, text=text, tokens=kept)

    # --- context -----------------------------------------------------------------------------------------------

    def _update_memory_tokens(self) -> None:
        if self.engine is None:
            return
        memory = self.story.memory if self.story else ""
        self._memory_tokens = memory_tokens(self.engine.tokenizer, memory, self.engine.block_size)
        self.query_one(ContextMeter).memory_tokens = self._memory_tokens

    def _update_context_idle(self) -> None:
        """What the model would see if it went on now."""
        if self.engine is not None:
            text = self.story_view.full_text
            self._set_context(idle_window(self.engine.tokenizer, text, self.engine.block_size, self._memory_tokens))

    def _update_context_streaming(self, job: StreamJob, window_tokens: int) -> None:
        """What the model saw for the last token drawn."""
        if self._stream_window is not None:
            marks = self.tokens.get(job.passage_id, [])
            self._set_context(self._stream_window.at(job.produced, window_tokens, marks))

    def _set_context(self, window: Window) -> None:
        meter = self.query_one(ContextMeter)
        meter.story_tokens, meter.window_tokens = window.story_tokens, window.window_tokens
        self.query_one(StatusLine).context_used = self._memory_tokens + window.window_tokens
        self.story_view.window_start = window.start

    # --- panels, stories, palette ------------------------------------------------------------------------------

    def action_toggle_panels(self) -> None:
        if self.has_class("-wide"):
            self.toggle_class("-hide-panels")
        else:
            self.toggle_class("-show-panels")

    def action_stories(self) -> None:
        from slmtui.tui.stories import StoriesScreen

        self._stop()

        def chosen(choice: StoriesScreen.Choice | None) -> None:
            if choice is None:  # back: the story shown may have been renamed or deleted meanwhile
                try:
                    self.open_story(self.story.id if self.story else None)
                except SlmError:
                    self.open_story(None)
            else:
                self.open_story(choice.story_id)

        self.app.push_screen(StoriesScreen(self.store, current=self.story.id if self.story else None), chosen)

    def action_export(self, fmt: str) -> None:
        from slmtui.tui.stories import export_story

        if self.story is None:
            self.notify("Nothing to export yet.", timeout=3)
            return
        try:
            path = export_story(self.store, self.story.id, fmt)
        except SlmError as e:
            self.notify(str(e), title="Export failed", severity="error", timeout=10)
            return
        self.notify(f"Exported to {path}", title="Export", timeout=8)

    def action_copy_story(self) -> None:
        self.app.copy_to_clipboard(self.story_view.full_text)
        self.notify("The story is on the clipboard.", timeout=3)

    def action_new_story(self) -> None:
        self.open_story(None)
        self.query_one(PromptLine).focus()

    def action_edit_memory(self) -> None:
        self.add_class("-show-panels")
        self.remove_class("-hide-panels")
        self.query_one("#memory-text").focus()

    def commands(self) -> Iterator[Command]:
        """Every binding of this screen, and the actions that have no key, for the command palette."""
        yield from binding_commands(self)
        yield Command("Continue the story", "enter on an empty prompt", lambda: self.send(""))
        yield Command("New story", "start on an empty page", self.action_new_story)
        yield Command("Export story as Markdown", "writes a .md file and says where", lambda: self.action_export("md"))
        yield Command("Export story as text", "writes a .txt file and says where", lambda: self.action_export("txt"))
        yield Command("Copy story", "the whole story to the clipboard", self.action_copy_story)
        yield Command("Edit memory", "text the model always sees", self.action_edit_memory)
        for name in self.query_one(SamplingPanel).all_presets():
            yield Command(f"Preset: {name}", "sampling preset", lambda n=name: self.query_one(SamplingPanel).use_preset(n))
        save_preset = getattr(self.app, "action_save_preset", None)
        if save_preset is not None:
            yield Command("Save sampling as preset", "kept in config.toml", save_preset)
