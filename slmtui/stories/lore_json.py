"""A lorebook as JSON: a world written once and reused across stories, checked whole before it is used.

The file::

    {"format": "slmtui-lore", "version": 1,
     "entries": [{"title": "Ann", "keys": ["Ann", "the miller"], "text": "Ann is the miller's daughter.",
                  "enabled": true, "always": false}]}

``format`` and ``version`` are written always and optional on reading (a file typed by hand needs only
``entries``); an entry needs only ``title``: ``keys`` defaults to none, ``text`` to "", ``enabled`` to true,
``always`` to false. Every other field, at the top or in an entry, is kept as it was and written back, so a
file that a newer slmtui or another tool wrote comes back with everything it held.

Reading checks the whole document before returning anything (so nothing is saved half-way) and says the first
problem in one line naming the entry and the field: malformed JSON, a file over ``MAX_FILE_BYTES``, too many
entries, a wrong type, a text or key over its limit (``lorebook.py``), a lone surrogate, a field twice in one
object, nesting deeper than ``MAX_EXTRA_DEPTH``, an invalid regex, a key that would match everything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slmtui.core import strict_json
from slmtui.core.atomic import write_regular_file
from slmtui.core.errors import SlmError
from slmtui.core.user_input import read_file_bytes
from slmtui.stories.lorebook import (BOOK_FIELDS, ENTRY_FIELDS, MAX_ENTRIES, MAX_EXTRA_DEPTH, LoreEntry, LoreError,
                                     Lorebook, json_value_problem, show)

FORMAT = "slmtui-lore"
VERSION = 1
"""This file format's version: bumped when a reader of the old one would misread a new file."""
MAX_FILE_BYTES = 4 * 1024 * 1024
"""The largest lore file read: ``MAX_ENTRIES`` entries at their longest, with keys, take about 1.5 MiB as JSON;
the rest is room for unknown fields. A bigger file is no lorebook, and is refused before it is parsed."""


def lore_to_data(book: Lorebook) -> dict[str, Any]:
    """The lorebook as a JSON object (what the file holds; the story JSON can embed the same object)."""
    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION, "entries": []}
    for entry in book.entries:
        doc["entries"].append({"title": entry.title, "keys": list(entry.keys), "text": entry.text,
                               "enabled": entry.enabled, "always": entry.always, **entry.extra})
    doc.update(book.extra)
    return doc


def lore_to_json(book: Lorebook) -> str:
    """The lorebook as JSON text: UTF-8, indented (diffable, and easy to edit by hand)."""
    return strict_json.dumps(lore_to_data(book), ensure_ascii=False, indent=1) + "\n"


def lore_from_json(text: str, source: str = "the lore file") -> Lorebook:
    """Parse and check a lore file's text; SlmError (exit 2) naming the first problem."""
    return lore_from_data(_loads(text, source), source)


