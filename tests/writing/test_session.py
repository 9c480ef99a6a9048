"""The writing session, headless: every operation on the story tree, streaming into the store, stop, the window.

No Textual: the session runs its stream on a plain thread and the test polls it as the screen's timer would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from slmtui.core.errors import SlmError
from slmtui.core.token_events import TokenEvent
from slmtui.engine.generate import Generator
from slmtui.engine.model import GPT
from slmtui.core.sampling import Sampling
from slmtui.engine.tokenizer import Tokenizer
from slmtui.stories.lorebook import LoreEntry, Lorebook
from slmtui.stories.store import StoryStore
from slmtui.writing.records import ActiveModel, Progress
from slmtui.writing.session import WritingSession, join_text
from slmtui.writing.stream import StreamJob, marks_from_store

FAST = Sampling(max_new_tokens=6, seed=1)


class GatedGenerator(Generator):
    """The real engine, which waits for ``gate`` before each token once ``hold`` is set: a test can act while
    a stream is under way, at a known point, without timing."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.hold = False
        self.gate = threading.Semaphore(0)

    def stream(self, *args, **kwargs) -> Iterator[TokenEvent]:  # type: ignore[no-untyped-def, override]
        for event in super().stream(*args, **kwargs):
            if self.hold:
                self.gate.acquire(timeout=10)
            yield event


@pytest.fixture
def generator(tiny_model: GPT, byte_tokenizer: Tokenizer) -> GatedGenerator:
    return GatedGenerator(tiny_model, byte_tokenizer)


@pytest.fixture
def session(store: StoryStore, generator: GatedGenerator) -> Iterator[WritingSession]:
    s = WritingSession(store, sampling=FAST)
    s.set_model(ActiveModel(generator, "tiny"))
    yield s
    generator.hold = False
    for _ in range(100):
        generator.gate.release()
    s.shutdown()


def let_through(generator: GatedGenerator, job: StreamJob, n: int, *, timeout: float = 10.0) -> None:
    """Let ``n`` more tokens out of a held generator and wait until the job has them."""
    target = job.produced + n
    for _ in range(n):
        generator.gate.release()
    deadline = time.monotonic() + timeout
    while job.produced < target:
        assert time.monotonic() < deadline, "the stream did not go on"
        time.sleep(0.005)


def finish(session: WritingSession, *, timeout: float = 30.0) -> list[Progress]:
    """Poll until the stream in progress ends, as the screen's frame timer does; returns every poll's answer."""
    seen: list[Progress] = []
    deadline = time.monotonic() + timeout
    while session.job is not None:
        assert time.monotonic() < deadline, "the stream never ended"
        progress = session.poll()
        if progress is not None:
            seen.append(progress)
        time.sleep(0.005)
    return seen


def test_send_streams_a_model_passage_after_the_users(session: WritingSession, store: StoryStore) -> None:
    changes: list[str] = []
    session.listeners.append(changes.append)
    job = session.send("Once")
    assert job is not None and session.state == "writing…" and session.state_kind == "busy"
    seen = finish(session)
    assert [p.author for p in session.path] == ["user", "model"]
    streamed = "".join(s.text for p in seen for s in p.streamed)
    assert session.path[-1].text == streamed and streamed, "what was polled is what the passage holds"
    assert all(s.index == 0 and s.passage_id == job.passage_id for p in seen for s in p.streamed)
    assert session.text == store.story_text(session.story.id) == "Once" + streamed  # type: ignore[union-attr]
    assert len(session.tokens[job.passage_id]) == job.produced == FAST.max_new_tokens
    marks = session.tokens[job.passage_id]
    assert "".join(streamed[m.start : m.end] for m in marks) == streamed, "marks locate each token in the text"
    assert seen[-1].finished and session.state == "ready" and "story" in changes and "state" in changes


def test_send_without_a_model_keeps_the_line(store: StoryStore) -> None:
    session = WritingSession(store)
    session.model_failed("no models", missing=True)
    assert session.send("Hello") is None
    assert [p.text for p in session.path] == ["Hello"] and session.state == "no model"
    assert session.state_kind == "error"


