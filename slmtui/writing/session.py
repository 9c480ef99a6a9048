"""The writing session: the open story, the path shown, the model, and the stream being written. No Textual.

The writer screen draws this object's state and forwards keys to its methods; tests drive it directly
(tests/writing/test_session.py). Every operation commits to the ``StoryStore`` as it happens, then re-reads the
story and its whole tree (one query) and tells the ``listeners`` what changed, so a screen redraws from here and
keeps no copy of its own.

Generation runs on a worker thread (``runner``; the screen hands in a Textual thread worker, tests a plain
thread): a ``StreamJob`` buffers the engine's events and saves the text as it goes; ``poll()``, called on the
UI thread once a frame, takes what was streamed, adds it to the path and the token marks, and says where the
model's window now begins. Operations that name a passage take its id and default to the current one (continue,
retry and edit work on any passage of the tree), and ``poll`` reports each stream by its index.

With ``choices`` N > 1, a continuation is N candidates written at once by one batched engine call: N empty
sibling passages are made first (so a crash keeps each one's text), the reader stays on their parent, and
``pick(i)`` makes one current; the others stay in the tree as siblings. An edit is a new sibling too: nothing
anyone wrote is overwritten.

One class, and a long one, because it has one job: every operation (a stream, a move along the tree, a note)
reads and changes the same state (the story, its path and tree, the candidates, the stream) and ends the same way
(commit, re-read, tell the listeners). The dataclasses it hands out are in records.py; the worker's side of a
stream is in stream.py; the model's window is context.py's.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Literal

from slmtui.core.errors import SlmError
from slmtui.engine.generate import Alternative
from slmtui.core.sampling import Sampling
from slmtui.stories.records import Bookmark, Passage, Story
from slmtui.stories.store import StoryStore
from slmtui.writing import MAX_CHOICES
from slmtui.writing.context import (StreamWindow, Window, idle_window, memory_tokens, note_depth, note_tokens,
                                    prompt_with_note)
from slmtui.writing.records import ActiveModel, Progress, Streamed
from slmtui.writing.stream import SAVE_EVERY_S, StreamJob, Streamer, TokenMark, marks_from_store

Change = Literal["model", "story", "memory", "state"]
"""What a listener is told changed: the model, the story shown (text, path, tree or candidates), its memory or
author's note, the status."""
StateKind = Literal["idle", "busy", "error"]
Runner = Callable[[Callable[[], None]], object]
"""Runs a callable on a worker thread."""
STOP_WAIT_S = 5.0
"""How long stopping waits for the worker to finish the token it is on (one token: milliseconds)."""


def join_text(before: str, text: str) -> str:
    """The user's line as it joins the story: a space between words, nothing before punctuation."""
    if before and text and not before[-1].isspace() and not text[0].isspace() and text[0] not in ".,;:!?)'\"”’":
        return " " + text
    return text


def _thread(fn: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=fn, name="slmtui-generate", daemon=True)
    thread.start()
    return thread


