"""WriterScreen (slmtui/tui/screens/writer.py), driven with Pilot: streaming, live sampling, stop, persistence;
the tree as a loom (branch from any passage, edit as a branch, bookmarks and token probabilities that survive a
restart, a 300-passage tree); the author's note in the model's window; N candidates at once; the palette."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import Label

from slmtui.core import paths
from slmtui.core.sampling import Sampling
from slmtui.stories.store import StoryStore
from slmtui.engine.decoder import Decoder
from slmtui.engine.tokenizer import Tokenizer
from slmtui.stories.tokens import pack_token, unpack_tokens
from slmtui.tui.app import SlmApp
from slmtui.tui.modals import AlternativesScreen
from slmtui.tui.screens.writer import WriterScreen
from slmtui.tui.widgets.candidates_view import CandidatesView
from slmtui.tui.widgets.context_meter import ContextMeter
from slmtui.tui.widgets.history_panel import HistoryPanel, PassageDetails
from slmtui.tui.widgets.prompt_box import PromptBox
from slmtui.tui.widgets.sampling_panel import SamplingPanel
from slmtui.tui.widgets.status_line import StatusLine
from slmtui.tui.widgets.story_view import StoryView
from slmtui.writing import MAX_CHOICES
from slmtui.writing.context import NOTE_DEPTH, note_block, note_depth
from slmtui.writing.records import ActiveModel

from tui_helpers import default_settings, passage_rows, press_now, screen_text, start_writing, wait_for, wait_idle

pytestmark = pytest.mark.anyio


FAST = Sampling(max_new_tokens=6, seed=1)


def writer_of(app: SlmApp) -> WriterScreen:
    assert isinstance(app.screen, WriterScreen)
    return app.screen


def model_text(writer: WriterScreen) -> str:
    return writer.story_view.full_text


async def test_streaming_shows_text_before_generation_ends(make_app: Callable[..., SlmApp], engine: ActiveModel) -> None:
    engine.generator.delay = 0.01  # type: ignore[attr-defined]
    app = make_app()
    async with app.run_test() as pilot:
        writer = writer_of(app)
        writer.set_sampling(Sampling(max_new_tokens=400, seed=3))
        await pilot.press(*"Once")
        await start_writing(pilot, writer)
        await wait_for(pilot, lambda: len(model_text(writer)) > len("Once") + 5)
        assert writer.session.job is not None and not writer.session.job.done, "text must show while the model is still writing"
        assert writer.session.state == "writing…"
        await press_now(pilot, "escape")


async def test_sampling_change_mid_generation_applies_to_the_next_token(
    make_app: Callable[..., SlmApp], engine: ActiveModel
) -> None:
    engine.generator.delay = 0.02  # type: ignore[attr-defined]
    n = 40  # prompt + continuation stay inside the tiny model's 64-token window
    start = Sampling(temperature=1.5, top_k=0, top_p=1.0, repetition_penalty=1.0, max_new_tokens=n, seed=11)
    app = make_app()
    async with app.run_test() as pilot:
        writer = writer_of(app)
        writer.set_sampling(start)
        await pilot.press("H", "i")
        await start_writing(pilot, writer)
        job = writer.session.job
        assert job is not None
        await wait_for(pilot, lambda: job.produced >= 5)
        # Through the panel, as a user does it: focus the field (its text is selected), type, Enter.
        box = writer.query_one("#sampling-temperature")
        box.focus()
        await pilot.pause(0.01)
        box.value = ""
        await press_now(pilot, "0", "enter")
        await wait_for(pilot, lambda: writer.session.sampling.temperature == 0.0)
        await wait_idle(pilot, writer)

    greedy_from = next(i for i, s in enumerate(job.samplings) if s.temperature == 0.0)
    assert 5 <= greedy_from < n, "the change must land mid-generation"
    assert all(s.temperature == 1.5 for s in job.samplings[:greedy_from])
    ids = [m.token_id for m in writer.session.tokens[job.passage_id]]
    assert len(ids) == n
    prefix = list(job.prompt) + ids[:greedy_from]
    greedy = Sampling(temperature=0.0, repetition_penalty=1.0, max_new_tokens=n - greedy_from)
    expected = [e.token_id for e in engine.generator.stream(prefix, greedy)]
    assert ids[greedy_from:] == expected


async def test_escape_stops_within_one_token(make_app: Callable[..., SlmApp], engine: ActiveModel, store: StoryStore) -> None:
    engine.generator.delay = 0.03  # type: ignore[attr-defined]
    app = make_app()
    async with app.run_test() as pilot:
        writer = writer_of(app)
        writer.set_sampling(Sampling(max_new_tokens=1000, seed=5))
        await pilot.press(*"Go")
        await start_writing(pilot, writer)
        job = writer.session.job
        assert job is not None
        await wait_for(pilot, lambda: job.produced >= 3)
        await press_now(pilot, "escape")
        assert job.done, "Escape returns once the worker has stopped"
        assert job.stopped_at is not None and job.stopped_at >= 3
        assert job.produced <= job.stopped_at + 1, "at most the token being computed follows Escape"
        await pilot.pause(0.2)
        assert job.produced <= job.stopped_at + 1
        assert writer.session.job is None and writer.session.state == "stopped"
        # Escape again, nothing being written: back to the prompt line.
        writer.query_one("#sampling-top_k").focus()
        await pilot.press("escape")
        assert app.focused is writer.query_one("#prompt")
        # Everything shown is saved, and nothing more.
        saved = store.story_text(writer.session.story.id)  # type: ignore[union-attr]
        assert saved == model_text(writer)


async def test_undo_redo_retry_and_branches_keep_every_passage(
    make_app: Callable[..., SlmApp], store: StoryStore
) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        writer = writer_of(app)
        writer.set_sampling(Sampling(max_new_tokens=6))
        await pilot.press(*"Once", "enter")
        await wait_idle(pilot, writer)
        first = writer.session.path[-1]
        await pilot.press("ctrl+r")  # retry: a second continuation of the same point
        await wait_idle(pilot, writer)
        second = writer.session.path[-1]
        assert second.parent_id == first.parent_id and second.id != first.id
        await pilot.press("ctrl+r")
        await wait_idle(pilot, writer)
        third = writer.session.path[-1]
        db = paths.stories_db()
        rows = passage_rows(db)
        assert len(rows) == 4  # the user's line and three continuations
        await pilot.press("alt+left")
        assert writer.session.path[-1].id == second.id
        await pilot.press("alt+left")
        assert writer.session.path[-1].id == first.id
        await pilot.press("alt+right", "alt+right")
        assert writer.session.path[-1].id == third.id
        await pilot.press("ctrl+z")
        assert [p.author for p in writer.session.path] == ["user"]
        await pilot.press("ctrl+z")
        assert writer.session.path == [] and model_text(writer) == ""
        await pilot.press("ctrl+y", "ctrl+y")
        assert writer.session.path[-1].id == third.id, "redo retraces the branch last read"
        # Undo and the sibling moves never delete: every passage is still there, with its text.
        assert passage_rows(db) == rows
        assert all(text for _, _, _, text in rows)
        # The history tree shows them all.
        tree_ids = set()
        stack = [writer.query_one("#history").root]
        while stack:
            node = stack.pop()
            stack.extend(node.children)
            if node.data is not None:
                tree_ids.add(node.data)
        assert tree_ids == {r[0] for r in rows}


async def test_token_alternative_becomes_a_new_branch(make_app: Callable[..., SlmApp], store: StoryStore) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        writer = writer_of(app)
        writer.set_sampling(Sampling(max_new_tokens=12, seed=2))
        await pilot.press(*"Tell", "enter")
        await wait_idle(pilot, writer)
        original = writer.session.path[-1]
        marks = writer.session.tokens[original.id]
        await pilot.press("ctrl+t")
        assert writer.story_view.token_view and writer.story_view.has_focus
        await pilot.press("left", "left", "left")  # from the last token to the 4th from the end
        k = len(marks) - 4
        await pilot.press("enter")
        assert isinstance(app.screen, AlternativesScreen)
        mark = marks[k]
        alt = next(a for a in mark.alternatives if a.token_id != mark.token_id)
        index = mark.alternatives.index(alt)
        await pilot.press(*["down"] * index, "enter")
        await pilot.pause()
        branch = writer.session.path[-1]
        assert branch.id != original.id and branch.parent_id == original.parent_id
        assert store.get_passage(original.id).text == original.text, "the old branch is kept as it was"
        await wait_idle(pilot, writer)
        text = store.get_passage(branch.id).text
        prefix = original.text[: mark.start] + alt.text
        assert text.startswith(prefix) and len(text) > len(prefix), "the model went on from the chosen token"
        assert {p.id for p in store.siblings(branch.id)} >= {original.id, branch.id}
        assert writer.session.tokens[branch.id][k].token_id == alt.token_id


async def test_story_survives_quitting_and_reopening(make_app: Callable[..., SlmApp], engine: ActiveModel) -> None:
    db = paths.stories_db()
    first_store = StoryStore(db)
    app = make_app(store=first_store)
    async with app.run_test() as pilot:
        writer = writer_of(app)
        writer.set_sampling(FAST)
        await pilot.press(*"The lighthouse", "enter")
        await wait_idle(pilot, writer)
        await pilot.press(*"keeper woke", "enter")
        await wait_idle(pilot, writer)
        shown = model_text(writer)
        await pilot.press("ctrl+q")
    reopened = StoryStore(db)
    app = make_app(store=reopened)
    async with app.run_test() as pilot:
        writer = writer_of(app)
        assert model_text(writer) == shown
        assert [p.author for p in writer.session.path] == ["user", "model", "user", "model"]
        assert writer.sub_title.startswith("The lighthouse")
    reopened.close()


async def test_an_invalid_sampling_value_shows_an_error_and_keeps_the_old_one(make_app: Callable[..., SlmApp]) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        writer = writer_of(app)
        before = writer.session.sampling
        writer.query_one("#sampling-top_p").focus()
        await pilot.press("7", "enter")
        hint = writer.query_one("#sampling-hint")
        assert hint.has_class("-error") and "top_p" in str(hint.render())
        assert writer.session.sampling is before
        await pilot.press("tab")  # leaving the field puts the value in force back
        assert writer.query_one("#sampling-top_p").value == "0.95"


async def test_presets_apply_and_the_users_own_are_saved(make_app: Callable[..., SlmApp]) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        writer = writer_of(app)
        writer.query_one("#sampling").use_preset("wild")
        await pilot.pause()
        assert writer.session.sampling.temperature == 1.2 and writer.session.sampling.top_k == 0
        writer.query_one("#sampling-temperature").focus()
        await pilot.press(*"1.4", "enter")
        writer.query_one("#sampling").ask_preset_name()
        await pilot.pause()
        await pilot.press(*"stormy", "enter")
        await pilot.pause()
        assert app.settings.presets["stormy"]["temperature"] == 1.4
    text = paths.config_file().read_text()
    assert "[presets.stormy]" in text and "temperature = 1.4" in text


async def test_memory_is_saved_and_sent_to_the_model(
    make_app: Callable[..., SlmApp], store: StoryStore, engine: ActiveModel
) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        writer = writer_of(app)
        writer.set_sampling(FAST)
        writer.query_one("#memory-text").focus()
        await pilot.press(*"Wendy is brave.")
        writer.query_one("#prompt").focus()
        await pilot.pause()
        assert writer.session.story is not None and store.get_story(writer.session.story.id).memory == "Wendy is brave."
        await pilot.press(*"Once", "enter")
        await wait_idle(pilot, writer)
        assert engine.generator.memory == engine.tokenizer.encode("Wendy is brave.")  # type: ignore[attr-defined]
        assert writer.query_one("#context").window.memory_tokens == len("Wendy is brave.")


async def test_an_edit_keeps_the_original_as_a_sibling(make_app: Callable[..., SlmApp], store: StoryStore) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        writer = writer_of(app)
        writer.set_sampling(FAST)
        await pilot.press(*"Once", "enter")
        await wait_idle(pilot, writer)
        passage = writer.session.path[-1]
        original = passage.text
        await pilot.press("f2")
        await pilot.press("end", *" EDITED", "ctrl+s")
        await pilot.pause()
        edited = writer.session.path[-1]
        assert edited.id != passage.id and edited.text == original + " EDITED"
        assert store.get_passage(passage.id).text == original, "the original is never overwritten"
        assert [p.id for p in store.siblings(passage.id)] == [passage.id, edited.id]
        assert model_text(writer).endswith(" EDITED")


async def test_no_model_says_so_on_screen(monkeypatch, store: StoryStore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(paths, "BUNDLED_MODELS_DIR", tmp_path / "no-bundled-models")
    app = SlmApp(store=store, settings=default_settings())
    async with app.run_test() as pilot:
        writer = writer_of(app)
        await wait_for(pilot, lambda: writer.session.state == "no model")
        assert "No model yet" in writer.story_view.placeholder and writer.story_view.full_text == ""
        await pilot.press(*"Still saved", "enter")  # writing still works; the text waits for a model
        assert store.story_text(writer.session.story.id) == "Still saved"  # type: ignore[union-attr]


async def test_loads_the_model_in_a_worker(tiny_model_dir, store: StoryStore) -> None:  # type: ignore[no-untyped-def]
    app = SlmApp(model="tiny", device="cpu", store=store, settings=default_settings())
    async with app.run_test() as pilot:
        writer = writer_of(app)
        assert writer.session.state == "loading model…" or writer.session.model is not None
        await wait_for(pilot, lambda: writer.session.model is not None)
        assert writer.session.state == "ready"
        assert writer.query_one("#status").model_name == "tiny"
    assert app.settings.model == "tiny", "the model opened by name is the one opened next time"


async def test_every_binding_is_a_palette_command(make_app: Callable[..., SlmApp]) -> None:
    app = make_app()
    async with app.run_test():
        writer = writer_of(app)
        titles = {c.title for c in app.get_system_commands(writer)}
        for binding in WriterScreen.BINDINGS:
            assert (binding.tooltip or binding.description) in titles  # type: ignore[union-attr]
        assert {"Export story as Markdown", "Export story as text", "New story", "Save sampling as preset"} <= titles


async def test_the_palette_sets_how_many_candidates_and_keeps_it(make_app: Callable[..., SlmApp]) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        writer = writer_of(app)
        command = next(c for c in app.get_system_commands(writer) if c.title == "Choices: 3")
        command.callback()
        await pilot.pause()
        assert writer.session.choices == 3 and writer.query_one(SamplingPanel).choices == 3
        assert app.settings.choices == 3, "kept for the next start, as a change in the panel is"


@pytest.mark.parametrize("keys", [{}, {"send": "ctrl+enter", "newline": "enter"}], ids=["default", "rebound"])
async def test_a_burst_of_keys_is_sent_whole_in_the_order_typed(make_app: Callable[..., SlmApp], engine: ActiveModel,
                                                               keys: dict[str, str]) -> None:
    """Keys posted all at once, as a terminal delivers a fast typist's or a paste's: the send key comes after the
    text, so the whole text is sent (a priority binding would run it before the characters had reached the
    box). Rebound in config.toml, the send and new-line keys swap and still keep their turn."""
    from textual import events

    from slmtui.settings import LoadResult, Settings

    settings = LoadResult(Settings(keys=keys), [], paths.config_file(), writable=False) if keys else None
    app = make_app(settings=settings) if settings else make_app()
    send = keys.get("send", "enter")
    async with app.run_test() as pilot:
        writer = writer_of(app)
        writer.set_sampling(FAST)
        burst = [*"Once upon", *(["enter"] if keys else []), *" a time"]
        for key in [*burst, send]:
            app.post_message(events.Key(key, key if len(key) == 1 else None))
        await wait_for(pilot, lambda: len(writer.session.path) >= 2 and writer.session.job is None)
        first = writer.session.path[0]
        assert first.author == "user"
        assert first.text == ("Once upon\n a time" if keys else "Once upon a time")


async def test_a_stream_moves_what_it_made_out_of_the_collectors_sight(
        make_app: Callable[..., SlmApp], engine: ActiveModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the model writes, the writer freezes the objects made so far (FREEZE_S), so full collections on the
    UI thread do not walk every token mark streamed (bench_ui_latency: 155 ms stalls at N=4 without it, 17 ms with it)."""
    import gc

    import slmtui.tui.screens.writer as writer_module

    monkeypatch.setattr(writer_module, "FREEZE_S", 0.0)
    engine.generator.delay = 0.01  # type: ignore[attr-defined]
    app = make_app()
    async with app.run_test() as pilot:
        writer = writer_of(app)
        writer.set_sampling(Sampling(max_new_tokens=60, seed=2))
        await pilot.press(*"Once")
        gc.unfreeze()
        await start_writing(pilot, writer)
        await wait_for(pilot, lambda: writer.session.job is not None and writer.session.job.produced > 10)
        assert gc.get_freeze_count() > 0
        gc.unfreeze()
        await wait_idle(pilot, writer)


