"""Which lore entries enter the context (writing/lore.py): scan depth, keys, cascades, budget, order, reports.

The byte tokenizer (one token a byte) makes the token arithmetic readable: an entry's block is its stripped
text plus a line break, so "Ann is tall." costs 13 tokens.
"""

from __future__ import annotations

import time
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slmtui.core.errors import SlmError
from slmtui.core.model_folder import TOKENIZER, read_model_info
from slmtui.core.model_catalog import bundled_default
from slmtui.engine.tokenizer import Tokenizer
from slmtui.stories.lorebook import MAX_ENTRIES, MAX_KEYS, MAX_TEXT_CHARS, LoreEntry, parse_key
from slmtui.writing.lore import (LORE_LIMITS, LoreContext, LoreSettings, activate, build_lore, entry_block, fit_lore,
                                 key_spans, scan_start)


def E(title: str, *keys: str, text: str | None = None, enabled: bool = True, always: bool = False) -> LoreEntry:
    return LoreEntry(title, keys, f"{title} is here." if text is None else text, enabled=enabled, always=always)


def titles(result: LoreContext | list) -> list[str]:  # type: ignore[type-arg]
    items = result.inserted if isinstance(result, LoreContext) else result
    return [a.entry.title for a in items]


def active_titles(entries: list[LoreEntry], story: str = "", **kw: object) -> list[str]:
    active, warnings = activate(entries, story=story, **kw)  # type: ignore[arg-type]
    assert warnings == []
    return titles(active)


# --- scan depth: the story's last N tokens -------------------------------------------------------------------

def test_a_key_in_the_last_n_tokens_activates_and_one_beyond_does_not(byte_tokenizer: Tokenizer) -> None:
    story = "Ann came home. " + "It rained all day. " * 3  # "Ann" is at 0; 72 bytes, one token a byte
    entries = [E("Ann", "Ann")]
    settings_in = LoreSettings(scan_depth=len(story))  # the scan reaches the first byte
    settings_out = LoreSettings(scan_depth=len(story) - 1)  # it starts inside "Ann": the key is not whole there
    assert titles(build_lore(entries, byte_tokenizer, story=story, settings=settings_in, block_size=256)) == ["Ann"]
    assert titles(build_lore(entries, byte_tokenizer, story=story, settings=settings_out, block_size=256)) == []
    # The same cut made by hand: the tail "nn came home..." holds no whole "Ann", though the text before it does.
    assert active_titles(entries, story, story_start=1) == []
    assert active_titles(entries, story, story_start=0) == ["Ann"]
    assert build_lore(entries, byte_tokenizer, story=story, settings=LoreSettings(scan_depth=0),
                      block_size=256).inserted == ()


def test_a_word_cut_by_the_scan_does_not_become_a_key(byte_tokenizer: Tokenizer) -> None:
    """The scan starting inside "Joann" sees "ann", but the text before the cut still bounds the word."""
    story = "Joann sat."
    assert scan_start(byte_tokenizer, story, len(story) - 2) == 2
    assert active_titles([E("Ann", "Ann")], story, story_start=2) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(story=st.text(st.characters(codec="ascii"), max_size=300), depth=st.integers(1, 200))
def test_the_scanned_text_is_exactly_the_tokens_the_model_reads(story: str, depth: int) -> None:
    """With GPT-2's BPE (tokens of several characters): the text from scan_start on is the decoded last
    ``depth`` tokens, so the scan searches what the model would read, no more and no less."""
    tok = _gpt2()
    ids = tok.encode(story)
    start = scan_start(tok, story, depth)
    assert story[start:] == tok.decode(ids[-depth:] if depth < len(ids) else ids)
    assert scan_start(tok, story, depth, ids=ids) == start


@lru_cache(maxsize=1)
def _gpt2() -> Tokenizer:
    return Tokenizer.gpt2()


@lru_cache(maxsize=1)
def _default_tokenizer() -> Tokenizer:
    """The bundled default model's own BPE (8192 tokens, a pattern of its own)."""
    folder = bundled_default()
    return Tokenizer.from_rank_file(folder / TOKENIZER, read_model_info(folder).tokenizer)


# --- keys: whole words, case, phrases, regexes ---------------------------------------------------------------