def test_join_text_spaces_words_but_not_punctuation() -> None:
    assert join_text("Once", "upon") == " upon"
    assert join_text("Once", ", then") == ", then"
    assert join_text("Once ", "upon") == "upon"
    assert join_text("", "upon") == "upon"


def test_undo_redo_retry_and_siblings(session: WritingSession) -> None:
    session.send("It began")
    finish(session)
    first = session.path[-1]
    session.retry()
    finish(session)
    second = session.path[-1]
    assert second.id != first.id and second.parent_id == first.parent_id, "retry adds a sibling"
    assert [p.id for p in session.siblings(second.id)] == [first.id, second.id]
    assert session.sibling(-1) == 2 and session.path[-1].id == first.id
    assert session.sibling(+1) == 2 and session.path[-1].id == second.id
    session.undo()
    assert [p.author for p in session.path] == ["user"]
    session.undo()
    assert session.path == [] and session.text == ""
    session.redo()
    session.redo()
    assert session.path[-1].id == second.id, "redo retraces the branch last read"
    tree_ids = sorted(p.id for kids in session.tree.values() for p in kids)
    assert tree_ids == sorted([session.path[0].id, first.id, second.id]), "nothing is ever deleted"


def test_retry_on_a_users_passage_continues_after_it(session: WritingSession) -> None:
    session.send("Start")
    finish(session)
    user = session.path[0]
    session.undo()
    assert session.path[-1].id == user.id
    session.retry()
    finish(session)
    assert session.path[-2].id == user.id and session.path[-1].author == "model"
    assert len(session.tree[user.id]) == 2


def test_retry_a_passage_further_up_makes_a_sibling_there(session: WritingSession) -> None:
    session.send("One")
    finish(session)
    early = session.path[-1]
    session.send("Two")
    finish(session)
    session.retry(early.id)
    finish(session)
    assert session.path[-1].parent_id == early.parent_id and session.path[-1].id != early.id
    assert len(session.path) == 2


def test_choose_a_passage_in_the_tree(session: WritingSession) -> None:
    session.send("A")
    finish(session)
    first = session.path[-1]
    session.retry()
    finish(session)
    session.choose(first.id)
    assert session.path[-1].id == first.id and session.text.endswith(first.text)


def test_choose_an_alternative_token_branches_from_it(session: WritingSession, generator: Generator) -> None:
    session.sampling = Sampling(max_new_tokens=8, seed=2, top_k=5)
    session.send("Hi")
    finish(session)
    original = session.path[-1]
    marks = session.tokens[original.id]
    k = 3
    alt = marks[k].alternatives[-1]
    session.branch_from_token(original.id, k, alt)
    branch = session.path[-1]
    assert branch.id != original.id and branch.parent_id == original.parent_id
    assert branch.text == original.text[: marks[k].start] + alt.text, "the branch starts with the chosen token"
    finish(session)
    kept = session.tokens[branch.id]
    assert [m.token_id for m in kept[:k]] == [m.token_id for m in marks[:k]] and kept[k].token_id == alt.token_id
    assert session.path[-1].text.startswith(original.text[: marks[k].start] + alt.text)


def test_edit_is_a_new_sibling_and_keeps_the_original(session: WritingSession, store: StoryStore) -> None:
    session.send("Edit me")
    finish(session)
    passage = session.path[-1]
    original = passage.text
    edited = session.edit(passage.id, "rewritten.")
    assert edited is not None and session.path[-1].id == edited.id != passage.id
    assert session.path[-1].text == "rewritten." and store.get_passage(passage.id).text == original
    assert [p.id for p in session.siblings(passage.id)] == [passage.id, edited.id]
    assert session.tokens[passage.id] and edited.id not in session.tokens  # the edit is not the model's


def test_memory_is_saved_with_the_story_and_reaches_the_model(session: WritingSession, store: StoryStore) -> None:
    changes: list[str] = []
    session.listeners.append(changes.append)
    session.set_memory("")
    assert session.story is None, "clearing the memory of a blank page makes no story"
    session.set_memory("Wendy is brave.")
    assert session.story is not None and store.get_story(session.story.id).memory == "Wendy is brave."
    assert session.memory_tokens == len("Wendy is brave.") and "memory" in changes
    job = session.send("Go")
    assert session.model is not None
    assert job is not None and job.memory == session.model.tokenizer.encode("Wendy is brave."), \
        "the engine is given the memory's tokens (the context builder's prefix)"
    finish(session)


