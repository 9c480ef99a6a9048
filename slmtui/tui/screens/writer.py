"""The writing room: the story, the prompt line, and the panels that steer the model.

Everything about the story lives in the app's ``WritingSession`` (slmtui/writing/session.py): this screen draws
its state when it says something changed, forwards keys to its operations, and drains its stream once a frame
(a 30 Hz timer calls ``session.poll()`` and draws the new text in one batch), so drawing never falls behind
the engine and never blocks it. The session's worker reads ``session.sampling`` before every token, so the
panel's changes apply to the very next one.

With choices N > 1 the candidates stream into ``CandidatesView`` under the story; it takes the focus, and
1..N (or arrows and Enter) picks one. The History tree acts on any passage (retry, continue, edit, bookmark);
alt+arrows walk the tree from the writer itself.

One class, and a long one, with one job: compose the writer, route its keys and messages to the session, draw
what the session says changed. Every rule is the session's; the actions here only ask, forward and notify.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from textual import on
from textual.app import ComposeResult
from rich.cells import cell_len
from textual.binding import ActiveBinding, Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header

from slmtui.core.sampling import Sampling
from slmtui.core.sentences import FINISH_SENTENCE_ON
from slmtui.stories.records import Bookmark
from slmtui.core.sampling_record import describe_record
from slmtui.core.errors import SlmError
from slmtui.format import plural
from slmtui.stories.records import EXPORT_FORMATS
from slmtui.stories.export import export_story
from slmtui.stories.json_io import export_tree_file
from slmtui.tui.commands import Command, binding_commands
from slmtui.tui.messages import ChoicesChosen, ColoursToggled, SamplingChosen
from slmtui.tui.modals import AskScreen, EditTextScreen
from slmtui.tui.screens.bookmarks import BookmarksScreen
from slmtui.tui.screens.search import Found, SearchScreen
from slmtui.tui.screens.context_viewer import ContextViewerScreen
from slmtui.tui.screens.lorebook import LorebookScreen
from slmtui.tui.screens.stories import StoriesScreen
from slmtui.tui.widgets.context_meter import ContextMeter
from slmtui.tui.widgets.history_panel import HistoryPanel, PassageDetails
from slmtui.tui.widgets.candidates_view import CandidatesView
from slmtui.tui.widgets.memory_box import MemoryBox, NoteBox
from slmtui.tui.widgets.prompt_box import PromptBox
from slmtui.tui.widgets.sampling_panel import SamplingPanel
from slmtui.tui.widgets.status_line import StatusLine
from slmtui.tui.widgets.story_view import HOT_BELOW, WARM_BELOW, Shown, StoryView
from slmtui.writing import MAX_CHOICES
from slmtui.writing.context import Window
from slmtui.writing.session import Change, WritingSession

FRAME_S = 1 / 30
"""How often streamed tokens are drawn: once a frame, however fast the engine runs."""
CANDIDATES_FRAME_S = 0.1
"""How often N > 1 candidates are drawn while they stream. Each pane that follows its stream repaints every line
it shows on each draw, and Textual's cost per line (~0.3 ms here) times four panes made a draw ~40-60 ms of the
UI thread: at 30 a second, more than a core, taken from the decoding process on a two-core machine
(bench_ui_latency --choices 4: the app at 44-47% of the engine's pace, the event loop 250 ms late at p95).
Ten draws a second still show each candidate growing a few words at a time."""
GAUGES_S = 0.25
"""How often the tok/s and the context meter follow a stream. Not every frame: a frame that changes only the
story's last line repaints a few lines, but one that also changes the status line at the bottom repaints the
whole column between them (Textual crops an update to the box around all changes), and every millisecond the
UI thread draws is one the engine's worker waits for the GIL (bench_ui_latency: the app's pace)."""
FREEZE_S = 1.0
"""How often, while a stream runs, the objects it has made so far (token marks, their alternatives) are moved out of
the garbage collector's sight (``gc.freeze``: O(1); they are freed as usual when their last reference goes). Left
in sight, each full collection walks them all on the UI thread: 110-150 ms stalls with four candidates streaming,
during which the worker cannot take the GIL to read the decoding child's pipe (bench_ui_latency)."""