# --------------------------------------------------------------------------------------------------------- the loom


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
        assert writer.query_one("#context").window.note_tokens == len(note)
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


@pytest.mark.slow
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


# --- what a new user met in a first hour (issue 24): every figure true, every text whole at 80x24 --------------


def opened_story(store: StoryStore, *, memory: str = "", note: str = "", model_text: str = " It was dark.") -> int:
    """A story of one user passage and one model passage (with a token mark a character), as the last touched."""
    story = store.create_story(model="tiny", memory=memory)
    if note:
        store.set_author_note(story.id, note)
    first = store.add_passage(story.id, parent_id=None, author="user", text="Once")
    tokens = "".join(pack_token(i, i + 1, ord(c), 0.5, []) for i, c in enumerate(model_text))
    last = store.add_passage(story.id, parent_id=first.id, author="model", text=model_text, tokens=tokens,
                             sampling={"temperature": 0.8, "seed": 1}, model="tiny")
    store.set_current(story.id, last.id)
    return last.id


def meter_text(writer: WriterScreen) -> str:
    return str(writer.query_one(ContextMeter).render())


async def test_a_new_story_meter_forgets_the_last_storys_memory_and_note(
        make_app: Callable[..., SlmApp], store: StoryStore) -> None:
    """Item 1: after "new story" with both boxes empty the meter still read "+ 21 memory + 17 note"."""
    opened_story(store, memory="The keeper is called Amos.", note="Eerie.")
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        writer = writer_of(app)
        await wait_for(pilot, lambda: writer.session.state == "ready")
        assert "memory" in meter_text(writer) and "note" in meter_text(writer)
        writer.action_new_story()
        await pilot.pause()
        assert "memory" not in meter_text(writer) and "note" not in meter_text(writer), meter_text(writer)
        assert "ctx 0/" in " ".join(screen_text(app)[-2:])


