"""Lore entries and their keys (stories/lorebook.py): what a key matches, which keys are refused, and an entry
that cannot be built with a bad field, each said in one line naming the entry and the field."""

from __future__ import annotations

import pickle
import random
from dataclasses import FrozenInstanceError, replace

import pytest

from slmtui.core.errors import SlmError
from slmtui.stories.lorebook import (MAX_ENTRIES, MAX_KEY_CHARS, MAX_KEYS, MAX_TEXT_CHARS, MAX_TITLE_CHARS, KeyProblem,
                                     LoreEntry, LoreError, Lorebook, parse_key, show)


def spans(key: str, text: str, pos: int = 0) -> list[tuple[int, int]]:
    return list(parse_key(key).spans(text, pos))


def test_word_keys_are_whole_words_in_any_case() -> None:
    assert spans("Ann", "Ann, ANN. ann's Annual Joann Ann-Marie") == [(0, 3), (5, 8), (10, 13), (29, 32)]
    assert spans("O'Brien", "O\u2019Brien and O'Brien") == [(0, 7), (12, 19)], "a straight apostrophe: a curly one"
    assert spans("straße", "STRASSE") == [(0, 7)], "full case folding"
    assert spans("Élise", "ÉLISE élise") == [(0, 5), (6, 11)]
    assert spans("Dr. Who", "dr.  who?") == [(0, 8)]
    assert spans("  Ann  ", "Ann") == [(0, 3)], "the white space around a key is not part of it"
    assert not parse_key("Ann").is_regex and parse_key("/Ann/").is_regex


def test_the_text_before_the_scan_still_bounds_a_word() -> None:
    assert spans("Ann", "Joann Ann", pos=2) == [(6, 9)]
    assert spans("Ann", "Jo Ann", pos=3) == [(3, 6)]


def test_regex_keys_and_their_flags() -> None:
    assert spans(r"/Will\b/", "Will will WILL") == [(0, 4)]
    assert spans(r"/Will\b/i", "Will will WILL") == [(0, 4), (5, 9), (10, 14)]
    assert spans(r"/^Chapter \d+/m", "x\nChapter 2\nChapter 3") == [(2, 11), (12, 21)]
    assert spans(r"/a.b/s", "a\nb") == [(0, 3)] and spans("/a.b/", "a\nb") == []