def test_stop_ends_within_one_token_and_everything_shown_is_saved(
    session: WritingSession, generator: GatedGenerator, store: StoryStore
) -> None:
    session.sampling = Sampling(max_new_tokens=500, seed=5)
    generator.hold = True
    job = session.send("Go")
    assert job is not None
    let_through(generator, job, 3)
    generator.gate.release()  # the token it may be computing when stop comes
    assert session.stop()
    assert job.done and job.stopped_at is not None and job.produced <= job.stopped_at + 1
    assert session.job is None and session.state == "stopped" and not session.stop()
    assert store.story_text(session.story.id) == session.text  # type: ignore[union-attr]
    assert len(session.tokens[job.passage_id]) == job.produced


def test_the_story_is_saved_while_it_streams(
    session: WritingSession, generator: GatedGenerator, store: StoryStore
) -> None:
    session.sampling = Sampling(max_new_tokens=50, seed=7)
    session.save_every = 0.0  # every token is committed: what a kill -9 finds
    generator.hold = True
    job = session.send("Saved")
    assert job is not None
    let_through(generator, job, 5)
    saved = store.get_passage(job.passage_id).text
    progress = session.poll()
    assert progress is not None and not progress.finished and not job.done
    shown = progress.streamed[0].text
    assert shown.startswith(saved) and len(saved) >= session.tokens[job.passage_id][3].end, \
        "all but at most the newest token is in the database before the stream ends"
    generator.hold = False
    for _ in range(50):
        generator.gate.release()
    finish(session)