class WritingSession:
    """One story being written with one model."""

    def __init__(self, store: StoryStore, *, sampling: Sampling | None = None, runner: Runner = _thread) -> None:
        self.store = store
        self.sampling: Sampling = sampling or Sampling()
        """What the worker reads before every token. Replaced whole, never changed in place."""
        self.runner = runner
        self.model: ActiveModel | None = None
        self.model_problem: str | None = None
        """Why there is no model: None while loading or loaded."""
        self.model_missing = False
        """No model at all (none trained, none bundled), rather than one that failed to load."""
        self.story: Story | None = None
        """None: a fresh page, made a story once something is written."""
        self.path: list[Passage] = []
        """Root to current passage: the story as it reads. The passage being streamed grows here."""
        self.tree: dict[int | None, list[Passage]] = {}
        """Parent id (None for the roots) -> its continuations, in sibling order."""
        self.tokens: dict[int, list[TokenMark]] = {}
        """The model's tokens per passage: streamed this session, or read back from the store."""
        self.choices = 1
        """How many continuations one generation writes side by side (1..MAX_CHOICES)."""
        self.candidates: tuple[int, ...] = ()
        """Passages of the last N > 1 generation still to pick from (empty: none, or picked)."""
        self.candidate_text: dict[int, str] = {}
        """Each candidate's text as it streams in."""
        self.bookmarks: list[Bookmark] = []
        self.job: StreamJob | None = None
        self.state = "loading model…"
        self.state_kind: StateKind = "idle"
        self.save_every = SAVE_EVERY_S
        self.listeners: list[Callable[[Change], None]] = []
        self.tree_version = 0
        """Bumped whenever the tree is re-read: a move along the path leaves it, so the tree is not redrawn."""
        self._by_id: dict[int, Passage] = {}
        self._prob_sums: dict[int, tuple[int, float]] = {}
        self._window: StreamWindow | None = None
        self._memory_tokens = 0
        self._note_tokens = 0

    # --- what the screen reads ----------------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The story's text along the path shown."""
        return "".join(p.text for p in self.path)

    @property
    def memory(self) -> str:
        return self.story.memory if self.story else ""

    @property
    def generating(self) -> bool:
        return self.job is not None

    @property
    def author_note(self) -> str:
        return self.story.author_note if self.story else ""

    @property
    def memory_tokens(self) -> int:
        return self._memory_tokens

    @property
    def note_tokens(self) -> int:
        return self._note_tokens

    def idle_window(self) -> Window | None:
        """What the model would see if it went on now (None without a model)."""
        if self.model is None:
            return None
        return idle_window(self.model.tokenizer, self.text, self.model.block_size, self._memory_tokens,
                           self._note_tokens)

    def passage(self, passage_id: int) -> Passage | None:
        """A passage of the open story, from the tree read last."""
        return self._by_id.get(passage_id)

    def mean_prob(self, passage_id: int) -> float | None:
        """The mean probability of the model's tokens in a passage (how much the model liked it). Summed as
        the tokens come (the candidates' titles ask every few frames), not over all of them each time."""
        marks = self.tokens.get(passage_id)
        if not marks:
            return None
        counted, total = self._prob_sums.get(passage_id, (0, 0.0))
        if counted > len(marks):  # the marks were replaced (a reopened or rewritten passage)
            counted, total = 0, 0.0
        total += sum(m.prob for m in marks[counted:])
        self._prob_sums[passage_id] = (len(marks), total)
        return total / len(marks)

    def set_choices(self, n: int) -> None:
        if not 1 <= n <= MAX_CHOICES:
            raise SlmError(f"choices must be 1 to {MAX_CHOICES}, not {n}", exit_code=2)
        self.choices = n

    def siblings(self, passage_id: int) -> list[Passage]:
        passage = next((p for kids in self.tree.values() for p in kids if p.id == passage_id), None)
        return self.tree.get(passage.parent_id, []) if passage else []

    # --- the model ----------------------------------------------------------------------------------------------

    def set_model(self, model: ActiveModel) -> None:
        self.model, self.model_problem, self.model_missing = model, None, False
        self._count_memory()
        self._set_state("ready")
        self._publish("model")

    def model_failed(self, message: str, *, missing: bool) -> None:
        """The app could not load a model: the stories stay usable, and the screen says why."""
        self.model, self.model_problem, self.model_missing = None, message, missing
        self._set_state("no model" if missing else f"error: {message}", "error")
        self._publish("model")

    # --- stories ------------------------------------------------------------------------------------------------

    def open(self, story_id: int | None) -> None:
        """Show a story (None: a fresh page)."""
        self._stop()
        self.story = self.store.get_story(story_id) if story_id is not None else None
        self.tokens = {}
        self.candidates, self.candidate_text = (), {}
        self._count_memory()
        self._reload()

    def open_recent(self) -> None:
        recent = self.store.list_stories()
        self.open(recent[0].id if recent else None)

    def ensure_story(self) -> Story:
        if self.story is None:
            self.story = self.store.create_story(model=self.model.name if self.model else None)
        return self.story

    def _reload(self, *, tree: bool = True) -> None:
        """Re-read the story, its path and (unless only the path moved: ``tree`` False) its whole tree, and
        tell the listeners. A move along a 300-passage tree re-reads one row, not 300."""
        if self.story is None:
            self.path, self.tree, self.bookmarks = [], {}, []
            self.tree_version += 1
        elif not tree:
            self.story = self.store.get_story(self.story.id)
            self.path = self._path_in_tree(self.story.current_passage_id)
        else:
            self.story = self.store.get_story(self.story.id)
            self.path = self.store.current_path(self.story.id)
            self.tree = {}
            for p in self.store.passages(self.story.id):
                self.tree.setdefault(p.parent_id, []).append(p)
            self.bookmarks = self.store.bookmarks(self.story.id)
            self.tree_version += 1
        if tree:
            self._by_id = {p.id: p for kids in self.tree.values() for p in kids}
        for p in [*self.path, *(self._by_id[c] for c in self.candidates if c in self._by_id)]:
            if p.id not in self.tokens and p.tokens:  # written in an earlier session: the stored tokens
                self.tokens[p.id] = marks_from_store(p.tokens)
        if self.job is None:
            self.candidate_text = {c: self._by_id[c].text for c in self.candidates if c in self._by_id}
        self._publish("story")

    def _path_in_tree(self, passage_id: int | None) -> list[Passage]:
        """Root to ``passage_id`` from the tree read last (the store's answer when the tree lacks one)."""
        path: list[Passage] = []
        while passage_id is not None:
            p = self._by_id.get(passage_id)
            if p is None:
                return self.store.current_path(self.story.id) if self.story else []
            path.append(p)
            passage_id = p.parent_id
        return path[::-1]

    # --- writing ------------------------------------------------------------------------------------------------

    def send(self, text: str) -> StreamJob | None:
        """The user's line joins the story (if any), then the model continues it. None: no model to continue
        with (the line is saved)."""
        self._stop()
        story = self.ensure_story()
        parent = self.path[-1].id if self.path else None
        if text.strip():
            before = self.path[-1].text if self.path else ""
            parent = self.store.add_passage(story.id, parent_id=parent, author="user", text=join_text(before, text)).id
        return self.continue_from(parent)

    def continue_from(self, parent_id: int | None, *, text: str = "", tokens: list[TokenMark] | None = None,
                      n: int | None = None) -> StreamJob | None:
        """New model passages under ``parent_id`` (any passage of the tree; None: the story's start), streamed
        into: one that becomes current (starting with ``text``), or, with ``n`` (default: ``choices``) > 1,
        ``n`` candidates written at once while the reader stays on ``parent_id`` until ``pick``."""
        self._stop()
        story = self.ensure_story()
        if self.model is None:
            self._reload()
            return None
        n = 1 if text else (n or self.choices)
        seed = self.sampling.seed if self.sampling.seed is not None else secrets.randbelow(2**31)
        settings = self.sampling.to_dict()
        if n == 1:
            marks = list(tokens or [])
            passage = self.store.add_passage(story.id, parent_id=parent_id, author="model", text=text,
                                             sampling={**settings, "seed": seed}, model=self.model.name,
                                             tokens="".join(m.packed() for m in marks))
            ids: tuple[int, ...] = (passage.id,)
            self.tokens[passage.id] = marks
            self.candidates = ()
        else:  # stream i draws with seed + i (the engine's rule), so each candidate replays alone
            made = self.store.add_passages(story.id, parent_id=parent_id, count=n, model=self.model.name,
                                           sampling=[{**settings, "seed": seed + i} for i in range(n)])
            self.store.set_current(story.id, parent_id)
            ids = tuple(p.id for p in made)
            self.candidates = ids
            self.candidate_text = {i: "" for i in ids}
            for i in ids:
                self.tokens[i] = []
        before = self.store.story_text(story.id, parent_id) if parent_id is not None else ""
        prompt = before + text
        depth = note_depth(self.model.block_size, self._memory_tokens, self._note_tokens)
        job = StreamJob(ids, prompt_with_note(self.model.tokenizer, prompt, self.author_note, depth=depth),
                        memory=self.memory, seed=seed, starts=(len(text),) * n, page=prompt,
                        first_token=len(self.tokens[ids[0]]))
        self._reload()
        self._window = StreamWindow(self.model.tokenizer, prompt, passage_start=len(before),
                                    first_mark=len(self.tokens[ids[0]]), note=self._note_tokens)
        self.job = job
        self._set_state("writing…", "busy")
        generator = self.model.streamer()
        self.runner(lambda: self._work(job, generator))
        return job

    def _work(self, job: StreamJob, generator: Streamer) -> None:
        """The worker thread's body."""
        try:
            job.run(generator, self.store, lambda: self.sampling, save_every=self.save_every)
        except SlmError as e:
            job.error = e.message
        except Exception as e:  # a bug: say it in words, and keep the traceback for the worker's log
            job.error = f"{type(e).__name__}: {e}"
            raise

    def retry(self, passage_id: int | None = None) -> StreamJob | None:
        """A new continuation of the same point as ``passage_id`` (any passage; default: the current one); the
        old one stays, as a sibling. On a passage of the user's (or on none), a continuation after it."""
        self._stop()
        target = self._passage(passage_id)
        if target is not None and target.author == "model":
            return self.continue_from(target.parent_id)
        return self.continue_from(target.id if target else None)

    def pick(self, index: int) -> Passage | None:
        """Candidate ``index`` (0-based) joins the story: it becomes current; the others stay as siblings."""
        if not 0 <= index < len(self.candidates) or self.story is None:
            return None
        self._stop()
        chosen = self.candidates[index]
        self.candidates, self.candidate_text = (), {}
        passage = self.store.set_current(self.story.id, chosen)
        self._reload(tree=False)
        return passage

    def branch_from_token(self, passage_id: int, token_index: int, alt: Alternative) -> StreamJob | None:
        """Rewrite the story from a token: a new sibling of its passage with the text up to that token and the
        chosen alternative, which the model then continues."""
        self._stop()
        passage = self.store.get_passage(passage_id)
        marks = self.tokens.get(passage_id, [])
        mark = marks[token_index]
        kept = marks[:token_index] + [
            TokenMark(mark.start, mark.start + len(alt.text), alt.token_id, alt.prob, mark.alternatives)
        ]
        return self.continue_from(passage.parent_id, text=passage.text[: mark.start] + alt.text, tokens=kept)

    # --- moves along the tree (each stops a stream first when it must, commits, re-reads) -----------------------

    def undo(self) -> None:
        """Step back a passage; it stays in the tree, and redo brings it back."""
        self._stop()
        self.candidates = ()
        if self.story is not None and self.path:
            self.store.undo(self.story.id)
            self._reload(tree=False)

    def redo(self) -> None:
        self._stop()
        self.candidates = ()
        if self.story is not None:
            self.store.redo(self.story.id)
            self._reload(tree=False)

    def sibling(self, step: int) -> int:
        """Switch to the next (``step`` > 0) or previous alternative of the current passage; returns how many
        alternatives there are at this point (1: nothing to switch to)."""
        self._stop()
        self.candidates = ()
        if self.story is None or not self.path:
            return 1
        moved = self.store.next_sibling(self.story.id) if step > 0 else self.store.prev_sibling(self.story.id)
        self._reload(tree=False)
        return len(self.siblings(moved.id)) if moved else 1

    def choose(self, passage_id: int) -> None:
        """Read the story to ``passage_id`` (a passage picked in the tree)."""
        self._stop()
        self.candidates = ()
        if self.story is not None:
            self.store.set_current(self.story.id, passage_id)
            self._reload(tree=False)

    def edit(self, passage_id: int, text: str) -> Passage | None:
        """The passage rewritten: a new sibling with ``text``, made current; the original (with its tokens and
        what follows it) stays in the tree, one alt+left away. None when the text did not change."""
        self._stop()
        if text == self.store.get_passage(passage_id).text:
            return None
        self.candidates = ()
        edited = self.store.edit_passage(passage_id, text)
        self._reload()
        return edited

    # --- the story's notes: memory, author's note, bookmarks ----------------------------------------------------

    def set_author_note(self, text: str) -> None:
        """The text the model sees a few lines before the end (context.NOTE_DEPTH); saved with the story."""
        if self.story is None and not text:
            return
        story = self.ensure_story()
        self.story = self.store.set_author_note(story.id, text)
        self._count_memory()
        self._publish("memory")

    def set_bookmark(self, name: str, passage_id: int | None = None) -> Bookmark | None:
        """Name a passage (default: the current one) to come back to it."""
        target = self._passage(passage_id)
        if self.story is None or target is None:
            return None
        mark = self.store.set_bookmark(self.story.id, target.id, name)
        self._reload()
        return mark

    def jump(self, name: str) -> bool:
        """Read the story to the passage bookmarked ``name``; False if there is no such bookmark."""
        mark = next((b for b in self.bookmarks if b.name == name), None)
        if mark is None:
            return False
        self.choose(mark.passage_id)
        return True

    def set_memory(self, text: str) -> None:
        """The text the model always sees before the story; saved with the story (made one if needed)."""
        if self.story is None and not text:
            return
        story = self.ensure_story()
        self.story = self.store.set_memory(story.id, text)
        self._count_memory()
        self._publish("memory")

    # --- the stream: what the UI thread takes from it once a frame, and stopping it -----------------------------

    def poll(self) -> Progress | None:
        """What was streamed since the last poll (UI thread, once a frame); None when nothing is being written."""
        job = self.job
        if job is None:
            return None
        done = job.done
        taken = job.take()
        streamed: list[Streamed] = []
        window = None
        if taken:
            by_stream: dict[int, list] = {}
            for t in taken:
                by_stream.setdefault(t.stream, []).append(t)
            for index, tokens in sorted(by_stream.items()):
                pid = job.passage_ids[index]
                new = tuple(t.mark for t in tokens)
                text = "".join(t.event.text for t in tokens)
                self.tokens.setdefault(pid, []).extend(new)
                if job.n > 1:
                    self.candidate_text[pid] = self.candidate_text.get(pid, "") + text
                elif self.path and self.path[-1].id == pid:
                    self.path[-1] = replace(self.path[-1], text=self.path[-1].text + text)
                else:
                    continue
                streamed.append(Streamed(index, pid, text, new))
                if index == 0 and self._window is not None:
                    window = self._window.at(job.produced_by[0], tokens[-1].event.window_tokens, self.tokens[pid])
        if done:
            self._finish(job)
        return Progress(tuple(streamed), window, job.tokens_per_second, done, job.error if done else None)

    def _finish(self, job: StreamJob) -> None:
        if self.job is not job:
            return
        self.job = None
        self._window = None
        if job.error:
            self._set_state(f"error: {job.error}", "error")
        elif job.stopped_at is None:
            self._set_state("ready")
        self._reload()

    def stop(self) -> bool:
        """Stop the continuation being written and wait for its last token (at most one more); True if one was."""
        if not self._stop():
            return False
        self._set_state("stopped")
        return True

    def _stop(self) -> bool:
        job = self.job
        if job is None:
            return False
        job.cancel()
        job.finished.wait(STOP_WAIT_S)
        self.poll()
        self._set_state("stopped")
        return True

    def shutdown(self) -> None:
        """The app is closing: end the worker and wait until its text is saved."""
        job = self.job
        if job is not None:
            job.cancel()
            job.finished.wait(STOP_WAIT_S)
            self.job = None

    # --- helpers ------------------------------------------------------------------------------------------------

    def _passage(self, passage_id: int | None) -> Passage | None:
        """The passage named, or the current one."""
        if passage_id is None:
            return self.path[-1] if self.path else None
        return self._by_id.get(passage_id) or self.store.get_passage(passage_id)

    def _count_memory(self) -> None:
        if self.model is not None:
            self._memory_tokens = memory_tokens(self.model.tokenizer, self.memory, self.model.block_size)
            self._note_tokens = note_tokens(self.model.tokenizer, self.author_note)

    def _set_state(self, state: str, kind: StateKind = "idle") -> None:
        if (state, kind) != (self.state, self.state_kind):
            self.state, self.state_kind = state, kind
            self._publish("state")

    def _publish(self, change: Change) -> None:
        for listener in list(self.listeners):
            listener(change)