@pytest.mark.parametrize(("key", "problem"), [
    ("", "is blank"),
    ("   \t", "is blank"),
    ("//", "matches an empty string"),
    ("/.*/", "matches an empty string"),
    ("/^/", "matches an empty string"),
    (r"/\b/", "matches an empty string"),
    ("/$/", "matches an empty string"),
    ("/a*/", "matches an empty string"),
    ("/x?/i", "matches an empty string"),
    ("/(?=a)/", "matches an empty string"),
    ("/Ann|/", "matches an empty string"),
    ("/./", "matches any single character"),
    (r"/[\s\S]/", "matches any single character"),
    ("/.+/s", "matches any single character"),
    ("/(/", "is not a valid regular expression: missing )"),
    ("/[a-/", "is not a valid regular expression"),
    ("/x/g", "has the flag 'g'; a regex key may carry i, m, s"),
    ("A" * (MAX_KEY_CHARS + 1), f"is {MAX_KEY_CHARS + 1} characters long"),
    ("Ann\x00", "holds a control character"),
    ("Ann\ud800", "lone surrogate"),
])
def test_keys_that_would_match_everything_or_cannot_be_are_refused(key: str, problem: str) -> None:
    with pytest.raises(KeyProblem, match=problem.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        parse_key(key)
    with pytest.raises(LoreError) as e:
        LoreEntry("Ann", ("Ann", key))
    assert str(e.value).startswith('lore entry "Ann": keys[1]') and problem in str(e.value)
    assert "\n" not in str(e.value) and e.value.exit_code == 2
    assert isinstance(e.value, SlmError)


def test_a_zero_length_match_never_counts() -> None:
    """A zero-width pattern the probes miss still needs characters to fire: its empty matches are skipped."""
    assert spans("/(?=qzx)|foo/", "qzx foo") == [(4, 7)]


@pytest.mark.parametrize(("fields", "message"), [
    ({"title": 3}, "lore entry: title is not a string"),
    ({"title": " "}, "lore entry: title is blank"),
    ({"title": "T" * (MAX_TITLE_CHARS + 1)}, f"title is {MAX_TITLE_CHARS + 1} characters long"),
    ({"title": "Ann\nBob"}, "title holds a line break"),
    ({"title": "Ann\udc00"}, "title holds a lone surrogate"),
    ({"keys": "Ann"}, 'lore entry "Ann": keys is not a list'),
    ({"keys": ("k",) * (MAX_KEYS + 1)}, f"keys has {MAX_KEYS + 1} keys; an entry has at most {MAX_KEYS}"),
    ({"keys": ("Ann", 4)}, 'lore entry "Ann": keys[1] is not a string'),
    ({"text": None}, 'lore entry "Ann": text is not a string'),
    ({"text": "x" * (MAX_TEXT_CHARS + 1)}, f"text is {MAX_TEXT_CHARS + 1} characters long"),
    ({"text": "a\ud800b"}, "text holds a lone surrogate"),
    ({"enabled": 1}, 'lore entry "Ann": enabled is not true or false'),
    ({"always": "yes"}, 'lore entry "Ann": always is not true or false'),
    ({"extra": {"title": "x"}}, '"title" is a known field'),
    ({"extra": {"colour": float("inf")}}, "colour is inf, which JSON cannot hold"),
    ({"extra": {"tags": ["a", "\ud800"]}}, "tags[1] holds a lone surrogate"),
    ({"extra": {"deep": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}}, "is nested more than 16 levels deep"),
    ({"extra": {"x": {1: 2}}}, "has the field name 1, which is not a string"),
    ({"extra": {"x": {1, 2}}}, "is a set, which JSON cannot hold"),
])
def test_an_entry_with_a_bad_field_cannot_be_built(fields: dict[str, object], message: str) -> None:
    values = {"title": "Ann", "keys": ("Ann",), "text": "Ann is here."} | fields
    with pytest.raises(LoreError) as e:
        LoreEntry(**values)  # type: ignore[arg-type]
    assert message in str(e.value) and "\n" not in str(e.value)


def test_an_entry_is_frozen_owns_its_extra_and_travels() -> None:
    extra = {"colour": "red", "tags": ["a"]}
    entry = LoreEntry("Ann", ["Ann", "/Annie?/i"], "Ann is here.", extra=extra)  # type: ignore[arg-type]
    assert entry.keys == ("Ann", "/Annie?/i"), "a list of keys is kept as a tuple"
    extra["tags"].append("b")
    assert entry.extra == {"colour": "red", "tags": ["a"]}, "the entry holds its own copy"
    with pytest.raises(FrozenInstanceError):
        entry.title = "Bob"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(entry)) == entry, "it can cross to a decoding child process"
    assert hash(entry) == hash(LoreEntry("Ann", ("Ann", "/Annie?/i"), "Ann is here.", extra={"other": 1}))
    assert replace(entry, enabled=False).enabled is False
    with pytest.raises(LoreError):
        replace(entry, keys=("/.*/",))
    assert [k.is_regex for k in entry.compiled_keys] == [False, True]


def test_a_lorebook_holds_at_most_max_entries() -> None:
    entry = LoreEntry("Ann", ("Ann",))
    assert len(Lorebook([entry] * MAX_ENTRIES).entries) == MAX_ENTRIES  # type: ignore[arg-type]
    with pytest.raises(SlmError, match=f"{MAX_ENTRIES + 1} entries; one holds at most {MAX_ENTRIES}"):
        Lorebook((entry,) * (MAX_ENTRIES + 1))
    with pytest.raises(SlmError, match='"entries", a known field'):
        Lorebook((), {"entries": []})
    with pytest.raises(SlmError, match="nan, which JSON cannot hold"):
        Lorebook((), {"x": float("nan")})


def test_show_quotes_on_one_line() -> None:
    assert show("Ann") == '"Ann"'
    assert show("a\nb\ud800") == '"a\\nb\\ud800"'
    assert show("x" * 50, limit=10) == '"xxxxxxxxx…"'


def test_compiling_many_keys_leaves_the_global_random_state_alone() -> None:
    """The regex module's own pattern cache evicts with ``random`` once full; keys bypass it (parse_key caches)."""
    state = random.getstate()
    for i in range(1500):  # past the regex module's cache of 500 patterns
        LoreEntry("Ann", (f"name{i}", f"/place{i}/i"))
    assert random.getstate() == state
