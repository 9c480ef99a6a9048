"""The writer as a loom, with Pilot: branch from any passage of the tree, edit as a branch, the author's note in
the model's window, bookmarks and token probabilities that survive a restart, a 300-passage tree."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from slmtui.engine.generate import Decoder
from slmtui.engine.sampling import Sampling
from slmtui.engine.tokenizer import Tokenizer
from slmtui.stories import StoryStore, unpack_tokens
from slmtui.tui.app import SlmApp
from slmtui.tui.screens.writer import WriterScreen
from slmtui.tui.widgets.candidates_view import CandidatesView
from slmtui.tui.widgets.history_panel import HistoryPanel
from slmtui.tui.widgets.story_view import StoryView
from slmtui.writing.context import NOTE_DEPTH, note_block, note_depth
from slmtui.writing.records import ActiveModel

from tui_helpers import default_settings, press_now, wait_for, wait_idle

pytestmark = pytest.mark.anyio

FAST = Sampling(max_new_tokens=6, seed=1)


def writer_of(app: SlmApp) -> WriterScreen:
    assert isinstance(app.screen, WriterScreen)
    return app.screen


async def write_lines(pilot, writer: WriterScreen, *lines: str) -> None:  # type: ignore[no-untyped-def]
    for line in lines:
        await pilot.press(*line, "enter")
        await wait_idle(pilot, writer)


async def tree_cursor_to(pilot, writer: WriterScreen, passage_id: int) -> HistoryPanel:  # type: ignore[no-untyped-def]
    """Focus the History tree (ctrl+g) and walk its cursor with the arrow keys to a passage."""
    await pilot.press("ctrl+g")
    tree = writer.query_one(HistoryPanel)
    assert writer.app.focused is tree
    for _ in range(200):
        node = tree.cursor_node
        if node is not None and node.data == passage_id:
            return tree
        await pilot.press("up")
    raise AssertionError(f"passage {passage_id} not reached in the tree")


async def test_retry_on_a_passage_three_levels_up_makes_a_sibling_there(
        make_app: Callable[..., SlmApp], store: StoryStore) -> None:
    app = make_app()
    async with app.run_test(size=(140, 50)) as pilot:
        writer = writer_of(app)
        writer.set_sampling(FAST)
        await write_lines(pilot, writer, "One", "Two", "Three")
        path = writer.session.path
        target = path[1]  # the first model passage: three model passages up from the end
        assert target.author == "model" and len(path) == 6
        await tree_cursor_to(pilot, writer, target.id)
        await pilot.press("r")
        await wait_idle(pilot, writer)
        siblings = store.siblings(target.id)
        assert [p.id for p in siblings][0] == target.id and len(siblings) == 2
        new = writer.session.path[-1]
        assert new.id == siblings[1].id and new.parent_id == target.parent_id and len(writer.session.path) == 2
        assert store.children(target.id), "the old branch below the retried passage is whole"


async def test_continue_from_a_passage_in_the_tree(make_app: Callable[..., SlmApp], store: StoryStore) -> None:
    app = make_app()
    async with app.run_test(size=(140, 50)) as pilot:
        writer = writer_of(app)
        writer.set_sampling(FAST)
        await write_lines(pilot, writer, "One", "Two")
        first_user = writer.session.path[0]
        await tree_cursor_to(pilot, writer, first_user.id)
        await pilot.press("c")
        await wait_idle(pilot, writer)
        assert [p.id for p in writer.session.path][:-1] == [first_user.id]
        assert len(store.children(first_user.id)) == 2


async def test_the_author_note_reaches_the_models_window_at_its_place(
        make_app: Callable[..., SlmApp], engine: ActiveModel, byte_tokenizer: Tokenizer) -> None:
    app = make_app()
    async with app.run_test(size=(140, 50)) as pilot:
        writer = writer_of(app)
        writer.set_sampling(FAST)
        writer.action_edit_note()
        await pilot.press(*"Tone: eerie.")
        writer.query_one("#prompt").focus()
        await pilot.pause()
        assert writer.session.story is not None and writer.session.story.author_note == "Tone: eerie."
        note = byte_tokenizer.encode(note_block("Tone: eerie."))
        assert writer.query_one("#context").note_tokens == len(note)
        story = "The wind rose over the moor and the old house creaked in the dark. "
        await write_lines(pilot, writer, story)
        prompt = engine.generator.prompt  # type: ignore[attr-defined]
        assert isinstance(prompt, list), "with a note the engine is given tokens, the note woven in"
        decoder = Decoder(engine.generator.model)
        decoder.start(prompt)
        window = list(decoder.window)
        depth = note_depth(engine.block_size, 0, len(note))
        assert 0 < depth <= NOTE_DEPTH
        assert window[-depth - len(note):-depth] == note, "the note sits `depth` tokens before the window's end"
        assert byte_tokenizer.decode(window[-depth:]) == story[-depth:]


async def test_bookmarks_survive_a_restart(engine: ActiveModel, tmp_path: Path) -> None:
    db = tmp_path / "stories.db"
    with StoryStore(db) as store:
        app = SlmApp(engine=engine, store=store, settings=default_settings())
        async with app.run_test(size=(140, 50)) as pilot:
            writer = writer_of(app)
            writer.set_sampling(FAST)
            await write_lines(pilot, writer, "The door")
            marked = writer.session.path[-1].id
            await pilot.press("ctrl+b")
            await pilot.press(*"door", "enter")
            await wait_for(pilot, lambda: writer.session.bookmarks != [])
            await write_lines(pilot, writer, "Later")
            assert writer.session.path[-1].id != marked
    with StoryStore(db) as store:  # a new app on the same file: a restart
        app = SlmApp(engine=engine, store=store, settings=default_settings())
        async with app.run_test(size=(140, 50)) as pilot:
            writer = writer_of(app)
            await wait_for(pilot, lambda: writer.session.model is not None)
            assert [(b.name, b.passage_id) for b in writer.session.bookmarks] == [("door", marked)]
            await pilot.press("ctrl+p")
            await pilot.press(*"Bookmark: door")
            await wait_for(pilot, lambda: "Bookmark: door" in str(app.screen.query("CommandList").first().get_option_at_index(0).prompt)
                           if app.screen.query("CommandList") else False)
            await pilot.press("enter")
            await wait_for(pilot, lambda: writer.session.path and writer.session.path[-1].id == marked)


async def test_token_view_on_a_reopened_passage_shows_the_stored_probabilities(
        engine: ActiveModel, tmp_path: Path) -> None:
    db = tmp_path / "stories.db"
    with StoryStore(db) as store:
        app = SlmApp(engine=engine, store=store, settings=default_settings())
        async with app.run_test(size=(140, 50)) as pilot:
            writer = writer_of(app)
            writer.set_sampling(FAST)
            await write_lines(pilot, writer, "Once")
            passage = writer.session.path[-1].id
    with StoryStore(db) as store:
        stored = unpack_tokens(store.get_passage(passage).tokens)
        assert len(stored) == FAST.max_new_tokens
        app = SlmApp(engine=engine, store=store, settings=default_settings())
        async with app.run_test(size=(140, 50)) as pilot:
            writer = writer_of(app)
            await wait_for(pilot, lambda: writer.session.model is not None)
            await pilot.press("ctrl+t")
            view = writer.story_view
            assert view.token_view and len(view.token_positions()) == len(stored)
            shown = [view.token_at(i) for i in range(len(stored))]
            assert [(m.token_id, m.prob) for _, _, m in shown] == [(t[2], t[3]) for t in stored]  # type: ignore[misc]
            assert view.cursor == len(stored) - 1
            await pilot.press("enter")  # the alternatives, from the stored tokens
            await pilot.pause()
            from slmtui.tui.modals import AlternativesScreen
            assert isinstance(app.screen, AlternativesScreen)


def big_story(store: StoryStore, n: int = 300) -> tuple[int, list[int]]:
    """A story of ``n`` passages: a long chain, with a retry every tenth passage."""
    story = store.create_story(title="Long")
    parent = None
    chain: list[int] = []
    for i in range(n):
        if i % 10 == 9 and parent is not None:  # a sibling of the previous passage
            store.add_passage(story.id, parent_id=store.get_passage(parent).parent_id, author="model",
                              text=f" other {i} words here", current=False)
            continue
        p = store.add_passage(story.id, parent_id=parent, author="user" if i % 2 else "model",
                              text=f" passage {i} with some words")
        parent = p.id
        chain.append(p.id)
    return story.id, chain


async def test_a_story_of_300_passages_opens_and_navigates_by_keyboard(
        make_app: Callable[..., SlmApp], store: StoryStore) -> None:
    story_id, chain = big_story(store)
    assert len(store.passages(story_id)) == 300
    app = make_app()
    async with app.run_test(size=(140, 50)) as pilot:
        writer = writer_of(app)
        await wait_for(pilot, lambda: writer.session.model is not None)
        tree = writer.query_one(HistoryPanel)
        assert len(tree.nodes_by_passage) == 300
        assert writer.session.path[-1].id == chain[-1]
        for _ in range(5):
            await pilot.press("alt+up")
        assert writer.session.path[-1].id == chain[-6]
        await pilot.press("alt+down")
        assert writer.session.path[-1].id == chain[-5]
        siblings = writer.session.siblings(chain[-5])
        if len(siblings) > 1:
            await pilot.press("alt+right")
            assert writer.session.path[-1].id != chain[-5]
            await pilot.press("alt+left")
            assert writer.session.path[-1].id == chain[-5]
        target = chain[100]
        await tree_cursor_to(pilot, writer, target)
        await pilot.press("enter")
        await wait_for(pilot, lambda: writer.session.path[-1].id == target)
        assert writer.story_view.full_text == store.story_text(story_id, target)


async def test_three_candidates_stream_at_once_and_picking_the_second_keeps_the_others(
        make_app: Callable[..., SlmApp], engine: ActiveModel, store: StoryStore) -> None:
    engine.generator.delay = 0.005  # type: ignore[attr-defined]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        writer = writer_of(app)
        writer.set_sampling(Sampling(max_new_tokens=40, seed=2))
        writer.set_choices(3)
        await pilot.press(*"Three")
        await press_now(pilot, "enter")
        await wait_for(pilot, lambda: len(writer.session.candidates) == 3)
        session = writer.session
        ids = session.candidates
        # All three grow while the generation is still going: one batched stream, not three in turn.
        await wait_for(pilot, lambda: all(session.candidate_text.get(i) for i in ids))
        assert session.job is not None and not session.job.done
        view = writer.query_one(CandidatesView)
        assert view.display and view.passage_ids == list(ids) and app.focused is view
        await wait_idle(pilot, writer)
        texts = [store.get_passage(i).text for i in ids]
        assert all(texts) and len(set(texts)) == 3
        assert [view.query_one(f"#candidate-{k}", StoryView).full_text for k in range(3)] == texts
        assert all("p̄" in str(view.query_one(f"#candidate-{k}", StoryView).border_title) for k in range(3))
        before = writer.story_view.full_text
        await pilot.press("2")
        assert writer.session.path[-1].id == ids[1]
        assert writer.story_view.full_text == before + texts[1], "exactly the second candidate's text joins"
        assert [p.id for p in store.siblings(ids[1])] == list(ids)
        assert [store.get_passage(i).text for i in ids] == texts, "the other two stay, unchanged"
        assert not view.display and app.focused is writer.query_one("#prompt")


async def test_escape_stops_every_candidate(make_app: Callable[..., SlmApp], engine: ActiveModel,
                                            store: StoryStore) -> None:
    engine.generator.delay = 0.01  # type: ignore[attr-defined]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        writer = writer_of(app)
        writer.set_sampling(Sampling(max_new_tokens=1000, seed=2))
        writer.set_choices(3)
        await press_now(pilot, "enter")
        await wait_for(pilot, lambda: len(writer.session.candidates) == 3 and writer.session.job is not None
                       and all(writer.session.job.produced_by))
        job = writer.session.job
        await press_now(pilot, "escape")
        await wait_idle(pilot, writer)
        assert job is not None and job.done and max(job.produced_by) < 1000
        assert all(store.get_passage(i).text for i in writer.session.candidates), "each keeps its text"


async def test_the_choices_field_sets_n_and_keeps_it_in_config(make_app: Callable[..., SlmApp]) -> None:
    app = make_app()
    async with app.run_test(size=(140, 50)) as pilot:
        writer = writer_of(app)
        box = writer.query_one("#sampling-choices")
        box.focus()
        await pilot.pause()
        box.value = ""  # type: ignore[attr-defined]
        await pilot.press("9", "enter")
        assert writer.session.choices == 1 and box.has_class("-invalid"), "9 is out of range: kept 1"
        box.value = ""  # type: ignore[attr-defined]
        await pilot.press("4", "enter")
        assert writer.session.choices == 4 and app.settings.choices == 4
        from slmtui.settings import load_settings
        assert load_settings().settings.choices == 4