@pytest.mark.parametrize(("story", "hit"), [
    ("Ann waved.", True), ("ANN, wait!", True), ("It was Ann's.", True), ("ann", True), ("Ann\u2019s cat", True),
    ("The Annual fair.", False), ("Joann waved.", False), ("Anne waved.", False), ("Ann_b", False),
    ("Ann2 waved.", False),
])
def test_words_match_whole_and_case_insensitively(story: str, hit: bool) -> None:
    assert active_titles([E("Ann", "Ann")], story) == (["Ann"] if hit else [])


def test_a_phrase_matches_across_any_white_space() -> None:
    entries = [E("Mill", "the old mill")]
    assert active_titles(entries, "past The old\n  MILL.") == ["Mill"]
    assert active_titles(entries, "the older mill") == []


def test_regex_keys_match_as_written_and_case_sensitively_unless_flagged() -> None:
    will = [E("Will", r"/\bWill\b/")]
    assert active_titles(will, "Will came.") == ["Will"]
    assert active_titles(will, "It will rain.") == [], "a regex key is case-sensitive: 'will' the verb is not Will"
    assert active_titles([E("Will", r"/\bwill\b/i")], "WILL came.") == ["Will"]
    colours = [E("Colour", r"/colou?r(ed|s)?/")]
    assert active_titles(colours, "a colored sky") == ["Colour"]
    assert active_titles(colours, "a coloured sky") == ["Colour"]
    assert active_titles(colours, "a cooler sky") == []
    active, _ = activate(colours, story="red and colours")
    assert (active[0].trigger.key, active[0].trigger.start, active[0].trigger.end) == ("/colou?r(ed|s)?/", 8, 15)


def test_a_regex_that_backtracks_without_end_is_skipped_and_reported(byte_tokenizer: Tokenizer) -> None:
    entries = [E("Slow", "/(a|aa)+$/"), E("Ann", "Ann")]
    story = "Ann " + "a" * 5000 + "!"
    t0 = time.perf_counter()
    result = build_lore(entries, byte_tokenizer, story=story, block_size=256,
                        settings=LoreSettings(scan_depth=4096))
    assert time.perf_counter() - t0 < 5
    assert titles(result) == [], "Ann is beyond the scan depth"
    assert result.warnings == ('entry "Slow": key "/(a|aa)+$/" was skipped: it took too long to search',)
    result = fit_lore(entries, byte_tokenizer, budget=100, story=story)
    assert titles(result) == ["Ann"], "the other entries are still found"
    assert len(result.warnings) == 1, "a key that ran out of time is reported once and not searched again"


# --- switches ------------------------------------------------------------------------------------------------

def test_always_on_and_disabled_entries() -> None:
    entries = [E("Sun", always=True), E("Ann", "Ann", enabled=False), E("Moon", always=True, enabled=False),
               E("Bob", "Bob", text="Bob knows Ann and Eve."), E("Eve", "Eve")]
    active, _ = activate(entries, story="Ann and Bob.")
    assert titles(active) == ["Sun", "Bob", "Eve"], "a disabled entry is never active, even when named or always on"
    assert active[0].trigger.describe() == "always on"
    assert active_titles([E("Off", "Ann", text="Eve", enabled=False), E("Eve", "Eve")], "Ann") == [], (
        "a disabled entry's text names nothing")


# --- where a trigger is --------------------------------------------------------------------------------------

def test_memory_note_and_the_latest_mention_in_the_story() -> None:
    entries = [E("Ann", "Ann", "Annie"), E("Bob", "Bob"), E("Cy", "Cy"), E("Dee", "Dee")]
    story = "Annie met Bob. Later Ann left, and Annie came back."
    active, _ = activate(entries, story=story, story_start=5, memory="Cy is the narrator.", note="Dee, Cy.")
    by = {a.entry.title: a.trigger for a in active}
    assert (by["Ann"].source, by["Ann"].key, story[by["Ann"].start:by["Ann"].end]) == ("story", "Annie", "Annie")
    assert by["Ann"].start == story.rindex("Annie"), "the latest mention, in offsets of the whole story"
    assert (by["Bob"].source, by["Bob"].start) == ("story", 10)
    assert (by["Cy"].source, by["Cy"].start, by["Cy"].describe()) == ("memory", 0, 'key "Cy" in the memory')
    assert (by["Dee"].source, by["Dee"].describe()) == ("note", "key \"Dee\" in the author's note")


