"""A lorebook's entries and their keys: what an entry holds, what a key matches, and the limits on both.

An entry (``LoreEntry``) is a title, keys, the text to put in the model's context, and two switches. What
makes an entry enter the context is ``slmtui/writing/lore.py``; how a lorebook is written as JSON is
``slmtui/stories/lore_json.py``. Both build on the rules here, so an entry that exists is a valid one: the
constructor checks every field and raises ``LoreError`` (one line naming the entry and the field).

Keys. A key is a word or a phrase, matched case-insensitively as whole words: "Ann" matches "Ann", "ANN," and
"Ann's" but not "Annual" or "Joann"; a phrase's words match across any run of white space (a line break
included), and a straight apostrophe in a key also matches a curly one. A key written ``/.../`` is a regular
expression (the ``regex`` module's syntax, which is Python's ``re`` and more), matched as written:
case-sensitive unless flagged ``/.../i`` (a writer who reaches for a regex wants control, e.g. "Will" the
name but not "will"), with ``m`` and ``s`` as in Python. Refused, so that no key fires on every text:

- a blank key, and a regex that matches an empty string (``//``, ``/.*/``, ``/^/``, ``/\\b/``, ``/a*/``,
  ``/(?=a)/``): judged on short probe texts, and a zero-length match is never counted anyway, so a rarer
  pattern that slips past the probes still needs real characters to fire;
- a regex that matches any single character (``/./``, ``/[\\s\\S]/``): it matches every text there is.

A catastrophic regex (``/(a|aa)+$/``) cannot freeze the app: every regex search runs under ``MATCH_TIMEOUT_S``
(the ``regex`` module's timeout), and one that runs out is reported and skipped (``writing/lore.py``).
"""

from __future__ import annotations

import copy
import math
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import regex

from slmtui.core.errors import SlmError

# Limits, each far above a real world's needs and sized so the worst case stays quick. With every one at its
# maximum (tests/writing/test_lore.py::test_worst_case_is_quick, on a busy 2-core machine): building the 256
# entries compiles their 4096 keys in 0.8 s (once: keys are cached), a 4096-token scan with half of them
# cascading takes 0.6 s to activate with no budget, and 0.1 s to fit (a budget bounds the texts searched).
MAX_ENTRIES = 256
"""Entries in one lorebook: "dozens of characters and places" with room to spare; every key is searched in the
scanned story on each activation, so this bounds its cost."""
MAX_KEYS = 16
"""Keys of one entry: a name, its nicknames and spellings."""
MAX_KEY_CHARS = 100
"""Characters of one key: a long phrase or a regex."""
MAX_TITLE_CHARS = 100
"""Characters of a title, which is one line."""
MAX_TEXT_CHARS = 2000
"""Characters of an entry's text: about 500 tokens, already twice the default model's whole context."""
MAX_EXTRA_DEPTH = 16
"""Nesting of an unknown field's value (kept on a round trip, never read): deeper is no lorebook's data."""

MATCH_TIMEOUT_S = 0.1
"""How long one regex key may search one text. A sound pattern takes microseconds on the longest scanned story
(tens of thousands of characters); only backtracking without end comes near this."""
REGEX_FLAGS: dict[str, int] = {"i": regex.IGNORECASE | regex.FULLCASE, "m": regex.MULTILINE, "s": regex.DOTALL}
"""The flags a ``/.../flags`` key may carry."""

ENTRY_FIELDS = ("title", "keys", "text", "enabled", "always")
"""The fields an entry has; every other field of an entry's JSON object is kept in ``extra``."""
BOOK_FIELDS = ("format", "version", "entries")
"""The top-level fields of a lorebook's JSON; every other one is kept in ``Lorebook.extra``."""

_WORD_FLAGS = regex.IGNORECASE | regex.FULLCASE | regex.V0
_REGEX_KEY = regex.compile(r"/(.*)/([A-Za-z]*)", regex.DOTALL)
# Keys are compiled with cache_pattern=False: parse_key caches them itself, and the regex module's own cache,
# once full, evicts with the global ``random`` module, which no lorebook should disturb.
# A key that matches an empty string fires everywhere; one that matches in each of these single characters
# fires on any text. The probes hold a word, a name, its possessive, punctuation, digits and a line break.
_EMPTY_PROBES = ("", " ", "a", "\n", "Ann's ANN, Annual. 0_9 -", "é")
_ANY_CHAR_PROBES = ("a", "Z", "0", ".", " ")


class LoreError(SlmError):
    """A lore entry that cannot be: which entry (``title``), which field (``where``, e.g. ``keys[1] "/(/"``)
    and what is wrong (``problem``). ``lore_json`` says the same with the file and the entry's place."""

    def __init__(self, title: str, where: str, problem: str) -> None:
        self.title = title
        self.where = where
        self.problem = problem
        name = f" {show(title)}" if isinstance(title, str) and title.strip() else ""
        super().__init__(f"lore entry{name}: {where} {problem}", exit_code=2)


