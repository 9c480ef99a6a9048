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

import functools
import secrets
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Literal, ParamSpec, TypeVar

from slmtui.core.errors import SlmError
from slmtui.core.token_events import Alternative
from slmtui.core.sampling import Sampling
from slmtui.stories.lorebook import Lorebook
from slmtui.stories.records import Bookmark, Passage, Story
from slmtui.stories.store import StoreWriteError, StoryGoneError, StoryStore
from slmtui.writing import MAX_CHOICES
from slmtui.writing.context import (ModelContext, StreamWindow, Window, build_context, idle_window)
from slmtui.writing.lore import LoreSettings, key_spans, scan_start
from slmtui.writing.records import ActiveModel, Progress, Streamed
from slmtui.writing.stream import SAVE_EVERY_S, StreamJob, Streamer, TokenMark, marks_from_store
from slmtui.writing.tree_search import Hit, Place, place_of, search_tree

Change = Literal["model", "story", "memory", "state", "problem"]
"""What a listener is told changed: the model, the story shown (text, path, tree or candidates), its memory,
author's note or lorebook, the status, or a new ``problem`` to say at once (the app notifies it)."""
StateKind = Literal["idle", "busy", "error"]
Runner = Callable[[Callable[[], None]], object]
"""Runs a callable on a worker thread."""
STOP_WAIT_S = 5.0
"""How long stopping waits for the worker to finish the token it is on (one token: milliseconds)."""


P = ParamSpec("P")
R = TypeVar("R")