def test_the_window_slides_once_the_story_outgrows_the_context(session: WritingSession) -> None:
    block = session.model.block_size  # type: ignore[union-attr]
    session.sampling = Sampling(max_new_tokens=block * 2, seed=3)
    session.send("x" * (block // 2))
    seen = finish(session)
    windows = [p.window for p in seen if p.window is not None]
    assert windows and windows[0].start == 0
    last = windows[-1]
    assert last.window_tokens <= block and last.story_tokens > block
    assert last.start > 0, "the window moved past the story's start"
    idle = session.idle_window()
    assert idle is not None and idle.window_tokens == block and idle.start > 0


def test_open_shows_a_story_and_its_whole_tree(session: WritingSession, store: StoryStore) -> None:
    session.send("Keep")
    finish(session)
    session.retry()
    finish(session)
    story_id = session.story.id  # type: ignore[union-attr]
    written = session.tokens[session.path[-1].id]
    session.open(None)
    assert session.story is None and session.path == [] and session.tree == {}
    session.open(story_id)
    assert session.text == store.story_text(story_id)
    assert len(session.tree[session.path[0].id]) == 2
    reopened = session.tokens[session.path[-1].id]  # read back from the store: token view works after a restart
    assert [(m.start, m.end, m.token_id) for m in reopened] == [(m.start, m.end, m.token_id) for m in written]
    assert [round(m.prob, 5) for m in reopened] == [round(m.prob, 5) for m in written]
    assert [[a.token_id for a in m.alternatives] for m in reopened] == [[a.token_id for a in m.alternatives]
                                                                        for m in written]


def test_retry_on_a_passage_three_levels_up_makes_a_sibling_there(session: WritingSession, store: StoryStore) -> None:
    session.send("One")
    finish(session)
    first_model = session.path[-1]
    for line in ("Two", "Three"):
        session.send(line)
        finish(session)
    assert len(session.path) == 6 and first_model.id == session.path[1].id
    session.retry(first_model.id)  # three model passages up from the end
    finish(session)
    siblings = store.siblings(first_model.id)
    assert [p.id for p in siblings][0] == first_model.id and len(siblings) == 2
    assert session.path[-1].id == siblings[1].id and len(session.path) == 2
    assert len(store.path_to(first_model.id)) == 2 and store.children(first_model.id), "the old branch is whole"


def test_author_note_sits_note_depth_tokens_before_the_end_of_the_engines_window(
        session: WritingSession, generator: GatedGenerator, byte_tokenizer: Tokenizer) -> None:
    from slmtui.engine.decoder import Decoder
    from slmtui.writing.context import NOTE_DEPTH, note_block, note_depth

    seen: list[object] = []
    real = generator.stream

    def recording(prompt, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append((prompt, kwargs.get("memory", "")))
        return real(prompt, *args, **kwargs)

    generator.stream = recording  # type: ignore[method-assign]
    session.set_memory("Wendy is brave.")
    session.set_author_note("Tone: eerie.")
    assert session.note_tokens == len(byte_tokenizer.encode(note_block("Tone: eerie.")))
    story = "The wind rose over the moor and the old house creaked. " * 3
    session.send(story)
    finish(session)
    prompt, memory = seen[-1]
    assert isinstance(prompt, list)
    decoder = Decoder(generator.model, memory=memory)
    decoder.start(prompt)
    window = decoder.window if isinstance(decoder.window, list) else list(decoder.window)
    note = byte_tokenizer.encode(note_block("Tone: eerie."))
    mem = byte_tokenizer.encode("Wendy is brave.")
    depth = note_depth(generator.model.config.block_size, len(mem), len(note))
    assert depth == min(NOTE_DEPTH, (64 - len(mem) - len(note)) // 2) > 0  # the tiny model's 64-token window
    assert window[: len(mem)] == mem, "the memory heads the window"
    assert window[-depth - len(note): -depth] == note, "the note sits `depth` story tokens before the end"
    assert byte_tokenizer.decode(window[-depth:]) == session.store.story_text(session.story.id,  # type: ignore[union-attr]
                                                                               session.path[-2].id)[-depth:]
    assert note_depth(1024, 10, 10) == NOTE_DEPTH, "a real model's window holds the full depth"
    assert session.store.get_story(session.story.id).author_note == "Tone: eerie."  # type: ignore[union-attr]


def test_choices_3_writes_three_candidates_at_once_and_pick_keeps_the_others(
        session: WritingSession, store: StoryStore) -> None:
    session.set_choices(3)
    job = session.send("Three ways")
    assert job is not None and job.n == 3
    finish(session)
    user = session.path[-1]
    assert user.author == "user", "the reader stays on the parent until a pick"
    ids = session.candidates
    assert len(ids) == 3 and [p.id for p in store.children(user.id)] == list(ids)
    texts = [store.get_passage(i).text for i in ids]
    assert [session.candidate_text[i] for i in ids] == texts and all(texts)
    assert all(len(session.tokens[i]) == FAST.max_new_tokens for i in ids)
    seeds = [store.get_passage(i).sampling["seed"] for i in ids]  # type: ignore[index]
    assert seeds == [seeds[0], seeds[0] + 1, seeds[0] + 2], "stream i draws with seed + i"
    picked = session.pick(1)
    assert picked is not None and picked.id == ids[1] and session.path[-1].id == ids[1]
    assert session.text.endswith(texts[1]) and session.candidates == ()
    assert [p.id for p in store.siblings(ids[1])] == list(ids), "the other two stay, as siblings"
    with pytest.raises(SlmError):
        session.set_choices(9)


# --- what the store refuses (issue 23, items 1 and 2) ------------------------------------------------------------


def fill_disk(store: StoryStore) -> None:
    """A full disk, for real as SQLite sees it: the database may not grow by one page (SQLITE_FULL)."""
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")


def free_disk(store: StoryStore) -> None:
    store._conn.execute("PRAGMA max_page_count = 1073741823")


def run_free(generator: GatedGenerator) -> None:
    generator.hold = False
    for _ in range(100):
        generator.gate.release()


def test_a_full_disk_mid_stream_stops_it_says_so_and_keeps_the_text(
    session: WritingSession, generator: GatedGenerator, store: StoryStore
) -> None:
    session.sampling = Sampling(max_new_tokens=3000, seed=3)
    session.save_every = 0.0
    told: list[str] = []
    session.listeners.append(told.append)
    generator.hold = True
    job = session.send("Full")
    assert job is not None
    fill_disk(store)
    run_free(generator)
    finish(session, timeout=20)  # before the fix: save() raised again in its finally, and "writing…" forever
    assert job.done and job.produced < 3000, "the stream stopped at the refused write"
    assert session.state_kind == "error" and "problem" in told
    assert session.problem is not None and "disk is full" in session.problem
    assert "No space left on device" in session.problem
    saved = store.story_text(session.story.id)  # type: ignore[union-attr]
    assert session.unsaved and len(session.text) > len(saved) and session.text.startswith(saved), \
        "what was shown and not saved stays on screen"
    shown = session.text
    assert session.undo() is None and session.text == shown, "a move that would drop unsaved text is refused"
    free_disk(store)
    assert session.save_unsaved()
    assert store.story_text(session.story.id) == shown and session.problem is None  # type: ignore[union-attr]
    assert len(marks_from_store(store.get_passage(job.passage_id).tokens)) == job.produced


def test_a_full_disk_at_send_says_so_and_names_the_line(session: WritingSession, store: StoryStore) -> None:
    session.send("Before")
    finish(session)
    fill_disk(store)
    session.send("a line " * 2000)  # a passage that needs a page of its own
    assert session.job is None and session.state_kind == "error"
    assert session.problem is not None and "disk is full" in session.problem
    assert "your line was not saved: “a line a line" in session.problem


def test_a_story_deleted_in_another_window_mid_stream_is_kept_as_a_new_one(
    session: WritingSession, generator: GatedGenerator, store: StoryStore
) -> None:
    session.sampling = Sampling(max_new_tokens=40, seed=4)
    session.save_every = 0.0
    generator.hold = True
    job = session.send("Doomed")
    assert job is not None
    let_through(generator, job, 3)
    old = session.story.id  # type: ignore[union-attr]  # (SQLite may give the new story the same id)
    with StoryStore(store.path) as other:  # another window: ctrl+o, d, y
        other.delete_story(old)
    run_free(generator)
    finish(session, timeout=20)  # before the fix: the refused save raised again in its finally: "writing…" forever
    assert session.story is not None and [s.id for s in store.list_stories()] == [session.story.id]
    assert session.problem is not None and "deleted in another window" in session.problem
    assert session.text.startswith("Doomed") and len(session.text) > len("Doomed")
    assert store.story_text(session.story.id) == session.text, "all of it, the streamed text too, is in the new story"
    session.send("And on.")
    finish(session)
    assert "And on." in store.story_text(session.story.id)


def test_enter_after_the_story_was_deleted_elsewhere_keeps_the_line(session: WritingSession, store: StoryStore) -> None:
    session.send("First.")
    finish(session)
    book = Lorebook((LoreEntry("Ann", ("Ann",), "Ann is the miller's daughter."),))
    session.set_lore(book)
    old, before = session.story.id, session.text  # type: ignore[union-attr]
    StoryStore(store.path).delete_story(old)
    session.send("The typed line.")  # before the fix: SlmError "no story with id 1" up through the screen
    finish(session)
    assert session.story is not None and [s.id for s in store.list_stories()] == [session.story.id]
    assert session.problem is not None and "deleted in another window" in session.problem
    assert store.story_text(session.story.id).startswith(before + " The typed line.")
    assert store.lore(session.story.id) == book, "the lorebook is kept with the rest"


def test_a_change_mid_passage_is_in_the_passages_record(session: WritingSession, generator: GatedGenerator,
                                                         store: StoryStore) -> None:
    """Issue 24 item 4: temperature 0 set while a passage streams is saved with the passage, from the token it
    applied to (it used to be saved as the old "t 0.8"); the passage reopened says so."""
    session.sampling = Sampling(max_new_tokens=12, seed=3, temperature=0.8)
    generator.hold = True
    job = session.send("Hi")
    assert job is not None
    let_through(generator, job, 4)
    session.sampling = Sampling(max_new_tokens=12, seed=3, temperature=0.0)
    generator.hold = False
    for _ in range(20):
        generator.gate.release()
    finish(session)
    record = store.get_passage(job.passage_id).sampling
    assert record is not None and record["temperature"] == 0.8
    changes = record["changes"]
    assert len(changes) == 1 and changes[0]["temperature"] == 0.0 and set(changes[0]) == {"from_token", "temperature"}
    # The change reached the engine before the 5th or 6th token (one may be drawn while the gate held it).
    assert changes[0]["from_token"] in (4, 5, 6)
    assert [s.temperature for s in job.samplings].index(0.0) == changes[0]["from_token"]
