"""The list-valued sampling settings (DRY's sequence breakers, banned phrases, logit biases): their limits, the
checks every reader runs on them, and the one way they are written as text (the panel's box, config.toml's
``TEXT=X`` biases, the CLI's ``--bias``). Torch-free, so the table in slmtui/core/sampling.py can use them; the
engine's slmtui/engine/logit_rules.py checks with the same functions before it builds anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from slmtui.core.errors import SlmError

MAX_BREAKERS = 16
MAX_BREAKER_CHARS = 16
MAX_BANNED_PHRASES = 100
MAX_PHRASE_CHARS = 80
MAX_BIAS_ENTRIES = 100
BIAS_LIMIT = 100.0
"""A bias lies in [-BIAS_LIMIT, BIAS_LIMIT]; -100 all but bans a token (logits span ~20)."""


def encodes(text: str) -> bool:
    """Whether ``text`` is writable as UTF-8 (a lone surrogate is not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def dry_breakers_problems(breakers: Sequence[str]) -> list[str]:
    if len(breakers) > MAX_BREAKERS:
        return [f"at most {MAX_BREAKERS} DRY sequence breakers, got {len(breakers)}"]
    return [f"a DRY sequence breaker must be 1 to {MAX_BREAKER_CHARS} characters, got {b!r}"
            for b in breakers if not isinstance(b, str) or not 0 < len(b) <= MAX_BREAKER_CHARS or not encodes(b)]


def banned_phrases_problems(phrases: Sequence[str]) -> list[str]:
    if len(phrases) > MAX_BANNED_PHRASES:
        return [f"at most {MAX_BANNED_PHRASES} banned phrases, got {len(phrases)}"]
    return [f"a banned phrase must be 1 to {MAX_PHRASE_CHARS} characters, got {p!r}"
            for p in phrases if not isinstance(p, str) or not 0 < len(p) <= MAX_PHRASE_CHARS or not encodes(p)]


def logit_bias_problems(entries: Sequence[tuple[str, float]]) -> list[str]:
    if len(entries) > MAX_BIAS_ENTRIES:
        return [f"at most {MAX_BIAS_ENTRIES} logit biases, got {len(entries)}"]
    out = []
    for entry in entries:
        text, value = entry if isinstance(entry, (tuple, list)) and len(entry) == 2 else (None, None)
        if not isinstance(text, str) or not 0 < len(text) <= MAX_PHRASE_CHARS or not encodes(text):
            out.append(f"a logit bias needs a word of 1 to {MAX_PHRASE_CHARS} characters, got {entry!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not -BIAS_LIMIT <= value <= BIAS_LIMIT:
            out.append(f"the bias of {text!r} must be a number from {-BIAS_LIMIT:g} to {BIAS_LIMIT:g}, got {value!r}")
    return out


def parse_bias(arg: str) -> tuple[str, float]:
    """``TEXT=X`` (the CLI's ``--bias``, config.toml, the panel) as (text, bias); the last ``=`` splits, so the
    text may hold one. SlmError in words when it is not one."""
    text, sep, value = arg.rpartition("=")
    try:
        bias = float(value)
    except ValueError:
        bias = math.nan
    if not sep or not text or not math.isfinite(bias):
        raise SlmError(f"a logit bias is TEXT=NUMBER (e.g. dragon=5), got {arg!r}")
    problems = logit_bias_problems([(text, bias)])
    if problems:
        raise SlmError(problems[0])
    return text, bias


def format_bias(entry: tuple[str, float]) -> str:
    """(text, bias) as ``TEXT=X``, what ``parse_bias`` reads back."""
    return f"{entry[0]}={entry[1]:g}"


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", ",": "\\,"}
_UNESCAPES = {"\\": "\\", "n": "\n", "t": "\t", ",": ","}


def format_list(items: Sequence[str]) -> str:
    """A list of texts in one line (the panel's box): ", " between items; a comma, a backslash, a newline or a
    tab inside an item written ``\\,`` ``\\\\`` ``\\n`` ``\\t``. ``parse_list`` reads it back."""
    return ", ".join("".join(_ESCAPES.get(ch, ch) for ch in item) for item in items)


def parse_list(text: str) -> tuple[str, ...]:
    """``format_list``'s line as its items: split at each comma not escaped, spaces around an item dropped
    (an escaped character is kept as it is, so ``\\n`` alone is a newline), empty items dropped."""
    items: list[str] = []
    current: list[tuple[str, bool]] = []  # (character, escaped)
    i = 0
    while i <= len(text):
        ch = text[i] if i < len(text) else ","
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            current.append((_UNESCAPES.get(nxt, "\\" + nxt), True))
            i += 2
            continue
        if ch == ",":
            while current and not current[0][1] and current[0][0].isspace():
                current.pop(0)
            while current and not current[-1][1] and current[-1][0].isspace():
                current.pop()
            if current:
                items.append("".join(c for c, _ in current))
            current = []
        else:
            current.append((ch, False))
        i += 1
    return tuple(items)