def guarded(op: Callable[P, R]) -> Callable[P, R | None]:
    """A session operation that survives the store: text not yet saved is saved first (space may be back); a
    refused write is said (``problem``) and the operation returns None, the text on screen kept; a story
    deleted in another window is kept as a new story from what this window holds, and the operation runs
    once more on it (the user's line lands there, not in a traceback)."""

    @functools.wraps(op)
    def run(*args: P.args, **kwargs: P.kwargs) -> R | None:
        self: WritingSession = args[0]  # type: ignore[assignment]
        if self._guarding:
            return op(*args, **kwargs)
        self._guarding = True
        try:
            self._save_unsaved()
            try:
                return op(*args, **kwargs)
            except StoryGoneError:
                if self.story is None or not self._story_gone() or not self._rescue():
                    raise
                return op(*args, **kwargs)
        except StoreWriteError as e:
            line = args[1] if op.__name__ == "send" and len(args) > 1 else ""
            if isinstance(line, str) and line.strip():  # the prompt box is cleared: the line lives on in words
                line = " ".join(line.split())
                e.message += f"; your line was not saved: “{line if len(line) <= 80 else line[:79] + '…'}”"
            self._write_failed(e)
            return None
        finally:
            self._guarding = False

    return run


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
        self.lore: Lorebook = Lorebook()
        """The open story's lorebook (saved with it; a fresh page has none until it is a story)."""
        self.lore_settings = LoreSettings()
        self._context: tuple[tuple[object, ...], ModelContext] | None = None
        self._job_context: ModelContext | None = None
        self.unsaved: dict[int, tuple[str, str]] = {}
        """Passage id -> (text, packed tokens) shown but refused by the store (a full disk): saved with the next
        operation that finds the store writable again, and by ``shutdown``."""
        self.problem: str | None = None
        """The last thing the store refused, in words (told as "problem"); None once all is saved."""
        self._guarding = False

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
        """Memory tokens the model reads next (the context's, with the line break before lore when one is read)."""
        ctx = self.context()
        return len(ctx.memory_ids) if ctx is not None else 0

    @property
    def note_tokens(self) -> int:
        """The author's note's tokens in what the model reads next (0 without a model)."""
        ctx = self.context()
        return len(ctx.note_ids) if ctx is not None else 0

    def context(self) -> ModelContext | None:
        """What the model reads for its next token (None without a model): while a continuation is written,
        what it read when it began (the prefix stays for the whole stream); else what it would read if it went
        on from the end of the path shown now. Built by the one context builder, and kept until the story, its
        notes, its lore or the model change (the meter and the story view ask on every redraw)."""
        if self.model is None:
            return None
        if self.job is not None and self._job_context is not None:
            return self._job_context
        key = (self.model.name, self.model.block_size, self.text, self.memory, self.author_note, self.lore,
               self.lore_settings)
        if self._context is None or self._context[0] != key:
            self._context = (key, self._build_context(self.text))
        return self._context[1]

    def _build_context(self, story: str) -> ModelContext:
        assert self.model is not None
        return build_context(self.model.tokenizer, story=story, block_size=self.model.block_size,
                             memory=self.memory, note=self.author_note, lore=self.lore.entries,
                             lore_settings=self.lore_settings)

    def lore_marks(self) -> tuple[tuple[int, int], ...]:
        """Where, in the scanned tail of the story shown, the keys of the lore entries the model reads next
        occur, as sorted (start, end): what the story view marks. Empty while a continuation is written (its
        context was built on the text before it) and without a model."""
        ctx = self.context()
        if ctx is None or self.job is not None or not ctx.lore.inserted or self.model is None:
            return ()
        start = scan_start(self.model.tokenizer, self.text, self.lore_settings.scan_depth, ids=ctx.story_ids)
        return tuple(sorted({(a, b) for a, b, _ in key_spans(ctx.lore.inserted, self.text, start)}))

    @property
    def lore_tokens(self) -> int:
        """Lore tokens in what the model reads next (0 without a model)."""
        ctx = self.context()
        return ctx.lore_tokens if ctx is not None else 0

    def idle_window(self) -> Window | None:
        """What the model would see if it went on now (None without a model)."""
        ctx = self.context()
        if self.model is None or ctx is None:
            return None
        return idle_window(self.model.tokenizer, self.text, self.model.block_size, len(ctx.memory_ids),
                           len(ctx.note_ids), ctx.lore_tokens,
                           ids=ctx.story_ids if self.job is None else None)  # idle: the context's are the text's

    def passage(self, passage_id: int) -> Passage | None:
        """A passage of the open story, from the tree read last."""
        return self._by_id.get(passage_id)

    def marks(self, passage_id: int) -> list[TokenMark]:
        """The model's tokens in a passage: streamed this session, else read back from the tree's record (so
        any passage's details, not only the path's, count all of them)."""
        marks = self.tokens.get(passage_id)
        if marks is None:
            p = self._by_id.get(passage_id)
            if p is None or not p.tokens:
                return []
            marks = self.tokens[passage_id] = marks_from_store(p.tokens)
        return marks

    def mean_prob(self, passage_id: int) -> float | None:
        """The mean probability of the model's tokens in a passage (how much the model liked it). Summed as
        the tokens come (the candidates' titles ask every few frames), not over all of them each time."""
        marks = self.marks(passage_id)
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
        self._set_state("ready")
        self._publish("model")

    def model_failed(self, message: str, *, missing: bool) -> None:
        """The app could not load a model: the stories stay usable, and the screen says why."""
        self.model, self.model_problem, self.model_missing = None, message, missing
        self._set_state("no model" if missing else f"error: {message}", "error")
        self._publish("model")

    # --- stories ------------------------------------------------------------------------------------------------

    def open(self, story_id: int | None) -> None:
        """Show a story (None: a fresh page). Text the store refused stays in ``unsaved`` for later, unless its
        story is gone (deleted here, or in another window while this one moves away from it)."""
        self._stop()
        try:
            self._save_unsaved()
        except StoreWriteError:
            pass  # kept, and saved with a later step
        except StoryGoneError:
            self.unsaved = {}
        self.story = self.store.get_story(story_id) if story_id is not None else None
        self.lore = self.store.lore(story_id) if story_id is not None else Lorebook()
        self.tokens = {}
        self.candidates, self.candidate_text = (), {}
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

    @guarded
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

    @guarded
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
        ctx = self._build_context(prompt)  # the one builder: memory, lore, the story's tail, the note
        job = StreamJob(ids, ctx.prompt, memory=ctx.prefix, seed=seed, starts=(len(text),) * n, page=prompt,
                        first_token=len(self.tokens[ids[0]]))
        self._reload()
        self._window = StreamWindow(self.model.tokenizer, prompt, passage_start=len(before),
                                    first_mark=len(self.tokens[ids[0]]), block_size=self.model.block_size,
                                    memory=len(ctx.memory_ids), lore=ctx.lore_tokens, note=len(ctx.note_ids))
        self._job_context = ctx
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

    @guarded
    def retry(self, passage_id: int | None = None) -> StreamJob | None:
        """A new continuation of the same point as ``passage_id`` (any passage; default: the current one); the
        old one stays, as a sibling. On a passage of the user's (or on none), a continuation after it."""
        self._stop()
        target = self._passage(passage_id)
        if target is not None and target.author == "model":
            return self.continue_from(target.parent_id)
        return self.continue_from(target.id if target else None)

    @guarded
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

    @guarded
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

    @guarded
    def undo(self) -> None:
        """Step back a passage; it stays in the tree, and redo brings it back."""
        self._stop()
        self.candidates = ()
        if self.story is not None and self.path:
            self.store.undo(self.story.id)
            self._reload(tree=False)

    @guarded
    def redo(self) -> None:
        self._stop()
        self.candidates = ()
        if self.story is not None:
            self.store.redo(self.story.id)
            self._reload(tree=False)

    @guarded
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

    @guarded
    def choose(self, passage_id: int) -> None:
        """Read the story to ``passage_id`` (a passage picked in the tree)."""
        self._stop()
        self.candidates = ()
        if self.story is not None:
            self.store.set_current(self.story.id, passage_id)
            self._reload(tree=False)

    @guarded
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

    @guarded
    def set_author_note(self, text: str) -> None:
        """The text the model sees a few lines before the end (context.NOTE_DEPTH); saved with the story."""
        if self.story is None and not text:
            return
        story = self.ensure_story()
        self.story = self.store.set_author_note(story.id, text)
        self._publish("memory")

    @guarded
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

    @guarded
    def set_lore(self, book: Lorebook) -> None:
        """The story's whole lorebook, replaced and saved with the story (made one if needed): an entry added,
        edited, switched off, deleted or imported. The next continuation reads what it makes active."""
        if self.story is None and not book.entries:
            return
        story = self.ensure_story()
        self.lore = self.store.set_lore(story.id, book)
        self._publish("memory")

    @guarded
    def delete_bookmark(self, name: str) -> None:
        """Forget a bookmark (its passage stays, as every passage does)."""
        if self.story is not None:
            self.store.delete_bookmark(self.story.id, name)
            self._reload()

    def place(self, passage_id: int) -> Place | None:
        """Where a passage of the open story is, seen from the passage being read."""
        return place_of(self.tree, [p.id for p in self.path], passage_id)

    def search(self, query: str) -> list[Hit]:
        """Every passage of the open story's tree (all branches) holding ``query``, with its place."""
        return search_tree(self.tree, [p.id for p in self.path], query)

    @guarded
    def set_memory(self, text: str) -> None:
        """The text the model always sees before the story; saved with the story (made one if needed)."""
        if self.story is None and not text:
            return
        story = self.ensure_story()
        self.story = self.store.set_memory(story.id, text)
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
        self._job_context = None
        if job.save_error is not None:
            self._merge_unsaved(job.unsaved)
            if isinstance(job.save_error, StoryGoneError) and self._story_gone() and self._rescue():
                return
            self._write_failed(job.save_error)
            return  # no re-read: the screen keeps the text the store lacks
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
            self._merge_unsaved(job.unsaved)
        if self.unsaved:  # a last try, quietly: the screen is going away (the app warned before quitting)
            try:
                self.store.append_texts(self.unsaved)
                self.unsaved = {}
            except SlmError:
                pass

    # --- what the store refused: said at once, kept in memory, saved when it can be ------------------------------

    @property
    def unsaved_chars(self) -> int:
        """Characters on screen that stories.db does not hold yet."""
        return sum(len(text) for text, _ in self.unsaved.values())

    def save_unsaved(self) -> bool:
        """Try again to save what the store refused (space may be back); True when nothing is left unsaved."""
        try:
            self._save_unsaved()
        except StoreWriteError as e:
            self._write_failed(e)
        except StoryGoneError:
            if not (self.story is not None and self._story_gone() and self._rescue()):
                self.unsaved = {}
        return not self.unsaved

    def _merge_unsaved(self, chunks: dict[int, tuple[str, str]]) -> None:
        for pid, (text, packed) in chunks.items():
            old_text, old_packed = self.unsaved.get(pid, ("", ""))
            self.unsaved[pid] = (old_text + text, old_packed + packed)

    def _save_unsaved(self) -> None:
        if not self.unsaved:
            return
        self.store.append_texts(self.unsaved)  # one transaction: all of it lands, or none
        self.unsaved = {}
        self.problem = None
        self._set_state("saved")
        self._publish("problem")

    def _write_failed(self, error: StoreWriteError | SlmError) -> None:
        """Say at once that the store refused a write, and keep the text on screen."""
        kept = self.unsaved_chars
        held = (f" The {kept:,} characters written since the last save stay on screen: copy them (ctrl+p, "
                "Copy story), or free space and they are saved with your next step.") if kept else ""
        self.problem = f"Not saved: {error.message}. Writing stopped.{held}"
        self._set_state("error: not saved", "error")
        self._publish("problem")

    def _story_gone(self) -> bool:
        """True when the open story is no longer in the store (deleted in another window)."""
        if self.story is None:
            return False
        try:
            self.store.get_story(self.story.id)
        except StoryGoneError:
            return True
        return False

    def _rescue(self) -> bool:
        """The open story was deleted in another window: keep everything this window holds (the tree read last,
        the text streamed since, its tokens, its lorebook) as a new story, and open it. False if even that cannot be saved."""
        old = self.story
        if old is None:
            return False
        text = {p.id: p.text for p in self.path}
        text.update(self.candidate_text)
        for pid, (extra, _) in self.unsaved.items():
            if pid not in text:
                text[pid] = self._by_id[pid].text + extra if pid in self._by_id else extra
        marks = {pid: "".join(m.packed() for m in ms) for pid, ms in self.tokens.items()}
        ordered: list[Passage] = []
        queue: list[int | None] = [None]
        while queue:  # parents before children, as insert_tree wants them
            for kid in self.tree.get(queue.pop(0), []):
                ordered.append(replace(kid, text=text.get(kid.id, kid.text), tokens=marks.get(kid.id, kid.tokens)))
                queue.append(kid.id)
        known = {p.id for p in ordered}
        current = self.path[-1].id if self.path and self.path[-1].id in known else None
        bookmarks = [b for b in self.bookmarks if b.passage_id in known]
        try:
            story = self.store.insert_tree(replace(old, current_passage_id=current), ordered, bookmarks, self.lore)
        except StoreWriteError as e:
            self._write_failed(e)
            return False
        self.unsaved = {}
        self.story = story
        self.tokens, self.candidates, self.candidate_text = {}, (), {}
        self._reload()
        self.problem = (f"“{old.title}” was deleted in another window; what this window held is kept as a new "
                        f"story (id {story.id}).")
        self._set_state("kept as a new story", "error")
        self._publish("problem")
        return True

    # --- helpers ------------------------------------------------------------------------------------------------

    def _passage(self, passage_id: int | None) -> Passage | None:
        """The passage named, or the current one."""
        if passage_id is None:
            return self.path[-1] if self.path else None
        return self._by_id.get(passage_id) or self.store.get_passage(passage_id)

    def _set_state(self, state: str, kind: StateKind = "idle") -> None:
        if (state, kind) != (self.state, self.state_kind):
            self.state, self.state_kind = state, kind
            self._publish("state")

    def _publish(self, change: Change) -> None:
        for listener in list(self.listeners):
            listener(change)