# --- cascading -----------------------------------------------------------------------------------------------

def test_cascading_activates_an_entry_named_only_in_another_entry() -> None:
    entries = [E("Wey", "Wey", text="The Wey floods."), E("Mill", "mill", text="The mill stands on the Wey."),
               E("Ann", "Ann", text="Ann works at the mill.")]
    active, _ = activate(entries, story="Ann woke.")
    assert [(a.entry.title, a.round) for a in active] == [("Ann", 0), ("Mill", 1), ("Wey", 2)]
    wey = active[2].trigger
    assert (wey.source, wey.entry, wey.entry_title, wey.key) == ("entry", 1, "Mill", "Wey")
    assert entries[1].text[wey.start:wey.end] == "Wey"
    assert wey.describe() == 'key "Wey" in entry "Mill"'
    assert active_titles(entries, "Ann woke.", max_rounds=1) == ["Ann", "Mill"]
    assert active_titles(entries, "Ann woke.", max_rounds=0) == ["Ann"], "0 rounds: no cascading"


def test_a_cycle_of_entries_ends() -> None:
    entries = [E("A", "alpha", text="alpha knows beta"), E("B", "beta", text="beta knows gamma"),
               E("C", "gamma", text="gamma knows alpha and beta")]
    active, _ = activate(entries, story="alpha", max_rounds=16)
    assert [(a.entry.title, a.round) for a in active] == [("A", 0), ("B", 1), ("C", 2)]
    assert active_titles(entries, "nothing here", max_rounds=16) == [], "a cycle no source names stays off"


def test_the_first_entry_in_that_names_another_is_its_trigger() -> None:
    entries = [E("X", "x", text="y and z"), E("W", "w", text="z"), E("Z", "z")]
    active, _ = activate(entries, story="w x")
    z = next(a for a in active if a.entry.title == "Z")
    assert z.trigger.entry == 0, "X went in before W (lorebook order), so X is what brought Z in"


# --- the budget ----------------------------------------------------------------------------------------------

def test_the_budget_leaves_out_the_right_entries_and_says_so(byte_tokenizer: Tokenizer) -> None:
    entries = [
        E("Big", "big", text="B" * 30),        # 31 tokens
        E("Ann", "Ann", text="Ann has a cat."),  # 15
        E("Sun", always=True, text="Summer."),   # 8: always on, so first in line though listed third
        E("Cat", "cat", text="A cat."),          # 7, named only in Ann's text
        E("Dot", "dot", text="."),               # 2
    ]
    story = "big Ann dot"
    result = fit_lore(entries, byte_tokenizer, budget=30, story=story)
    # Priority: Sun (8, 22 left), then round 0 in lorebook order: Big (31 > 22: out), Ann (15, 7 left),
    # Dot (2, 5 left); round 1: Cat (7 > 5: out).
    assert titles(result) == ["Ann", "Sun", "Dot"], "read in the lorebook's order, not in priority order"
    assert [(o.entry.title, o.reason, o.tokens, o.room) for o in result.left_out] == [
        ("Big", "budget", 31, 22), ("Cat", "budget", 7, 5)]
    assert result.left_out[0].message == '"Big" left out: it needs 31 tokens and 22 of the lore budget were left'
    assert result.n_tokens == 25 and result.budget == 30
    assert result.text == "Ann has a cat.\nSummer.\n.\n"
    assert result.ids == byte_tokenizer.encode(result.text)
    assert [e.n_tokens for e in result.inserted] == [15, 8, 2]


def test_an_entry_left_out_brings_nothing_in(byte_tokenizer: Tokenizer) -> None:
    entries = [E("Ann", "Ann", text="Ann has a cat and she is very tall indeed."), E("Cat", "cat", text="Cat.")]
    result = fit_lore(entries, byte_tokenizer, budget=20, story="Ann")
    assert titles(result) == [] and [o.entry.title for o in result.left_out] == ["Ann"], (
        "Cat is named only in Ann's text, which the model does not read")
    assert titles(fit_lore(entries, byte_tokenizer, budget=100, story="Ann")) == ["Ann", "Cat"]