async def test_story_text_is_never_wider_than_its_view_when_a_scrollbar_appears(
        make_app: Callable[..., SlmApp], store: StoryStore) -> None:
    """Item 2: at 80 columns with the panels shown, a story that grew past the view was cut at its right edge
    ("leadin", "on th"): it had been wrapped before the scrollbar took a column."""
    last = opened_story(store)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        writer = writer_of(app)
        await wait_for(pilot, lambda: writer.session.state == "ready")
        await pilot.press("ctrl+s")
        await pilot.pause()
        store.append_text(last, " The keeper climbed the stairs leading on the long way up to the lamp." * 12)
        writer.session.open(writer.session.story.id)  # as a finished stream re-reads the story
        await pilot.pause()
        view = writer.story_view
        assert view.show_vertical_scrollbar
        width = view.scrollable_content_region.width
        assert max(b - a for a, b in view._lines) <= width, "a wrapped line is wider than the text's room"


CANDIDATE = " ".join(f"Line {i} of the candidate, long enough to wrap on an eighty-column screen for sure." for i in range(6))


async def test_every_candidate_can_be_read_whole_at_80x24(make_app: Callable[..., SlmApp], store: StoryStore) -> None:
    """Item 3: three stacked candidates showed their last two lines, with no way to scroll: the marked one now
    has the room (the others one line each) and PageUp/PageDown read it through, for each in turn."""
    opened_story(store)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        writer = writer_of(app)
        await wait_for(pilot, lambda: writer.session.state == "ready")
        session = writer.session
        made = store.add_passages(session.story.id, parent_id=session.path[-1].id, count=3, model="tiny")
        for k, p in enumerate(made):
            store.append_text(p.id, f" [{k + 1}]" + CANDIDATE)
        session.candidates = tuple(p.id for p in made)
        session._reload()
        await pilot.pause()
        view = writer.query_one(CandidatesView)
        assert app.focused is view
        for k in range(3):
            pane = view.query_one(f"#candidate-{k}", StoryView)
            await pilot.pause()
            height = pane.scrollable_content_region.height
            assert height >= 4, f"candidate {k + 1} has {height} lines of room"
            await pilot.press("pageup", "pageup", "pageup", "pageup")
            seen: set[int] = set()
            for _ in range(12):
                seen.update(range(int(pane.scroll_y), int(pane.scroll_y) + height))
                await pilot.press("pagedown")
            assert set(range(len(pane._lines))) <= seen, f"candidate {k + 1}: lines never shown"
            others = [view.query_one(f"#candidate-{j}", StoryView) for j in range(3) if j != k]
            assert all(o.outer_size.height == 1 for o in others), [o.outer_size for o in others]
            assert all(f"{int(o.id[-1]) + 1} · " in str(o.border_title) for o in others), "folded: number and words"
            await pilot.press("down")


