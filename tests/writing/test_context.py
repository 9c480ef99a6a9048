"""The context window's arithmetic: what the meter says and where the dimmed text ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmtui.cli import main
from slmtui.engine.decoder import Decoder
from slmtui.engine.model_io import load_model_dir
from slmtui.stories.lore_json import write_lore_file
from slmtui.stories.lorebook import LoreEntry, Lorebook
from slmtui.stories.store import StoryStore
from slmtui.writing.records import ActiveModel
from slmtui.writing.session import WritingSession
from slmtui.engine.generate import Generator
from slmtui.engine.model import GPT
from slmtui.core.sampling import Sampling
from slmtui.engine.tokenizer import Tokenizer
from slmtui.writing.context import StreamWindow, build_context, idle_window, memory_tokens
from slmtui.writing.stream import TokenMark


def test_idle_window_and_memory(byte_tokenizer: Tokenizer) -> None:
    assert idle_window(byte_tokenizer, "", 64, 0).story_tokens == 0
    w = idle_window(byte_tokenizer, "abcdef", 4, 0)  # one token a byte
    assert (w.story_tokens, w.window_tokens, w.start) == (6, 4, 2)
    w = idle_window(byte_tokenizer, "abcdef", 4, 1)
    assert (w.window_tokens, w.start) == (3, 3)
    assert memory_tokens(byte_tokenizer, "x" * 100, 64) == 32, "the engine keeps at most half for memory"


def test_stream_window_follows_the_engines_window(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    """Against the real Decoder: the text from ``start`` on is exactly the tokens the model read, plus the
    newest one (checked while each token is one character: an ASCII prompt, bytes as tokens)."""
    prompt = "Once upon a time there was a lighthouse keeper who " * 2  # 102 tokens: past the 64 context
    generator = Generator(tiny_model, byte_tokenizer)
    events = list(generator.stream(prompt, Sampling(temperature=0.0, max_new_tokens=60)))
    block = tiny_model.config.block_size
    window = StreamWindow(byte_tokenizer, prompt, passage_start=len(prompt), first_mark=0, block_size=block)
    marks: list[TokenMark] = []
    offset = 0
    checked = 0
    for i, e in enumerate(events):
        marks.append(TokenMark(offset, offset + len(e.text), e.token_id, e.prob, e.alternatives))
        offset += len(e.text)
        w = window.at(i + 1, e.window_tokens, marks)
        assert w.story_tokens == len(prompt) + i + 1
        # The newest token is seen next, unless the window is full: then it slides first (never 65 of 64).
        assert w.window_tokens == min(e.window_tokens + 1, block)
        assert w.used == w.window_tokens <= block
        if all(m.end - m.start == 1 for m in marks):  # so far one character a token (bytes may combine)
            # The seen text is the last window_tokens + 1 characters of the story.
            assert len(prompt) + offset - w.start == w.window_tokens
            checked += 1
    assert events[0].window_tokens < len(prompt) and checked


# --- the one context builder: memory, lore, the story's tail, the note --------------------------------------------

WORLD = (
    LoreEntry("Ann", ("Ann",), "Ann mills."),  # short: the tiny model's lore budget is 16 tokens (bytes)
    LoreEntry("The mill", ("mill",), "The mill stands by the Wey."),
    LoreEntry("The Wey", ("Wey",), "The Wey floods in spring.", enabled=False),
    LoreEntry("Season", (), "Fall", always=True),
    LoreEntry("Tom", ("Tom",), "Tom is the smith."),
)
STORY = "The rain fell on the lane. Ann ran past the Annual fair, and on towards home. " * 2


def test_the_window_is_the_decoders_and_its_parts_join_to_it(tiny_model: GPT, byte_tokenizer: Tokenizer) -> None:
    """What the builder says the model reads is what the Decoder reads: memory, lore, story, note, in order."""
    ctx = build_context(byte_tokenizer, story=STORY, block_size=64, memory="Mem.", note="Eerie.", lore=WORLD)
    assert [e.entry.title for e in ctx.lore.inserted] == ["Ann", "Season"], "not Tom, nor the Wey (off)"
    decoder = Decoder(tiny_model, memory=ctx.prefix)
    decoder.start(ctx.prompt)
    assert list(decoder.window) == ctx.window
    parts = ctx.parts(byte_tokenizer)
    assert [t for p in parts for t in p.ids] == ctx.window
    assert [p.kind for p in parts][:1] == ["memory"] and "note" in [p.kind for p in parts]
    assert parts[-1].kind == "story" and STORY.endswith(parts[-1].text)
    assert len(ctx.prefix) <= 64 // 2, "the prefix never passes the decoder's cap, so the decoder cuts nothing"


def test_lore_fits_in_what_memory_leaves_of_half_the_context(byte_tokenizer: Tokenizer) -> None:
    """Memory keeps its tokens up to half the context; lore gets the rest of that half at most, and what did not fit
    is named with the reason."""
    ctx = build_context(byte_tokenizer, story="Ann and Tom went to the mill.", block_size=256, memory="m" * 100,
                        lore=WORLD)
    assert len(ctx.memory_ids) == 101 and len(ctx.prefix) <= 128, "the memory, and a line break before the lore"
    assert ctx.parts(byte_tokenizer)[0].text == "m" * 100 + "\n"
    left = {m.entry.title for m in ctx.lore.left_out}
    assert left and all(f"lore \u201c{t}\u201d" not in [p.label for p in ctx.parts(byte_tokenizer)] for t in left)
    assert any("left out: it needs" in c for c in ctx.cuts())
    long_memory = build_context(byte_tokenizer, story="Ann.", block_size=64, memory="x" * 50, lore=WORLD)
    assert long_memory.memory_cut == 18 and long_memory.lore.inserted == ()
    assert any(c.startswith("memory: its last 18 tokens are left out") for c in long_memory.cuts())


def test_the_story_cut_and_an_empty_story(byte_tokenizer: Tokenizer) -> None:
    ctx = build_context(byte_tokenizer, story="a" * 100, block_size=64, lore=WORLD)
    assert ctx.story_seen == 64 - ctx.lore_tokens
    assert any(c.startswith(f"story: its first {100 - ctx.story_seen} of 100 tokens") for c in ctx.cuts())
    empty = build_context(byte_tokenizer, story="", block_size=64)
    assert empty.prompt == [] and empty.window == [byte_tokenizer.eot_token or byte_tokenizer.encode("\n")[0]]


def test_the_app_the_candidates_and_generate_give_the_model_the_same_context(
        tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """One story and one lorebook: the app's continuation, its N-candidates continuation and ``slmtui generate
    --lore`` hand the engine the same prompt and prefix, and ``--show-context`` prints those same parts."""
    seen: list[tuple[list[int], list[int], int]] = []
    real = Generator.stream

    def recording(self, prompt, sampling, *, n=1, memory="", should_stop=None, page=None):  # type: ignore[no-untyped-def]
        seen.append((list(prompt), list(memory), n))
        return real(self, prompt, sampling, n=n, memory=memory, should_stop=should_stop, page=page)

    monkeypatch.setattr(Generator, "stream", recording)
    memory, note = "A village tale.", "Tone: gentle."
    lore_file = tmp_path / "world.json"
    write_lore_file(lore_file, Lorebook(WORLD))

    assert main(["generate", STORY, "--model", "tiny", "--memory", memory, "--note", note, "--lore",
                 str(lore_file), "--max-new-tokens", "2", "--seed", "1", "--show-context"]) == 0
    err = capsys.readouterr().err
    cli_prompt, cli_prefix, _ = seen[-1]

    loaded = load_model_dir(tiny_model_dir)
    with StoryStore(tmp_path / "stories.db") as store:
        session = WritingSession(store, sampling=Sampling(max_new_tokens=2, seed=1))
        session.set_model(ActiveModel(Generator(loaded.model, loaded.tokenizer), "tiny"))
        story = store.create_story()
        store.add_passage(story.id, parent_id=None, author="user", text=STORY)
        session.open(story.id)
        session.set_memory(memory)
        session.set_author_note(note)
        session.set_lore(Lorebook(WORLD))
        idle = session.context()
        for n in (1, 3):
            session.set_choices(n)
            job = session.continue_from(session.path[-1].id)
            assert job is not None
            job.finished.wait(30)
            session.poll()
            assert seen[-1] == (cli_prompt, cli_prefix, n), f"the {n}-stream path read another context"
            session.undo() if n == 1 else session.pick(0) and session.undo()
        session.shutdown()
    assert idle is not None and (idle.prompt, idle.prefix) == (cli_prompt, cli_prefix)
    assert [e.entry.title for e in idle.lore.inserted] == ["Ann", "Season"]
    assert "The Wey" not in err and 'key "Ann" in the story' in err
    for part in idle.parts(loaded.tokenizer):  # the CLI printed every part with its count
        assert f"── {part.label} · {part.n_tokens} token" in err


@pytest.mark.parametrize("content, words", [
    ("{not json", "not JSON"),
    ('{"entries": [{"title": "A", "keys": ["/(/"]}]}', "not a valid regular expression"),
    ('{"entries": [{"title": "A", "keys": ["/.*/"]}]}', "matches an empty string"),
    ('{"entries": [{"title": "A", "keys": [" "]}]}', "is blank"),
])
def test_bad_lore_for_generate_is_one_line_exit_2(content: str, words: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main(["generate", "x", "--lore", str(bad), "--show-context", "--max-new-tokens", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err