def lore_from_data(doc: Any, source: str = "the lore file", where: str = "") -> Lorebook:
    """Check a parsed lore object (``where``: its place in a larger document, e.g. ``lore`` in a story file) and
    build the Lorebook; SlmError (exit 2) naming the first problem."""
    subject = f"{source}: {where}" if where else source  # what the document-wide messages are about
    at = f"{source}: {where + '.' if where else ''}"  # the prefix of a place inside it: lore.entries[2]
    if not isinstance(doc, dict):
        raise SlmError(f"{subject} is not a lorebook: a JSON object with \"entries\" was expected")
    _no_duplicates(doc, "", f"{subject}: the top level")
    if "format" in doc and doc["format"] != FORMAT:
        raise SlmError(f"{subject} is not a lorebook: \"format\" is {_show_value(doc['format'])}, not \"{FORMAT}\"")
    version = doc.get("version", VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SlmError(f"{subject}: \"version\" is {_show_value(version)}, not a whole number from 1")
    if version > VERSION:
        raise SlmError(f"{subject} is lore format version {version}; this slmtui reads up to {VERSION}")
    if "entries" not in doc:
        raise SlmError(f"{subject} is not a lorebook: it has no \"entries\"")
    items = doc["entries"]
    if not isinstance(items, list):
        raise SlmError(f"{subject}: \"entries\" is not a list")
    if len(items) > MAX_ENTRIES:
        raise SlmError(f"{subject} has {len(items)} entries; a lorebook holds at most {MAX_ENTRIES}")
    extra = _checked_extra({k: v for k, v in doc.items() if k not in BOOK_FIELDS}, at, "")
    entries = [_entry(item, i, at) for i, item in enumerate(items)]
    return Lorebook(tuple(entries), extra)


def _entry(item: Any, i: int, at: str) -> LoreEntry:
    place = f"entries[{i}]"
    if not isinstance(item, dict):
        raise SlmError(f"{at}{place} is not an object")
    title = item.get("title")
    named = f"{place} {show(title)}" if isinstance(title, str) and title.strip() else place
    _no_duplicates(item, at, named)
    if "title" not in item:
        raise SlmError(f"{at}{place} has no \"title\"")
    keys = item.get("keys", [])
    if not isinstance(keys, list):
        raise SlmError(f"{at}{named}: keys is not a list")
    for j, key in enumerate(keys):
        if not isinstance(key, str):
            raise SlmError(f"{at}{named}: keys[{j}] is not a string")
    for name, kind, what in (("title", str, "a string"), ("text", str, "a string"),
                             ("enabled", bool, "true or false"), ("always", bool, "true or false")):
        if name in item and not isinstance(item[name], kind):
            raise SlmError(f"{at}{named}: {name} is not {what}")
    extra = _checked_extra({k: v for k, v in item.items() if k not in ENTRY_FIELDS}, at, f"{named}: ")
    try:
        return LoreEntry(title=item["title"], keys=tuple(keys), text=item.get("text", ""),
                         enabled=item.get("enabled", True), always=item.get("always", False), extra=extra)
    except LoreError as e:
        raise SlmError(f"{at}{named}: {e.where} {e.problem}") from e


def _checked_extra(extra: dict[str, Any], at: str, named: str) -> dict[str, Any]:
    """The unknown fields, checked (they must write back as the same JSON) and as plain dicts and lists."""
    for name, value in extra.items():
        problem = json_value_problem(value, show(name))
        if problem:
            raise SlmError(f"{at}{named}{problem[0]} {problem[1]}")
        _no_duplicates_within(value, at, f"{named}{show(name)}")
    return {name: _plain(value) for name, value in extra.items()}


def _plain(value: Any) -> Any:
    """``value`` with every ``_Object`` a dict again (recursion is safe: nesting was checked above)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class _Object(dict):  # type: ignore[type-arg]
    """A parsed JSON object that remembers a field written twice (json keeps the last silently): a round trip
    could not give back such a file, and which of the two was meant is a guess."""

    duplicates: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) < len(pairs):
        seen: set[str] = set()
        twice: list[str] = []
        for k, _ in pairs:
            if k in seen:
                twice.append(k)
            seen.add(k)
        obj.duplicates = tuple(twice)
    return obj


def _no_duplicates(obj: Any, at: str, named: str) -> None:
    if isinstance(obj, _Object) and obj.duplicates:
        raise SlmError(f"{at}{named} has the field {show(obj.duplicates[0])} twice")


def _no_duplicates_within(value: Any, at: str, named: str) -> None:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            _no_duplicates(v, at, named)
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _loads(text: str, source: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise SlmError(f"{source} is not JSON: {e.msg} at line {e.lineno}, column {e.colno}") from e
    except RecursionError as e:
        raise SlmError(f"{source} is nested too deeply to be a lorebook (more than {MAX_EXTRA_DEPTH} levels "
                       f"are refused)") from e
    except ValueError as e:  # NaN / Infinity, or an integer too long to convert
        raise SlmError(f"{source} is not valid JSON: {' '.join(str(e).split())[:160]}") from e


def _show_value(v: Any) -> str:
    """A parsed JSON value, short, for a message (anything json.loads gave back dumps again)."""
    return show(v) if isinstance(v, str) else json.dumps(v)[:40]


def read_lore_bytes(data: bytes, source: str = "the lore file") -> Lorebook:
    """A lore file's bytes (UTF-8, a byte-order mark allowed) to a checked Lorebook."""
    if len(data) > MAX_FILE_BYTES:
        raise SlmError(f"{source} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB: no lorebook is that big")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SlmError(f"{source} is not UTF-8 text (byte {e.start} is not valid UTF-8)") from e
    return lore_from_json(text, source)


def read_lore_file(path: Path) -> Lorebook:
    """Read and check the lore file ``path``; SlmError (exit 2) for anything that is not a regular file of at
    most ``MAX_FILE_BYTES`` holding a valid lorebook. Reads at most one byte past the limit, so a FIFO, a device
    or an endless stream is never read on; opened without blocking, so a FIFO is refused, not waited on."""
    path = Path(path).expanduser()
    return read_lore_bytes(read_file_bytes(path, limit=MAX_FILE_BYTES, what="a lore file (.json)"), str(path))


def write_lore_file(path: Path, book: Lorebook, *, replace: bool = False) -> Path:
    """Write ``book`` as the lore file ``path``, atomically: a regular file only, an existing one replaced only
    with ``replace`` (``engine/atomic.write_regular_file``). Returns the path written."""
    return write_regular_file(Path(path), lore_to_json(book).encode("utf-8"), replace=replace)