async def test_the_details_line_follows_the_passage_and_leaves_with_the_story(
        make_app: Callable[..., SlmApp], engine: ActiveModel) -> None:
    """Item 5: the details line said "13 tokens" of a 120-token passage (counted while it streamed), and
    carried over into a new story."""
    engine.generator.delay = 0.005  # type: ignore[attr-defined]
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        writer = writer_of(app)
        writer.set_sampling(Sampling(max_new_tokens=40, seed=1))
        await pilot.press(*"Once")
        await start_writing(pilot, writer)
        await wait_for(pilot, lambda: len(writer.session.tokens.get(writer.session.path[-1].id, [])) >= 2)
        writer.query_one(HistoryPanel).focus()
        await pilot.press("end")  # the cursor on the passage being written
        await pilot.pause()
        await wait_idle(pilot, writer)
        last = writer.session.path[-1]
        details = writer.query_one(PassageDetails)
        count = len(writer.session.tokens[last.id])
        assert count == 40 and f"{count} tokens" in details.text, details.text
        writer.action_new_story()
        await pilot.pause()
        assert details.text == ""


async def test_status_ctx_and_the_meter_count_the_same_window(
        make_app: Callable[..., SlmApp], store: StoryStore, byte_tokenizer: Tokenizer) -> None:
    """Item 7: the status line's ctx left the author's note out (and could read 257/256)."""
    opened_story(store, memory="Amos.", note="Eerie.")
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        writer = writer_of(app)
        await wait_for(pilot, lambda: writer.session.state == "ready")
        memory, note = len("Amos."), len(byte_tokenizer.encode(note_block("Eerie.")))
        story = len("Once It was dark.")
        assert f"+ {memory} memory + {note} note" in meter_text(writer)
        assert f"ctx {memory + note + story}/64" in screen_text(app)[-2]