class KeyProblem(ValueError):
    """Why a key is refused (a sentence without the key itself); ``LoreEntry`` turns it into a ``LoreError``."""


@dataclass(frozen=True)
class LoreKey:
    """One key, compiled: ``written`` as the entry has it, ``pattern`` what searches for it."""

    written: str
    pattern: regex.Pattern[str]
    is_regex: bool

    def spans(self, text: str, pos: int = 0) -> Iterator[tuple[int, int]]:
        """Where the key occurs in ``text`` at or after ``pos`` (the text before ``pos`` still counts for a
        word's boundary: a scan that starts inside "Joann" does not find "Ann"). Zero-length matches never
        count. A regex search that runs past ``MATCH_TIMEOUT_S`` raises ``TimeoutError``."""
        timeout = MATCH_TIMEOUT_S if self.is_regex else None
        for m in self.pattern.finditer(text, pos, timeout=timeout):
            if m.end() > m.start():
                yield m.span()


@lru_cache(maxsize=8192)
def parse_key(key: str) -> LoreKey:
    """Compile a key (cached: activation asks for the same keys again and again). Raises ``KeyProblem``."""
    if not isinstance(key, str):
        raise KeyProblem("is not a string")
    if not key.strip():
        raise KeyProblem("is blank: it would match everywhere")
    if len(key) > MAX_KEY_CHARS:
        raise KeyProblem(f"is {len(key)} characters long; a key holds at most {MAX_KEY_CHARS}")
    if _has_lone_surrogate(key):
        raise KeyProblem("holds a lone surrogate (half of a UTF-16 pair), which is no character")
    if any(unicodedata.category(c) == "Cc" and not c.isspace() for c in key):
        raise KeyProblem("holds a control character; a key is plain text")
    m = _REGEX_KEY.fullmatch(key.strip())
    if m is None:
        return LoreKey(key, regex.compile(_word_pattern(key), _WORD_FLAGS, cache_pattern=False), is_regex=False)
    source, letters = m.group(1), m.group(2)
    flags = regex.V0
    for letter in letters:
        if letter not in REGEX_FLAGS:
            raise KeyProblem(f"has the flag {letter!r}; a regex key may carry {', '.join(REGEX_FLAGS)}")
        flags |= REGEX_FLAGS[letter]
    try:
        pattern = regex.compile(source, flags, cache_pattern=False)
    except (regex.error, OverflowError, RecursionError) as e:
        raise KeyProblem(f"is not a valid regular expression: {' '.join(str(e).split())}") from e
    try:
        if any(m.end() == m.start() for probe in _EMPTY_PROBES
               for m in pattern.finditer(probe, timeout=MATCH_TIMEOUT_S)):
            raise KeyProblem("matches an empty string, so it would match everywhere")
        if all(pattern.search(probe, timeout=MATCH_TIMEOUT_S) for probe in _ANY_CHAR_PROBES):
            raise KeyProblem("matches any single character, so it would match every text")
    except TimeoutError as e:
        raise KeyProblem("takes too long even on a few characters of text") from e
    return LoreKey(key, pattern, is_regex=True)


def _word_pattern(key: str) -> str:
    """Whole words: no word character right before or after, any white space between the phrase's words."""
    words = [regex.escape(w).replace("'", "['\u2019]") for w in key.split()]
    return r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)"


@dataclass(frozen=True)
class LoreEntry:
    """One entry of a lorebook. Frozen (the UI thread and a worker may hold the same one); the constructor
    checks every field, so an entry that exists is valid and its keys compile.

    ``extra`` holds the fields of the entry's JSON object that this version does not know, kept so a round
    trip loses nothing; it is the entry's own copy (taken when built), to be read, not changed."""

    title: str
    """The entry's name, one line: shown in the lorebook, the context viewer and every message about it."""
    keys: tuple[str, ...] = ()
    """As written: words or phrases, or ``/regex/flags`` (module docstring). An entry without keys enters the
    context only when ``always`` is set."""
    text: str = ""
    """What the model reads when the entry is active."""
    enabled: bool = True
    """Off: never active, whatever its keys (the entry is kept)."""
    always: bool = False
    """On: active whenever it is enabled, keys or not."""
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if isinstance(self.keys, list):
            object.__setattr__(self, "keys", tuple(self.keys))
        object.__setattr__(self, "extra", copy.deepcopy(self.extra) if isinstance(self.extra, dict) else self.extra)
        check_entry(self)

    @property
    def compiled_keys(self) -> tuple[LoreKey, ...]:
        return tuple(parse_key(k) for k in self.keys)


