"""The lore JSON (stories/lore_json.py): an exact round trip that keeps unknown fields, and every kind of bad
input refused whole, in one line naming the entry and the field."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slmtui.core.errors import SlmError
from slmtui.stories.lore_json import (FORMAT, MAX_FILE_BYTES, VERSION, lore_from_data, lore_from_json, lore_to_data,
                                      lore_to_json, read_lore_bytes, read_lore_file, write_lore_file)
from slmtui.stories.lorebook import MAX_ENTRIES, MAX_KEYS, MAX_TEXT_CHARS, LoreEntry, Lorebook

WORLD = """{
 "format": "slmtui-lore",
 "version": 1,
 "entries": [
  {
   "title": "Ann",
   "keys": [
    "Ann",
    "the miller's daughter"
   ],
   "text": "Ann, the miller's daughter, is seventeen and afraid of the river.",
   "enabled": true,
   "always": false,
   "colour": "#c08040",
   "notes": {
    "by": "another tool",
    "tags": [
     "person",
     1,
     2.5,
     null
    ]
   }
  },
  {
   "title": "The Wey",
   "keys": [
    "/\\\\bWey\\\\b/"
   ],
   "text": "The Wey floods every spring.",
   "enabled": false,
   "always": true
  }
 ],
 "world": "Surrey, 1890",
 "made_with": {
  "app": "elsewhere",
  "v": 3
 }
}
"""


def test_a_round_trip_is_exact_and_keeps_unknown_fields() -> None:
    book = lore_from_json(WORLD)
    ann, wey = book.entries
    assert (ann.title, ann.keys, ann.enabled, ann.always) == ("Ann", ("Ann", "the miller's daughter"), True, False)
    assert ann.extra == {"colour": "#c08040", "notes": {"by": "another tool", "tags": ["person", 1, 2.5, None]}}
    assert wey.keys == (r"/\bWey\b/",) and wey.extra == {}
    assert book.extra == {"world": "Surrey, 1890", "made_with": {"app": "elsewhere", "v": 3}}
    assert lore_to_json(book) == WORLD, "written back byte for byte"
    assert type(ann.extra["notes"]) is dict, "unknown fields are plain JSON values"
    assert lore_from_json(lore_to_json(book)) == book


def test_a_file_typed_by_hand_needs_only_titles() -> None:
    book = lore_from_json('{"entries": [{"title": "Ann"}, {"title": "Sun", "always": true, "text": "Summer."}]}')
    assert book.entries == (LoreEntry("Ann"), LoreEntry("Sun", (), "Summer.", always=True))
    data = lore_to_data(book)
    assert data["format"] == FORMAT and data["version"] == VERSION
    assert data["entries"][0] == {"title": "Ann", "keys": [], "text": "", "enabled": True, "always": False}
    assert lore_from_json('{"entries": []}') == Lorebook()
    assert read_lore_bytes(b'\xef\xbb\xbf{"entries": []}') == Lorebook(), "a byte-order mark is allowed"


def test_a_lorebook_inside_another_document_is_named_by_its_place() -> None:
    doc = json.loads('{"lore": {"entries": [{"title": "Ann", "keys": ["/(/"]}]}}')
    with pytest.raises(SlmError) as e:
        lore_from_data(doc["lore"], "story.json", "lore")
    assert str(e.value).startswith('story.json: lore.entries[0] "Ann": keys[0] "/(/" is not a valid regular')
    with pytest.raises(SlmError, match='^story.json: lore is not a lorebook: it has no "entries"$'):
        lore_from_data({}, "story.json", "lore")


def _entries(*items: str) -> str:
    return '{"entries": [' + ", ".join(items) + "]}"


BAD: list[tuple[str, str]] = [
    # malformed, or not a lorebook at all
    ('{"entries": [', "lore.json is not JSON: Expecting value at line 1, column 14"),
    ("", "lore.json is not JSON: Expecting value at line 1, column 1"),
    ("[]", 'lore.json is not a lorebook: a JSON object with "entries" was expected'),
    ("{}", 'lore.json is not a lorebook: it has no "entries"'),
    ('{"entries": {}}', 'lore.json: "entries" is not a list'),
    ('{"format": "slmtui-story", "entries": []}', 'lore.json is not a lorebook: "format" is "slmtui-story"'),
    ('{"version": 2, "entries": []}', "lore.json is lore format version 2; this slmtui reads up to 1"),
    ('{"version": "1", "entries": []}', 'lore.json: "version" is "1", not a whole number from 1'),
    ('{"version": true, "entries": []}', 'lore.json: "version" is true, not a whole number from 1'),
    ('{"entries": [], "entries": []}', 'lore.json: the top level has the field "entries" twice'),
    ('{"entries": [], "x": NaN}', "lore.json is not valid JSON: NaN is not a JSON number"),
    ('{"entries": [], "x": -Infinity}', "lore.json is not valid JSON: -Infinity is not a JSON number"),
    ('{"entries": [], "x": ' + "9" * 5000 + "}", "lore.json is not valid JSON: Exceeds the limit"),
    ('{"entries": [], "x": "\\ud800"}', 'lore.json: "x" holds a lone surrogate'),
    ('{"entries": [], "x": {"\\udc00": 1}}', 'lore.json: "x" has a field name with a lone surrogate'),
    ('{"entries": [], "x": {"a": 1, "a": 2}}', 'lore.json: "x" has the field "a" twice'),
    ('{"entries": [], "x": ' + "[" * 17 + "]" * 17 + "}", 'lore.json: "x"' + "[0]" * 16 + " is nested more"),
    ('{"entries": [], "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "lore.json is nested too deeply"),
    # the entries
    (_entries('"Ann"'), "lore.json: entries[0] is not an object"),
    (_entries('{"text": "x"}'), 'lore.json: entries[0] has no "title"'),
    (_entries('{"title": "Ann"}', '{"title": 7}'), "lore.json: entries[1]: title is not a string"),
    (_entries('{"title": "  "}'), "lore.json: entries[0]: title is blank"),
    (_entries('{"title": "A\\nB"}'), "lore.json: entries[0] \"A\\nB\": title holds a line break"),
    (_entries('{"title": "A\\ud800"}'), 'lore.json: entries[0] "A\\ud800": title holds a lone surrogate'),
    (_entries('{"title": "Ann", "title": "Bob"}'), 'lore.json: entries[0] "Bob" has the field "title" twice'),
    (_entries('{"title": "Ann", "keys": "Ann"}'), 'lore.json: entries[0] "Ann": keys is not a list'),
    (_entries('{"title": "Ann", "keys": [["Ann"]]}'), 'lore.json: entries[0] "Ann": keys[0] is not a string'),
    (_entries('{"title": "Ann", "keys": ["Ann", ""]}'), 'lore.json: entries[0] "Ann": keys[1] "" is blank'),
    (_entries('{"title": "Ann", "keys": ["/(/"]}'),
     'lore.json: entries[0] "Ann": keys[0] "/(/" is not a valid regular expression: missing ) at position 1'),
    (_entries('{"title": "Ann", "keys": ["/.*/"]}'), 'keys[0] "/.*/" matches an empty string'),
    (_entries('{"title": "Ann", "keys": ["/^/"]}'), 'keys[0] "/^/" matches an empty string'),
    (_entries('{"title": "Ann", "keys": ["/\\\\b/"]}'), r'keys[0] "/\b/" matches an empty string'),
    (_entries('{"title": "Ann", "keys": ["/./"]}'), 'keys[0] "/./" matches any single character'),
    (_entries('{"title": "Ann", "keys": ["/Ann/gi"]}'), "keys[0] \"/Ann/gi\" has the flag 'g'"),
    (_entries('{"title": "Ann", "keys": ["Ann\\ud800"]}'), 'keys[0] "Ann\\ud800" holds a lone surrogate'),
    (_entries('{"title": "Ann", "keys": ' + json.dumps(["k"] * (MAX_KEYS + 1)) + "}"),
     f'lore.json: entries[0] "Ann": keys has {MAX_KEYS + 1} keys'),
    (_entries('{"title": "Ann", "text": 5}'), 'lore.json: entries[0] "Ann": text is not a string'),
    (_entries('{"title": "Ann", "text": "' + "x" * (MAX_TEXT_CHARS + 1) + '"}'),
     f'lore.json: entries[0] "Ann": text is {MAX_TEXT_CHARS + 1} characters long'),
    (_entries('{"title": "Ann", "text": "\\udfff"}'), 'lore.json: entries[0] "Ann": text holds a lone surrogate'),
    (_entries('{"title": "Ann", "enabled": "yes"}'), 'lore.json: entries[0] "Ann": enabled is not true or false'),
    (_entries('{"title": "Ann", "always": null}'), 'lore.json: entries[0] "Ann": always is not true or false'),
    (_entries('{"title": "Ann", "tags": ["\\ud800"]}'), 'lore.json: entries[0] "Ann": "tags"[0] holds a lone'),
    (_entries('{"title": "Ann", "n": {"a": [{"b": 1, "b": 1}]}}'), 'entries[0] "Ann": "n" has the field "b" twice'),
    (_entries('{"title": "Ann", "d": ' + "{\"a\": " * 16 + "1" + "}" * 16 + "}"), '"d".a.a.a'),
    (_entries(*['{"title": "Ann"}'] * (MAX_ENTRIES + 1)),
     f"lore.json has {MAX_ENTRIES + 1} entries; a lorebook holds at most {MAX_ENTRIES}"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m[:50] for _, m in BAD])
def test_every_bad_input_is_one_line_naming_where(text: str, message: str) -> None:
    with pytest.raises(SlmError) as e:
        lore_from_json(text, "lore.json")
    said = str(e.value)
    assert message in said, said
    assert said.startswith("lore.json") and "\n" not in said and e.value.exit_code == 2
    said.encode("utf-8")  # printable: a lone surrogate in the input is shown escaped


def test_bytes_too_large_or_not_utf8() -> None:
    with pytest.raises(SlmError, match="^lore.json is larger than 4 MiB: no lorebook is that big$"):
        read_lore_bytes(b" " * (MAX_FILE_BYTES + 1), "lore.json")
    with pytest.raises(SlmError, match=r"^lore.json is not UTF-8 text \(byte 13 is not valid UTF-8\)$"):
        read_lore_bytes(b'{"entries": [\xff]}', "lore.json")


# --- files ---------------------------------------------------------------------------------------------------

def test_a_file_is_written_atomically_replaced_only_when_asked_and_read_back(tmp_path: Path) -> None:
    book = lore_from_json(WORLD)
    path = tmp_path / "world.json"
    assert write_lore_file(path, book) == path
    assert path.read_text(encoding="utf-8") == WORLD
    assert read_lore_file(path) == book
    other = Lorebook((LoreEntry("Bob", ("Bob",)),))
    with pytest.raises(SlmError, match="already exists"):
        write_lore_file(path, other)
    assert read_lore_file(path) == book, "refused: the file is as it was"
    write_lore_file(path, other, replace=True)
    assert read_lore_file(path) == other
    assert sorted(p.name for p in tmp_path.iterdir()) == ["world.json"], "no temporary file is left"
    link = tmp_path / "link.json"
    link.symlink_to(path)
    assert read_lore_file(link) == other, "a link to a regular file is read"
    with pytest.raises(SlmError, match="is a symbolic link"):
        write_lore_file(link, book, replace=True)
    with pytest.raises(SlmError, match="is a folder"):
        write_lore_file(tmp_path, book, replace=True)


def test_reading_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(SlmError, match="No such file or directory$"):
        read_lore_file(tmp_path / "missing.json")
    with pytest.raises(SlmError, match="is a folder"):
        read_lore_file(tmp_path)
    if Path("/dev/zero").exists():  # an endless stream: refused, never read on
        with pytest.raises(SlmError, match="is not a regular file"):
            read_lore_file(Path("/dev/zero"))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    said: list[str] = []

    def read() -> None:
        try:
            read_lore_file(fifo)
        except SlmError as e:
            said.append(str(e))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # it blocked in open(): unblock it by opening the write end, then fail
        with open(fifo, "wb"):
            pass
        pytest.fail("reading a FIFO waited for a writer")
    assert said and "is not a regular file" in said[0]


def test_a_huge_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:
        f.truncate(64 * 1024 * 1024 * 1024)  # sparse: 64 GiB that take no disk
    with pytest.raises(SlmError, match="is larger than 4 MiB"):
        read_lore_file(path)


# --- properties ----------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
word = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=12)
entries = st.builds(
    LoreEntry,
    title=st.text(st.characters(exclude_categories=["Cs", "Zl", "Zp", "Cc"]), min_size=1, max_size=30).filter(
        str.strip),
    keys=st.lists(word | word.map(lambda w: f"/{w}/i") | st.sampled_from(["the old mill", "Ann's", "/c[au]t/"]),
                  max_size=4).map(tuple),
    text=st.text(st.characters(exclude_categories=["Cs"]), max_size=60),
    enabled=st.booleans(),
    always=st.booleans(),
    extra=st.dictionaries(st.text(max_size=6).filter(lambda k: k not in ("title", "keys", "text", "enabled",
                                                                         "always")), json_values, max_size=3),
)
books = st.builds(Lorebook, entries=st.lists(entries, max_size=5).map(tuple),
                  extra=st.dictionaries(st.text(max_size=6).filter(lambda k: k not in ("format", "version",
                                                                                       "entries")),
                                        json_values, max_size=3))


@settings(max_examples=150, deadline=None)
@given(book=books)
def test_parse_of_write_is_the_same_lorebook(book: Lorebook) -> None:
    text = lore_to_json(book)
    again = lore_from_json(text)
    assert again == book
    assert lore_to_json(again) == text


@settings(max_examples=100, deadline=None)
@given(doc=json_values)
def test_any_json_gives_a_lorebook_or_one_line(doc: Any) -> None:
    """Whatever JSON arrives, reading it either gives a Lorebook or says one line: never another exception."""
    for candidate in (doc, {"entries": doc}, {"entries": [doc]}, {"entries": [{"title": "T", "keys": doc}]}):
        try:
            lore_from_json(json.dumps(candidate))
        except SlmError as e:
            assert "\n" not in str(e)