async def test_a_long_stream_never_counts_more_than_the_context(
        make_app: Callable[..., SlmApp], engine: ActiveModel) -> None:
    """Item 7: a full window counted the newest token too (257/256)."""
    engine.generator.delay = 0.002  # type: ignore[attr-defined]
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        writer = writer_of(app)
        writer.set_sampling(Sampling(max_new_tokens=150, seed=4))
        await pilot.press(*("word " * 20))
        await start_writing(pilot, writer)
        status, meter, seen = writer.query_one(StatusLine), writer.query_one(ContextMeter), []
        while writer.session.job is not None:
            if status.window is not None:
                seen.append(status.window.used)
                assert status.window is meter.window, "one window for both"
            await pilot.pause(0.01)
        assert seen and max(seen) <= 64 and 64 in seen


async def test_an_edited_passage_is_the_writers(make_app: Callable[..., SlmApp], store: StoryStore) -> None:
    """Item 10: an edit of the model's passage kept its ◆ and its sampling; the new text is the writer's."""
    last = opened_story(store)
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        writer = writer_of(app)
        await wait_for(pilot, lambda: writer.session.state == "ready")
        edited = writer.session.edit(last, " It was light.")
        await pilot.pause()
        assert edited is not None and edited.author == "user" and not edited.sampling and edited.model is None
        assert writer.details(edited.id).startswith("you")
        assert str(writer.query_one(HistoryPanel).nodes_by_passage[edited.id].label).startswith("✎")