def check_entry(entry: LoreEntry) -> None:
    """Every rule on one entry; raises ``LoreError`` naming the first field that breaks one."""
    title = entry.title

    def fail(where: str, problem: str) -> None:
        raise LoreError(title if isinstance(title, str) else "", where, problem)

    if not isinstance(title, str):
        fail("title", "is not a string")
    if not title.strip():
        fail("title", "is blank")
    if len(title) > MAX_TITLE_CHARS:
        fail("title", f"is {len(title)} characters long; a title holds at most {MAX_TITLE_CHARS}")
    if "\n" in title or "\r" in title:
        fail("title", "holds a line break; a title is one line")
    if _has_lone_surrogate(title):
        fail("title", "holds a lone surrogate (half of a UTF-16 pair), which is no character")
    if not isinstance(entry.keys, tuple):
        fail("keys", "is not a list")
    if len(entry.keys) > MAX_KEYS:
        fail("keys", f"has {len(entry.keys)} keys; an entry has at most {MAX_KEYS}")
    for i, key in enumerate(entry.keys):
        try:
            parse_key(key)
        except KeyProblem as e:
            fail(f"keys[{i}]" + (f" {show(key)}" if isinstance(key, str) else ""), str(e))
    if not isinstance(entry.text, str):
        fail("text", "is not a string")
    if len(entry.text) > MAX_TEXT_CHARS:
        fail("text", f"is {len(entry.text)} characters long; an entry's text holds at most {MAX_TEXT_CHARS}")
    if _has_lone_surrogate(entry.text):
        fail("text", "holds a lone surrogate (half of a UTF-16 pair), which is no character")
    for name in ("enabled", "always"):
        if not isinstance(getattr(entry, name), bool):
            fail(name, "is not true or false")
    if not isinstance(entry.extra, dict):
        fail("extra", "is not a mapping")
    for name, value in entry.extra.items():
        if name in ENTRY_FIELDS:
            fail(show(name), "is a known field, not an unknown one")
        problem = json_value_problem(value, name)
        if problem:
            fail(*problem)


def json_value_problem(value: Any, where: str, depth: int = 1) -> tuple[str, str] | None:
    """Why ``value`` (an unknown field's, ``where`` naming it) cannot be written back as the same JSON, as
    (where, problem); None when it can. Iterative, so no nesting overflows Python's stack."""
    stack: list[tuple[Any, str, int]] = [(value, where, depth)]
    while stack:
        v, at, d = stack.pop()
        if d > MAX_EXTRA_DEPTH:
            return at, f"is nested more than {MAX_EXTRA_DEPTH} levels deep"
        if isinstance(v, str):
            if _has_lone_surrogate(v):
                return at, "holds a lone surrogate (half of a UTF-16 pair), which is no character"
        elif isinstance(v, float):
            if not math.isfinite(v):
                return at, f"is {v}, which JSON cannot hold"
        elif v is None or isinstance(v, (bool, int)):
            pass
        elif isinstance(v, list):
            stack.extend((item, f"{at}[{i}]", d + 1) for i, item in enumerate(v))
        elif isinstance(v, dict):
            for k, item in v.items():
                if not isinstance(k, str):
                    return at, f"has the field name {k!r}, which is not a string"
                if _has_lone_surrogate(k):
                    return at, "has a field name with a lone surrogate (half of a UTF-16 pair)"
                stack.append((item, f"{at}.{k}", d + 1))
        else:
            return at, f"is a {type(v).__name__}, which JSON cannot hold"
    return None


@dataclass(frozen=True)
class Lorebook:
    """A world's entries, in the writer's order (the order decides who gets in first when the budget is short,
    and the order entries are read in: ``writing/lore.py``), and the unknown top-level fields of its JSON."""

    entries: tuple[LoreEntry, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if isinstance(self.entries, list):
            object.__setattr__(self, "entries", tuple(self.entries))
        if not all(isinstance(e, LoreEntry) for e in self.entries):
            raise TypeError("a Lorebook holds LoreEntry objects")
        if len(self.entries) > MAX_ENTRIES:
            raise SlmError(f"the lorebook has {len(self.entries)} entries; one holds at most {MAX_ENTRIES}")
        object.__setattr__(self, "extra", copy.deepcopy(self.extra))
        for name, value in self.extra.items():
            if name in BOOK_FIELDS:
                raise SlmError(f"the lorebook's extra fields hold {show(name)}, a known field")
            problem = json_value_problem(value, name)
            if problem:
                raise SlmError(f"the lorebook's field {problem[0]} {problem[1]}")


def show(text: str, limit: int = 40) -> str:
    """A string quoted for a one-line message: line breaks and lone surrogates escaped, cut to ``limit``."""
    t = text.encode("utf-8", "backslashreplace").decode("utf-8")
    t = t.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return '"' + (t if len(t) <= limit else t[: limit - 1] + "…") + '"'


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False