FOOTER_RANK = ("stop", "write", "pick", "quit", "stories", "training", "models", "undo", "retry", "panels",
               "send", "token_view", "next_branch", "newline")
"""The footer's keys from the most to the least important: the first that fit its width are shown (the rest
are in the palette). Keys not named here (a focused panel's own) are the first to go: the tree's are on its
border."""
FOOTER_PALETTE_CELLS = 13
"""What the footer keeps for its palette key at the right: "▏^p palette" and a cell to spare."""

EMPTY_STORY = "An empty page. Write the opening lines below and press Enter, or press Enter on an empty line to let the model begin."
NO_MODEL = "No model yet: train one with slm-train or from the Training screen. Your stories are kept meanwhile."


class WriterScreen(Screen[None]):
    """Write with the model: one story at a time, streamed, branched, saved as it goes."""

    BINDINGS = [
        Binding("escape", "stop", "Stop", id="stop"),
        # Escape while nothing is being written: back to the prompt line from wherever the focus is (the
        # footer shows it whenever the focus is elsewhere).
        Binding("escape", "focus_prompt", "Write", id="write", tooltip="Back to writing (the prompt box)"),
        Binding("ctrl+z", "undo", "Undo", id="undo"),
        Binding("ctrl+y", "redo", "Redo", id="redo", show=False),  # beside Undo in README and the palette
        Binding("ctrl+r", "retry", "Retry", id="retry"),
        Binding("alt+left", "sibling(-1)", "Previous branch", id="prev_branch", show=False),
        # The footer shows the pair as one key; the palette lists both.
        Binding("alt+right", "sibling(1)", "Branch", id="next_branch", key_display="alt+←→", tooltip="Next branch"),
        Binding("alt+up", "undo", "Parent passage", id="parent", show=False),
        Binding("alt+down", "redo", "Child passage", id="child", show=False),
        Binding("ctrl+g", "go_to_tree", "Go to a passage (the tree)", id="tree", show=False),
        Binding("ctrl+b", "bookmark", "Bookmark this passage", id="bookmark", show=False),
        Binding("ctrl+l", "bookmarks", "List the bookmarks", id="bookmarks", show=False),
        Binding("ctrl+f", "search", "Search every branch", id="search", show=False),
        Binding("f3", "toggle_colours", "Colour unlikely tokens", id="colours", show=False),
        Binding("ctrl+t", "toggle_tokens", "Tokens", id="token_view"),
        Binding("f2", "edit_current", "Edit", id="edit", show=False),
        Binding("ctrl+s", "toggle_panels", "Panels", id="panels"),
        Binding("ctrl+o", "stories", "Stories", id="stories"),
        # The lorebook and the context viewer (issue 20): what enters the model's context, and what it reads.
        Binding("f7", "lorebook", "Lorebook", id="lorebook", show=False),
        Binding("f8", "context_viewer", "What the model reads next (context viewer)", id="context_viewer",
                show=False),
    ]

    def __init__(self, session: WritingSession, *, presets: dict[str, dict[str, Any]] | None = None,
                 prob_colours: bool = False) -> None:
        super().__init__()
        self._prob_colours = prob_colours
        """Whether the story opens with probability colours on (config.toml's prob_colours)."""
        self._gauges_at = 0.0
        self._frozen_at = 0.0
        self._drawn_at = 0.0
        self._detailed: int | None = None
        """The passage the details line tells of (the tree's cursor)."""
        self.session = session
        self.presets = presets or {}
        self._last_found: Found | None = None

    # --- layout ------------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(icon="✎")
        with Horizontal(id="body"):
            with Vertical(id="main"):
                yield StoryView(id="story")
                yield CandidatesView(id="candidates")
                yield ContextMeter(id="context")
                yield PromptBox(id="prompt")
            with Vertical(id="side"):
                yield SamplingPanel(id="sampling")
                yield MemoryBox(id="memory")
                yield NoteBox(id="note")
                yield HistoryPanel(id="history")
                yield PassageDetails(id="details")
        yield StatusLine(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        panel = self.query_one(SamplingPanel)
        panel.user_presets = self.presets
        panel.sampling = self.session.sampling
        panel.choices = self.session.choices
        self.story_view.prob_colours = self._prob_colours
        self.query_one(PromptBox).focus()
        # A Textual thread worker runs the stream: the app waits for it on exit, and its errors reach the log.
        self.session.runner = lambda fn: self.run_worker(fn, thread=True, group="generate", exit_on_error=False)
        self.session.listeners.append(self._changed)
        self._draw_notes()
        self._draw_model()
        self._draw_state()
        self._draw_story()
        self.set_interval(FRAME_S, self._frame)

    def on_unmount(self) -> None:
        if self._changed in self.session.listeners:
            self.session.listeners.remove(self._changed)

    @property
    def story_view(self) -> StoryView:
        return self.query_one(StoryView)

    # --- drawing the session -----------------------------------------------------------------------------------

    def _changed(self, change: Change) -> None:
        if change == "model":
            self._draw_model()
            self._draw_story()
        elif change == "story":
            self._draw_story()
        elif change == "memory":
            if not self.session.generating:  # a stream's window keeps the memory and note it started with
                self._draw_context(self.session.idle_window())
        else:
            self._draw_state()
            self.refresh_bindings()

    def _draw_model(self) -> None:
        session, status, meter = self.session, self.query_one(StatusLine), self.query_one(ContextMeter)
        if session.model is not None:
            status.model_name = session.model.name
        elif session.model_problem is not None:
            status.window = meter.window = None
            status.model_name = "no model"
            missing = session.model_missing
            self.story_view.placeholder = NO_MODEL if missing else f"The model could not be loaded: {session.model_problem}"
            if not missing:
                self.notify(session.model_problem, title="Model not loaded", severity="error", timeout=10)

    def _draw_state(self) -> None:
        status = self.query_one(StatusLine)
        status.state, status.state_kind = self.session.state, self.session.state_kind

    def _draw_story(self) -> None:
        """The story at its current passage, the tree, the meter: all from the session."""
        session, view = self.session, self.story_view
        self.sub_title = session.story.title if session.story else "new story"
        if session.model is not None or session.model_problem is None:
            view.placeholder = EMPTY_STORY
        view.show([Shown(p.id, p.author, p.text) for p in session.path], session.tokens)
        self.query_one(HistoryPanel).show(session.tree, [p.id for p in session.path],
                                          {b.passage_id: b.name for b in session.bookmarks},
                                          version=session.tree_version)
        self._draw_candidates()
        self._draw_details()
        if not session.generating:
            self._draw_context(session.idle_window())

    def _draw_notes(self) -> None:
        self.query_one(MemoryBox).text = self.session.memory
        self.query_one(NoteBox).text = self.session.author_note

    def _draw_candidates(self) -> None:
        session, view = self.session, self.query_one(CandidatesView)
        ids = session.candidates
        view.display = bool(ids)
        self.set_class(bool(ids), "-choosing")
        if not ids:
            view.passage_ids = []
            if view.has_focus:
                self.query_one(PromptBox).focus()
            return
        view.show([(i, session.candidate_text.get(i, "")) for i in ids], session.tokens,
                  [session.mean_prob(i) for i in ids])
        if not isinstance(self.focused, (HistoryPanel,)):
            view.focus()

    def _draw_context(self, window: Window | None) -> None:
        """The meter and the status line's ``ctx`` from one ``Window``: what the model sees now."""
        if window is None:
            return
        self.query_one(ContextMeter).window = window
        self.query_one(StatusLine).window = window
        self.story_view.window_start = window.start
        if not self.session.generating:
            self.story_view.lore_spans = self.session.lore_marks()

    def _frame(self) -> None:
        """Draw what the stream wrote since the last frame (UI thread, 30 times a second; candidates 10)."""
        now = time.monotonic()
        if self.session.candidates and self.session.generating and now - self._drawn_at < CANDIDATES_FRAME_S:
            return  # the tokens wait in the job's buffer for the next draw
        progress = self.session.poll()
        if progress is None:
            return
        self._drawn_at = now
        if now - self._frozen_at >= FREEZE_S:
            self._frozen_at = now
            gc.freeze()
        gauges = progress.finished or now - self._gauges_at >= GAUGES_S
        if gauges:
            self._gauges_at = now
            self.query_one(StatusLine).tokens_per_second = progress.tokens_per_second
        # On finishing, the session has re-read the story and the view already shows all of it.
        if progress.streamed and not progress.finished:
            session = self.session
            if session.candidates:
                view = self.query_one(CandidatesView)
                for streamed in progress.streamed:
                    view.append(streamed.index, streamed.passage_id, streamed.text)
                if gauges:
                    view.set_probs([session.mean_prob(i) for i in session.candidates])
            else:
                for streamed in progress.streamed:
                    self.story_view.append(streamed.passage_id, streamed.text)
            if gauges:
                self._draw_context(progress.window)
                if any(st.passage_id == self._detailed for st in progress.streamed):
                    self._draw_details()
        if progress.error:
            self.notify(progress.error, title="Generation failed", severity="error", timeout=10)

    # --- writing -----------------------------------------------------------------------------------------------

    @on(PromptBox.Submitted, "#prompt")
    def _prompt_submitted(self, event: PromptBox.Submitted) -> None:
        event.stop()
        self.send(event.value)

    def send(self, text: str) -> None:
        """The user's line joins the story (if any), then the model continues it."""
        if self.session.send(text) is None and self.session.model is None:
            self.notify("The model is not loaded yet: your text is saved, press Enter again once it is.",
                        severity="warning")

    def action_stop(self) -> None:
        self.session.stop()  # the status line says "stopped": no toast over it

    def action_focus_prompt(self) -> None:
        self.story_view.token_view = False
        self.query_one(PromptBox).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.session.generating  # shown in the footer only while the model writes
        if action == "focus_prompt":  # Escape's other use: shown (and needed) only away from the prompt box
            return not self.session.generating and not isinstance(self.focused, PromptBox)
        return True

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        """The keys the footer shows, as many as its width holds, the most important kept (``FOOTER_RANK``):
        at 80 columns all of them overflowed, cutting Stories, Quit, Train and Models off and leaving a stray
        character under the palette's key. A key left out still works, and the palette (ctrl+p) lists it.
        Only the footer and the key panel read this; Textual dispatches keys from the bindings themselves."""
        bindings = super().active_bindings
        app = self.app
        room = self.size.width - FOOTER_PALETTE_CELLS

        def cells(key: str) -> int:
            binding = bindings[key].binding
            return cell_len(app.get_key_display(binding)) + cell_len(binding.description) + 2

        shown = [key for key, active in bindings.items() if active.binding.show and active.binding.description
                 and key != app.COMMAND_PALETTE_BINDING]
        rank = {name: i for i, name in enumerate(FOOTER_RANK)}
        by_rank = sorted(shown, key=lambda k: rank.get(bindings[k].binding.id or bindings[k].binding.action,
                                                       len(rank)))
        width = sum(cells(k) for k in shown)
        while by_rank and width > room:
            dropped = by_rank.pop()
            width -= cells(dropped)
            del bindings[dropped]
        return bindings

    def on_resize(self) -> None:
        self.refresh_bindings()  # the footer's keys depend on its width

    @on(CandidatesView.Picked)
    def _candidate_picked(self, event: CandidatesView.Picked) -> None:
        if self.session.pick(event.index) is not None:
            self.query_one(PromptBox).focus()

    @on(HistoryPanel.Chosen)
    def _history_chosen(self, event: HistoryPanel.Chosen) -> None:
        self.session.choose(event.passage_id)

    @on(HistoryPanel.Asked)
    def _history_asked(self, event: HistoryPanel.Asked) -> None:
        pid = event.passage_id
        if event.action == "retry":
            self.session.retry(pid)
        elif event.action == "continue":
            self.session.continue_from(pid)
        elif event.action == "edit":
            self.edit_passage(pid)
        else:
            self.ask_bookmark(pid)

    @on(HistoryPanel.Highlighted)
    def _history_highlighted(self, event: HistoryPanel.Highlighted) -> None:
        self._detailed = event.passage_id
        self._draw_details()

    def _draw_details(self) -> None:
        """The details line of the passage the tree's cursor is on, as the session has it now: redrawn when the
        story changes (a stream finished, another story opened) and as a stream grows, never left stale."""
        pid = self._detailed
        if pid is not None and self.session.passage(pid) is None:
            self._detailed = pid = None  # not in this story (any more)
        self.query_one(PassageDetails).text = self.details(pid) if pid is not None else ""

    @on(MemoryBox.Changed, "#memory")
    def _memory_changed(self, event: MemoryBox.Changed) -> None:
        self.session.set_memory(event.text)

    @on(MemoryBox.Changed, "#note")
    def _note_changed(self, event: MemoryBox.Changed) -> None:
        self.session.set_author_note(event.text)

    def on_choices_chosen(self, message: ChoicesChosen) -> None:
        """The panel's choices: the next continuation writes this many (the app keeps it in config.toml)."""
        self.session.set_choices(message.choices)

    def set_choices(self, n: int) -> None:
        """Set from outside (tests): the panel shows it and the next continuation writes ``n``."""
        self.session.set_choices(n)
        self.query_one(SamplingPanel).choices = n

    # --- the tree: passages, branches, candidates, bookmarks, edits --------------------------------------------

    def action_undo(self) -> None:
        self.session.undo()

    def action_redo(self) -> None:
        self.session.redo()

    def action_retry(self) -> None:
        self.session.retry()

    def action_sibling(self, step: int) -> None:
        if self.session.path and self.session.sibling(step) == 1:
            self.notify("No other branch here: Retry (ctrl+r) writes one.", timeout=3)

    def action_pick(self, index: int) -> None:
        """Pick candidate ``index`` (0-based) from the palette or a test."""
        self.session.pick(index)

    def action_toggle_tokens(self) -> None:
        if not self.story_view.toggle_token_view():
            self.query_one(PromptBox).focus()

    def details(self, passage_id: int) -> str:
        """What the tree's details line says of a passage: who wrote it, with which model and sampling."""
        session = self.session
        p = session.passage(passage_id)
        if p is None:
            return ""
        model = p.model or (session.story.model if session.story else None) or "?"
        parts = ["you" if p.author == "user" else f"model {model}"]
        if p.sampling:
            parts.append(describe_record(p.sampling))  # every change mid-passage too, from the token it applied to
        prob = session.mean_prob(p.id)
        if prob is not None:
            parts.append(f"{plural(len(session.marks(p.id)), 'token')}, p̄ {prob:.2f}")
        kids = len(session.tree.get(p.id, []))
        if kids:
            parts.append(f"{kids} continuation{'s' if kids > 1 else ''}")
        names = [b.name for b in session.bookmarks if b.passage_id == p.id]
        if names:
            parts.append("★ " + ", ".join(names))
        return " · ".join(parts)

    def action_go_to_tree(self) -> None:
        self.add_class("-show-panels")
        self.remove_class("-hide-panels")
        self.query_one(HistoryPanel).focus()

    def action_bookmark(self) -> None:
        if self.session.path:
            self.ask_bookmark(self.session.path[-1].id)
        else:
            self.notify("Nothing to bookmark yet.", timeout=3)

    def ask_bookmark(self, passage_id: int) -> None:
        def named(name: str | None) -> None:
            if name and name.strip():
                try:
                    self.session.set_bookmark(name, passage_id)
                except SlmError as e:
                    self.notify(e.message, severity="warning")
                    return
                self.notify(f"Bookmarked “{' '.join(name.split())}”: jump back from the palette (ctrl+p).", timeout=4)

        self.app.push_screen(AskScreen("Name this passage (a bookmark):", placeholder="e.g. the door"), named)

    def jump(self, name: str) -> None:
        if self.session.jump(name):
            self.query_one(HistoryPanel).select_passage(self.session.path[-1].id)

    def action_edit_current(self) -> None:
        if self.session.path:
            self.edit_passage(self.session.path[-1].id)
        else:
            self.notify("Nothing to edit yet.", timeout=3)

    def edit_passage(self, passage_id: int) -> None:
        self.session.stop()
        passage = self.session.store.get_passage(passage_id)
        who = "your" if passage.author == "user" else "the model's"

        def save(text: str | None) -> None:
            if text is not None:
                self.session.edit(passage_id, text)

        title = f"Edit {who} passage: saved as a new branch, the original stays (ctrl+s saves, Esc cancels)"
        self.app.push_screen(EditTextScreen(title, passage.text), save)

    # --- the whole story, and the palette ----------------------------------------------------------------------

    def action_toggle_panels(self) -> None:
        if self.has_class("-wide"):
            self.toggle_class("-hide-panels")
        else:
            self.toggle_class("-show-panels")

    def action_stories(self) -> None:
        session = self.session
        session.stop()
        current = session.story.id if session.story else None

        def chosen(choice: StoriesScreen.Choice | None) -> None:
            try:  # back (None): the story shown may have been renamed or deleted meanwhile
                session.open(current if choice is None else choice.story_id)
            except SlmError:
                session.open(None)
            self._draw_notes()

        self.app.push_screen(StoriesScreen(session.store, current=current), chosen)

    def action_export(self, fmt: str) -> None:
        if self.session.story is None:
            self.notify("Nothing to export yet.", timeout=3)
            return
        try:
            path = export_story(self.session.store, self.session.story.id, fmt)
        except SlmError as e:
            self.notify(str(e), title="Export failed", severity="error", timeout=10)
            return
        self.notify(f"Exported to {path}", title="Export", timeout=8)

    def action_copy_story(self) -> None:
        self.app.copy_to_clipboard(self.session.text)
        self.notify("The story is on the clipboard.", timeout=3)

    def action_export_tree(self) -> None:
        if self.session.story is None:
            self.notify("Nothing to export yet.", timeout=3)
            return
        try:
            path = export_tree_file(self.session.store, self.session.story.id)
        except SlmError as e:
            self.notify(str(e), title="Export failed", severity="error", timeout=10)
            return
        self.notify(f"The whole tree is in {path}", title="Export", timeout=8)

    def action_new_story(self) -> None:
        self.session.open(None)
        self._draw_notes()
        self.query_one(PromptBox).focus()

    def action_edit_memory(self) -> None:
        self.add_class("-show-panels")
        self.remove_class("-hide-panels")
        self.query_one("#memory-text").focus()

    def action_edit_note(self) -> None:
        self.add_class("-show-panels")
        self.remove_class("-hide-panels")
        self.query_one("#note-text").focus()

    def _choose_choices(self, n: int) -> None:
        self.set_choices(n)
        self.post_message(ChoicesChosen(n))  # kept in config.toml, as a change in the panel is

    def commands(self) -> Iterator[Command]:
        """Every binding of this screen, and the actions that have no key, for the command palette."""
        yield from binding_commands(self)
        yield Command("Continue the story", "enter on an empty prompt", lambda: self.send(""))
        yield Command("New story", "start on an empty page", self.action_new_story)
        for fmt, name in EXPORT_FORMATS.items():
            yield Command(f"Export story as {name}", f"writes a .{fmt} file and says where",
                          lambda f=fmt: self.action_export(f))
        yield Command("Export story tree as JSON", "every branch; `slmtui stories import` reads it back",
                      self.action_export_tree)
        yield Command("Copy story", "the whole story to the clipboard", self.action_copy_story)
        yield Command("Edit memory", "text the model always sees", self.action_edit_memory)
        yield Command("Edit author's note", "text the model sees a few lines before the end", self.action_edit_note)
        for mark in self.session.bookmarks:
            yield Command(f"Bookmark: {mark.name}", "jump back to this passage", lambda n=mark.name: self.jump(n))
        yield from self.tree_commands()
        for n in range(1, MAX_CHOICES + 1):  # as many as the sampling panel and config.toml allow
            yield Command(f"Choices: {n}", f"Enter, continue and retry write {plural(n, 'candidate')} at once",
                          lambda n=n: self._choose_choices(n))
        for i in range(len(self.session.candidates)):
            yield Command(f"Pick candidate {i + 1}", "it joins the story; the others stay as branches",
                          lambda i=i: self.action_pick(i))
        for name in self.query_one(SamplingPanel).all_presets():
            yield Command(f"Preset: {name}", "sampling preset", lambda n=name: self.query_one(SamplingPanel).use_preset(n))
        yield Command("Save sampling as preset", "kept in config.toml", self.query_one(SamplingPanel).ask_preset_name)

    # --- the lorebook and the context viewer ---------------------------------------------------------------------

    def action_lorebook(self) -> None:
        self.app.push_screen(LorebookScreen(self.session))

    def action_context_viewer(self) -> None:
        session = self.session
        model = session.model
        self.app.push_screen(ContextViewerScreen(session.context(), model.tokenizer if model else None,
                                                 model=model.name if model else "no model",
                                                 writing=session.generating))

    # --- sampling ----------------------------------------------------------------------------------------------

    @on(SamplingPanel.Changed)
    def _sampling_changed(self, event: SamplingPanel.Changed) -> None:
        self.session.sampling = event.sampling  # one reference swap: the worker's next token uses it
        self.post_message(SamplingChosen(event.sampling))

    def set_sampling(self, sampling: Sampling) -> None:
        """Set from outside (tests, presets): the panel shows it and the next token uses it."""
        self.session.sampling = sampling
        self.query_one(SamplingPanel).sampling = sampling

    # --- token view --------------------------------------------------------------------------------------------

    @on(StoryView.AlternativeChosen)
    def _alternative_chosen(self, event: StoryView.AlternativeChosen) -> None:
        self.session.branch_from_token(event.passage_id, event.token_index, event.alternative)

    # --- the tree's dialogs (bookmarks, search), probability colours, finishing sentences --------------------

    def action_bookmarks(self) -> None:
        def chosen(mark: Bookmark | None) -> None:
            if mark is not None:
                self.jump(mark.name)

        self.app.push_screen(BookmarksScreen(self.session), chosen)

    def action_search(self) -> None:
        if not self.session.tree:
            self.notify("Nothing to search yet: write a few lines first.", timeout=3)
            return
        last = self._last_found

        def found(hit: Found | None) -> None:
            if hit is None or self.session.passage(hit.passage_id) is None:
                return
            self._last_found = hit
            self.session.choose(hit.passage_id)
            self.query_one(HistoryPanel).select_passage(hit.passage_id)
            start = self.story_view.passage_start(hit.passage_id)
            if start is not None:
                self.story_view.call_after_refresh(self.story_view.show_range, start + hit.start, start + hit.end)

        self.app.push_screen(SearchScreen(self.session.search, query=last.query if last else "",
                                          after=last.passage_id if last else None), found)

    def action_toggle_colours(self) -> None:
        view = self.story_view
        view.prob_colours = not view.prob_colours
        self.post_message(ColoursToggled(view.prob_colours))  # kept in config.toml
        if view.prob_colours:
            self.notify(f"Tokens the model gave under {WARM_BELOW * 100:g}% are warm, under {HOT_BELOW * 100:g}% hot: "
                        "where the story turned. ctrl+t branches from one.", title="Probability colours", timeout=5)
        else:
            self.notify("Probability colours off.", timeout=2)

    def set_finish_sentence(self, tokens: int) -> None:
        """Let a continuation run on to the end of its sentence (up to ``tokens`` more; 0: stop at the length),
        as the panel's "finish" field does; kept in config.toml."""
        sampling = replace(self.session.sampling, finish_sentence=tokens)
        self.set_sampling(sampling)
        self.post_message(SamplingChosen(sampling))
        said = (f"on: a continuation that stops mid-sentence runs on, at most {tokens} tokens more" if tokens
                else "off: each continuation stops at its length")
        self.notify(f"Finish sentences {said} (the panel's “finish”).", timeout=4)

    def tree_commands(self) -> Iterator[Command]:
        """The palette's commands for this section's features that are not bindings."""
        if self.session.sampling.finish_sentence:
            yield Command("Finish sentences: off", "stop each continuation at its length, mid-sentence or not",
                          lambda: self.set_finish_sentence(0))
        else:
            yield Command("Finish sentences: on", f"a continuation at its length mid-sentence runs on to the "
                          f"sentence's end (at most {FINISH_SENTENCE_ON} tokens more)",
                          lambda: self.set_finish_sentence(FINISH_SENTENCE_ON))