async def test_the_alternatives_hint_is_whole_at_80x24(make_app: Callable[..., SlmApp], store: StoryStore) -> None:
    """Item 12: the dialog's hint was cut at "Esc canc"."""
    opened_story(store)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        writer = writer_of(app)
        await wait_for(pilot, lambda: writer.session.state == "ready")
        await pilot.press("ctrl+t", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AlternativesScreen))
        await pilot.pause(0.2)
        hint = app.screen.query_one(".dialog-hint", Label)
        words = str(hint.render())
        assert words.endswith("Esc cancels") and hint.size.width * hint.size.height >= len(words), hint.size
        rows = [row for row in screen_text(app) if "Enter writes" in row or "cancels" in row]
        assert rows and rows[-1].split("█")[1].strip().endswith("cancels"), rows


async def test_stopping_says_so_on_the_status_line_without_a_toast_over_it(
        make_app: Callable[..., SlmApp], engine: ActiveModel) -> None:
    """Item 12: the "Stopped." toast covered the status line, which says "stopped" itself."""
    engine.generator.delay = 0.01  # type: ignore[attr-defined]
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        writer = writer_of(app)
        writer.set_sampling(Sampling(max_new_tokens=400, seed=3))
        await pilot.press(*"Once")
        await start_writing(pilot, writer)
        await press_now(pilot, "escape")
        await wait_idle(pilot, writer)
        assert not app._notifications and screen_text(app)[-2].rstrip().endswith("stopped")