def test_an_empty_entry_is_left_out_as_empty(byte_tokenizer: Tokenizer) -> None:
    result = fit_lore([E("Draft", "Ann", text="  \n")], byte_tokenizer, budget=100, story="Ann")
    assert result.inserted == ()
    assert [(o.reason, o.message) for o in result.left_out] == [("empty", '"Draft" left out: its text is empty')]


def test_build_lore_takes_the_share_of_the_context_or_the_room_left(byte_tokenizer: Tokenizer) -> None:
    entries = [E("Ann", "Ann", text="A" * 19)]  # 20 tokens
    s = LoreSettings(budget_share=0.25)
    assert titles(build_lore(entries, byte_tokenizer, story="Ann", settings=s, block_size=80)) == ["Ann"]
    assert titles(build_lore(entries, byte_tokenizer, story="Ann", settings=s, block_size=79)) == [], "19 tokens"
    assert build_lore(entries, byte_tokenizer, story="Ann", settings=s, block_size=80, room=10).budget == 10
    assert build_lore(entries, byte_tokenizer, story="Ann", settings=s, block_size=80, room=-5).budget == 0


@settings(max_examples=80, deadline=None)
@given(texts=st.lists(st.lists(st.sampled_from(list("aZé7 .,'’\"-\n\t\r!?\u2028") + ["ing", "Ann"]),
                              max_size=30).map("".join), min_size=1, max_size=4),
       which=st.sampled_from(["gpt2", "default"]))
def test_lore_ids_are_what_encoding_the_lore_text_gives(texts: list[str], which: str) -> None:
    """The budget counts each entry's ids; with GPT-2's tokenizer and the default model's, the block they make
    is the same ids as its text encoded whole, so a caller that hands the engine the text instead of the
    ids gets what was counted."""
    tok = _gpt2() if which == "gpt2" else _default_tokenizer()
    entries = [E(f"E{i}", "k", text=t) for i, t in enumerate(texts)]
    result = fit_lore(entries, tok, budget=10_000, story="k")
    assert len(result.inserted) == sum(1 for t in texts if t.strip())
    assert result.ids == tok.encode(result.text)


def test_key_spans_mark_every_key_of_the_entries_put_in(byte_tokenizer: Tokenizer) -> None:
    entries = [E("Ann", "Ann", "/Annie?s?/", text="Ann."), E("Bob", "Bob", text="Bob."), E("Cy", "Cy", text="")]
    story = "Bob saw Ann. Annies and ANN, and Cy. Bob!"
    result = fit_lore(entries, byte_tokenizer, budget=100, story=story)
    assert titles(result) == ["Ann", "Bob"]
    assert key_spans(result.inserted, story) == [
        (0, 3, 1), (8, 11, 0), (13, 19, 0), (24, 27, 0), (37, 40, 1)], "Cy, left out, is not marked"
    assert key_spans(result.inserted, story, start=20) == [(24, 27, 0), (37, 40, 1)]


# --- settings ------------------------------------------------------------------------------------------------

def test_settings_bounds_are_checked_in_one_place() -> None:
    assert LoreSettings().budget(256) == 64
    for name, limit in LORE_LIMITS.items():
        kind = float if name == "budget_share" else int
        LoreSettings(**{name: kind(limit.low)})
        LoreSettings(**{name: kind(limit.high)})
        with pytest.raises(SlmError, match=f"lore setting {name} is"):
            LoreSettings(**{name: kind(limit.high) + 1})
        with pytest.raises(SlmError, match=f"lore setting {name} is"):
            LoreSettings(**{name: kind(limit.low) - 1})
    with pytest.raises(SlmError, match="not a whole number"):
        LoreSettings(scan_depth=1.5)  # type: ignore[arg-type]
    with pytest.raises(SlmError, match="not a number"):
        LoreSettings(budget_share="0.2")  # type: ignore[arg-type]
    with pytest.raises(SlmError):
        LoreSettings(budget_share=float("nan"))


# --- properties ----------------------------------------------------------------------------------------------