@pytest.mark.parametrize("state", ["idle", "writing", "choosing", "tree"])
async def test_the_footer_holds_the_writers_keys_at_80_columns(
        make_app: Callable[..., SlmApp], engine: ActiveModel, store: StoryStore, state: str) -> None:
    """Items 11 and 12: at 80x24 the footer dropped ^o, ^q, F5 and F6 and left a stray character in the
    bottom-right cell ("paletteo"). Every key it leaves out is in the palette."""
    opened_story(store)
    engine.generator.delay = 0.02  # type: ignore[attr-defined]
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        writer = writer_of(app)
        await wait_for(pilot, lambda: writer.session.state == "ready")
        writer.set_sampling(Sampling(max_new_tokens=400, seed=3))
        if state == "choosing":
            writer.set_choices(3)
        if state in ("writing", "choosing"):
            await start_writing(pilot, writer)
        if state == "tree":
            await pilot.press("ctrl+g")
        await pilot.pause(0.3)
        footer = screen_text(app)[-1]
        for key in ("^o Stories", "^q Quit", "f5 Train", "f6 Models", "^p palette"):
            assert key in footer, (key, footer)
        assert footer[-1] == " ", footer
        if state in ("writing", "choosing"):
            assert "esc Stop" in footer
            await press_now(pilot, "escape")
            await wait_idle(pilot, writer)
        if state == "choosing":
            assert "Pick" in footer
        if state == "tree":
            assert "esc Write" in footer, "Escape's way back to the prompt box shows where it helps"
        titles = {c.title for c in app.get_system_commands(writer)}
        for binding in writer.BINDINGS:
            assert binding.tooltip in titles or binding.description in titles


async def test_one_token_is_one_token_and_the_palette_offers_every_choice(
        make_app: Callable[..., SlmApp], store: StoryStore) -> None:
    """Item 12: "1 tokens" in the meter and the details line; the palette's choices stopped at 4 of 8."""
    opened_story(store, model_text="!")
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        writer = writer_of(app)
        await wait_for(pilot, lambda: writer.session.state == "ready")
        last = writer.session.path[-1].id
        assert "1 token," in writer.details(last) and "1 tokens" not in writer.details(last)
        one = store.create_story(model="tiny")
        store.add_passage(one.id, parent_id=None, author="user", text="A")  # one byte: one token
        writer.session.open(one.id)
        await pilot.pause()
        assert "1 token" in meter_text(writer) and "1 tokens" not in meter_text(writer), meter_text(writer)
        titles = {c.title for c in app.get_system_commands(writer)}
        assert {f"Choices: {n}" for n in range(1, MAX_CHOICES + 1)} <= titles


async def test_escape_goes_back_to_the_prompt_from_every_panel(make_app: Callable[..., SlmApp]) -> None:
    """Item 13: it took 7-10 Tabs to get back from the sampling panel; Escape does it, and the footer says so."""
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        writer = writer_of(app)
        await wait_for(pilot, lambda: writer.session.state == "ready")
        for selector in ("#sampling Input", "#memory-text", "#note-text", "#history", "#story"):
            writer.query(selector).first().focus()
            await pilot.pause()
            assert "esc Write" in screen_text(app)[-1], selector
            await pilot.press("escape")
            assert isinstance(app.focused, PromptBox), selector
        await pilot.pause()
        assert "esc Write" not in screen_text(app)[-1]


async def test_candidates_hang_under_their_parent_in_the_tree(make_app: Callable[..., SlmApp],
                                                              store: StoryStore) -> None:
    """Item 13: candidate siblings were drawn at the indent of the chain above, not under their parent."""
    last = opened_story(store)
    made = store.add_passages(store.get_passage(last).story_id, parent_id=last, count=3, model="tiny")
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        writer = writer_of(app)
        await wait_for(pilot, lambda: writer.session.state == "ready")
        nodes = writer.query_one(HistoryPanel).nodes_by_passage
        assert all(nodes[p.id].parent is nodes[last] for p in made)
        assert nodes[last].is_expanded, "the reader is on the parent: its candidates show"


async def test_memory_and_note_grow_to_show_what_was_typed(make_app: Callable[..., SlmApp]) -> None:
    """Item 13: the memory and note boxes showed one line, the tail of what was typed."""
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        writer = writer_of(app)
        await wait_for(pilot, lambda: writer.session.state == "ready")
        for box in ("#memory-text", "#note-text"):
            area = writer.query_one(box)
            area.focus()
            await pilot.press(*"Amos keeps the lamp on the rock and talks to the gulls every single morning.")
            await pilot.pause()
            assert area.size.height >= 3, (box, area.size)



async def test_history_keeps_its_rows_at_80x24_with_the_panels_shown(
        make_app: Callable[..., SlmApp], store: StoryStore) -> None:
    """At 80x24 the sampling panel, memory and note left History one row, its title: the side panel now scrolls
    and History keeps at least six passages' rows; focusing it (ctrl+g) brings all of it into view."""
    big_story(store, n=12)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        writer = writer_of(app)
        await wait_for(pilot, lambda: writer.session.state == "ready")
        await pilot.press("ctrl+s")
        await pilot.pause()
        tree = writer.query_one(HistoryPanel)
        assert tree.region.height >= 8
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert app.focused is tree
        side = writer.query_one("#side")
        visible = tree.region.intersection(side.region)
        assert visible == tree.region, f"History at {tree.region} is cut by the side panel {side.region}"