WORDS = ["ann", "bob", "mill", "wey", "cat", "sea", "the old mill", "/b.b/", "/Wey/", "/c[au]t/i"]
entries_st = st.lists(
    st.builds(
        LoreEntry,
        title=st.sampled_from(["Ann", "Bob", "Mill", "Wey", "Cat", "Sea"]),
        keys=st.lists(st.sampled_from(WORDS), max_size=3).map(tuple),
        text=st.lists(st.sampled_from(WORDS[:7] + ["and", "is", "Old", "MILL"]), max_size=8).map(" ".join),
        enabled=st.booleans(),
        always=st.sampled_from([False, False, False, True]),
    ),
    max_size=10,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=entries_st, story=st.lists(st.sampled_from(WORDS[:7] + ["x", "Ann's", "Annual", "BOB,"]),
                                          max_size=20).map(" ".join),
       budget=st.integers(0, 120), rounds=st.integers(0, 16))
def test_activation_ends_is_deterministic_and_every_trigger_is_real(
        byte_tokenizer: Tokenizer, entries: list[LoreEntry], story: str, budget: int, rounds: int) -> None:
    active, _ = activate(entries, story=story, max_rounds=rounds)
    again, _ = activate(list(entries), story=story, max_rounds=rounds)
    assert active == again, "deterministic"
    assert len({a.index for a in active}) == len(active), "no entry twice, so every cycle ends"
    assert all(a.round <= rounds for a in active)
    for a in active:
        assert a.entry.enabled
        t = a.trigger
        if t.source == "always":
            assert a.entry.always and a.round == 0
            continue
        text = story if t.source == "story" else entries[t.entry].text  # type: ignore[index]
        assert t.key in a.entry.keys
        assert (t.start, t.end) in list(parse_key(t.key).spans(text)), "the key really is there"
        if t.source == "entry":
            source = next(b for b in active if b.index == t.entry)
            assert source.round == a.round - 1
    # Fitting: within the budget, never more than activation, and all of it when the budget is unlimited.
    fitted = fit_lore(entries, byte_tokenizer, budget=budget, story=story, max_rounds=rounds)
    assert fitted.n_tokens <= budget
    assert fitted.ids == byte_tokenizer.encode(fitted.text)
    assert {e.index for e in fitted.inserted} <= {a.index for a in active}
    assert [e.index for e in fitted.inserted] == sorted(e.index for e in fitted.inserted)
    assert {e.index for e in fitted.inserted}.isdisjoint({o.index for o in fitted.left_out})
    for e in fitted.inserted:  # a cascaded entry came in through an entry that is in
        if e.trigger.source == "entry":
            assert e.trigger.entry in {x.index for x in fitted.inserted}
    everything = fit_lore(entries, byte_tokenizer, budget=10**6, story=story, max_rounds=rounds)
    assert {e.index for e in everything.inserted} == {a.index for a in active if entry_block(a.entry)}
    assert {o.index for o in everything.left_out} == {a.index for a in active if not entry_block(a.entry)}


def test_worst_case_is_quick(byte_tokenizer: Tokenizer) -> None:
    """Every limit at its maximum: MAX_ENTRIES entries of MAX_KEYS keys, texts of MAX_TEXT_CHARS, a 4096-token
    scan over a long story, and half of them named so the other half is searched in their texts. Measured at
    about 0.6 s for ``activate`` and 0.15 s for ``build_lore`` on a busy 2-core machine; the bound here leaves
    room for a slower one."""
    words = [f"w{i}x" for i in range(4000)]
    named = [LoreEntry(f"A{i}", (words[i],), " ".join(words[1000 + (i * 7 + j) % 2000] for j in range(330))[
        :MAX_TEXT_CHARS]) for i in range(MAX_ENTRIES // 2)]
    unnamed = [LoreEntry(f"B{i}", tuple(f"never seen {i} {k} phrase" for k in range(MAX_KEYS)), "x")
               for i in range(MAX_ENTRIES - len(named))]
    story = " ".join(words[i % 128] for i in range(8000))
    t0 = time.perf_counter()
    active, _ = activate(named + unnamed, story=story, story_start=scan_start(byte_tokenizer, story, 4096))
    t1 = time.perf_counter()
    result = build_lore(named + unnamed, byte_tokenizer, story=story, block_size=4096,
                        settings=LoreSettings(scan_depth=4096, budget_share=0.5, max_rounds=16))
    t2 = time.perf_counter()
    assert len(active) == len(named) and result.inserted
    assert t1 - t0 < 10 and t2 - t1 < 10
