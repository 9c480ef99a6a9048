"""The sampling settings, each written once: its type and default (a ``Sampling`` field), its bounds, its help
for ``slmtui generate --help``, its label and hint in the sampling panel, and whether config.toml and presets
hold it.

Everyone reads them from here: a ``Sampling`` checks itself against ``FIELDS`` when it is made (so the engine only
ever sees values in bounds), settings.py reads config.toml's [sampling] and [presets.*] with the same checks (a
value the file accepts is one the engine accepts), the panel draws its fields from ``SETTING_FIELDS`` and the CLI
makes its options from ``FIELDS``. A new setting is one field of ``Sampling`` below, written with ``knob(...)``.

``Sampling`` is frozen: the UI swaps in a new object (``dataclasses.replace``) and the generator reads the current
one before every token, so a change applies to the very next token. No torch here: the engine's
``slmtui/engine/sampling.py`` turns logits into tokens with it.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from slmtui.core.errors import SlmError
from slmtui.core.sampling_lists import (
    banned_phrases_problems,
    dry_breakers_problems,
    format_bias,
    logit_bias_problems,
    parse_bias,
)
from slmtui.core.seeds import SEED_HELP


@dataclass(frozen=True)
class SamplingField:
    """One sampling setting as every reader checks and shows it. Written with ``knob`` beside its ``Sampling``
    field, which gives it its name, type and default."""

    name: str
    kind: type
    """int or float; str for a list of texts (``many``); tuple for a list of (text, number) pairs (``pairs``)."""
    default: Any
    help: str
    """One line for ``--help``: what the setting does (the CLI adds the bounds and the default)."""
    metavar: str
    label: str = ""
    """The panel's label: a word or two, the panel is narrow."""
    hint: str = ""
    """The panel's hint; ``{range}`` stands for ``bounds``."""
    lo: float | None = None
    hi: float | None = None
    above: bool = False
    """``lo`` itself is refused (top-p 0 would keep no token at all)."""
    optional: bool = False
    """None is a value too (the seed's: a fresh one each time)."""
    many: bool = False
    """A tuple of texts (the stop strings), or of (text, number) pairs when ``kind`` is tuple."""
    check: Callable[[Sequence[Any]], list[str]] | None = None
    """A list's own rules (lengths, counts, a pair's bounds): its problems in words, none when it is good."""
    option: str = ""
    """The CLI's option when it is not the name's (``--ban`` for banned_phrases)."""
    group: str = ""
    """The panel's fold the field lives in ("" for the fields always shown): the rules of issue 21 fold away
    so that the panel stays short at 80x24."""
    none: str = ""
    """What None means, for ``--help``'s default."""
    setting: bool = True
    """In config.toml's [sampling] and the panel: one value a person sets, that a new story starts with."""
    preset: bool = True
    """Presets hold it: the character of the writing, not its length or its seed."""

    @property
    def flag(self) -> str:
        """The option of ``slmtui generate``."""
        return self.option or "--" + self.name.replace("_", "-")

    @property
    def pairs(self) -> bool:
        """A list of (text, number) pairs, written ``TEXT=X`` outside a Sampling."""
        return self.many and self.kind is tuple

    @property
    def bounds(self) -> str:
        """The bounds, short: ``0–5``, ``above 0, at most 1``, ``any whole number``; "" for texts."""
        if self.many:
            return ""
        lo, hi = self.lo, self.hi
        if lo is not None and hi is not None:
            return f"above {lo:g}, at most {hi:g}" if self.above else f"{lo:g}–{hi:g}"
        if lo is not None:
            return f"above {lo:g}" if self.above else f"at least {lo:g}"
        if hi is not None:
            return f"at most {hi:g}"
        return "any whole number" if self.kind is int else "any number"

    @property
    def wanted(self) -> str:
        """What a good value is, in words: ``a number from 0 to 5``."""
        if self.pairs:
            return "a list of TEXT=NUMBER entries"
        if self.many:
            return "a list of non-empty texts"
        noun = "a whole number" if self.kind is int else "a number"
        lo, hi = self.lo, self.hi
        if lo is not None and hi is not None:
            return f"{noun} above {lo:g} and at most {hi:g}" if self.above else f"{noun} from {lo:g} to {hi:g}"
        if lo is None and hi is None:
            return noun
        return f"{noun} {self.bounds}"

    @property
    def panel_hint(self) -> str:
        return self.hint.format(range=self.bounds)

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is good. Integers stand for floats, booleans for nothing."""
        if value is None:
            return self.optional
        if self.many:
            return self._list_problem(value) is None
        if isinstance(value, bool) or not isinstance(value, int if self.kind is int else (int, float)):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.above else value < self.lo):
            return False
        return self.hi is None or value <= self.hi

    def _list_problem(self, value: object) -> str | None:
        """What is wrong with a list value, in words (None: good); a pair may be ``TEXT=X`` or (text, number)."""
        if not isinstance(value, (tuple, list)):
            return f"must be {self.wanted}"
        if self.pairs:
            items = []
            for v in value:
                if isinstance(v, str):
                    try:
                        v = parse_bias(v)
                    except SlmError as e:
                        return e.message
                elif not (isinstance(v, (tuple, list)) and len(v) == 2):
                    return f"must be {self.wanted}"
                items.append(tuple(v))
            value = items
        elif not all(isinstance(v, str) and (v or self.check is not None) for v in value):
            return f"must be {self.wanted}"  # an empty text is the check's to name, where there is one
        problems = self.check(value) if self.check is not None else []
        return "; ".join(problems) or None

    def normal(self, value: Any) -> Any:
        """A good ``value`` as ``Sampling`` keeps it: 1 as 1.0 where a float is wanted, a list as a tuple,
        ``TEXT=X`` as (text, float)."""
        if self.pairs:
            return tuple(parse_bias(v) if isinstance(v, str) else (v[0], float(v[1])) for v in value)
        if self.many:
            return tuple(value)
        if self.kind is float and value is not None:
            return float(value)
        return value

    def problem(self, value: object, *, name: str | None = None) -> str | None:
        """What is wrong with ``value``, as a sentence about ``name`` (default: the field's); None if it is good."""
        if self.accepts(value):
            return None
        if self.many and value is not None:
            problem = self._list_problem(value) or ""
            if not problem.startswith("must be "):
                return f"{name or self.name}: {problem}"
        return f"{name or self.name} must be {self.wanted}, got {value!r}"

    def plain(self, value: Any) -> Any:
        """``value`` as config.toml and a passage's JSON record keep it: a list for a tuple, ``TEXT=X`` texts
        for pairs (``normal`` reads both back)."""
        if self.pairs:
            return [format_bias(v) for v in value]
        if self.many:
            return list(value)
        return value


def knob(default: Any, *, help: str, metavar: str, **rest: Any) -> Any:
    """A ``Sampling`` field with its checks and words (``SamplingField``'s other attributes, by keyword), e.g.
    ``xtc_threshold: float = knob(0.1, lo=0, hi=0.5, metavar="P", label="xtc", hint="{range} · ...", help="...")``:
    the engine checks it, config.toml and presets read it, the panel shows it and ``generate`` takes it."""
    return field(default=default, metadata={"knob": dict(help=help, metavar=metavar, **rest)})


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen. ``FIELDS`` says each field's bounds and meaning."""

    temperature: float = knob(
        0.8, lo=0, hi=5, metavar="T", label="temperature", hint="{range} · 0 = always the likeliest token",
        help="divides the logits: 0 always takes the likeliest token, higher is more surprising")
    top_k: int = knob(
        40, lo=0, hi=100_000, metavar="K", label="top-k", hint="{range} · keep the k likeliest · 0 = off",
        help="keep the k likeliest tokens, 0 = off")
    top_p: float = knob(
        0.95, lo=0, hi=1, above=True, metavar="P", label="top-p",
        hint="{range} · likeliest tokens adding up to p · 1 = off",
        help="keep the smallest set of tokens whose probability adds up to P, 1 = off")
    min_p: float = knob(
        0.0, lo=0, hi=1, metavar="P", label="min-p",
        hint="{range} · drop tokens under min-p × the likeliest · 0 = off",
        help="drop tokens less likely than P times the likeliest one, 0 = off")
    repetition_penalty: float = knob(
        1.1, lo=0.5, hi=3, metavar="X", label="repetition", hint="{range} · above 1 avoids repeats · 1 = off",
        help="make tokens already in the text less likely (CTRL's penalty: above 1 penalises), 1 = off")
    max_new_tokens: int = knob(
        120, lo=1, hi=100_000, preset=False, metavar="N", label="length", hint="{range} tokens per continuation",
        help="how many tokens one continuation writes")
    finish_sentence: int = knob(
        0, lo=0, hi=1000, preset=False, metavar="N", label="finish",
        hint="{range} tokens more past the length to end the sentence · 0 = off",
        help="a continuation that reaches its length mid-sentence runs on, at most N tokens more, to the "
             "sentence's end (core/sentences.py says where one ends), 0 = off")
    seed: int | None = knob(
        None, preset=False, metavar="N", label="seed", hint="{range} repeats a continuation · blank = a fresh one",
        none="a fresh one", help=f"same seed, prompt and settings: same text; {SEED_HELP}")
    stop: tuple[str, ...] = knob(
        (), setting=False, preset=False, metavar="TEXT", help="stop once the text written contains TEXT")
    # The rules of slmtui/engine/logit_rules.py (issue 21): what keeps a small model from looping, and what it
    # may not write. DRY and XTC are off at their defaults (a multiplier and a probability of 0).
    dry_multiplier: float = knob(
        0.0, group="rules",
        lo=0, hi=5, metavar="X", label="dry", hint="{range} · punish repeating what was written · 0 = off",
        help="DRY: push down a token that would extend a repeat of earlier text, by X * base ** (length - "
             "allowed); 0 = off, 0.8 the usual on")
    dry_base: float = knob(
        1.75, group="rules",
        lo=1, hi=4, metavar="B", label="dry base", hint="{range} · how fast DRY grows with the repeat",
        help="DRY: how fast the push grows with each further repeated token")
    dry_allowed_length: int = knob(
        2, group="rules", lo=1, hi=20, metavar="N", label="dry allowed", hint="{range} tokens repeat unpunished",
        help="DRY: the longest repeat, in tokens, that goes unpunished")
    dry_breakers: tuple[str, ...] = knob(
        ("\n", ":", '"', "*"), group="rules",
        metavar="TEXT", label="dry breaks", check=dry_breakers_problems, option="--dry-breaker",
        hint="texts, comma between · a token holding one ends a repeat",
        help="DRY: a token containing TEXT ends a repeat and is never punished; given, they replace the "
             "default newline, colon, quote and asterisk")
    xtc_threshold: float = knob(
        0.1, group="rules",
        lo=0, hi=0.5, metavar="P", label="xtc thresh", hint="{range} · a token this likely is a top choice",
        help="XTC: a token at least P likely is a top choice")
    xtc_probability: float = knob(
        0.0, group="rules", lo=0, hi=1, metavar="P", label="xtc chance",
        hint="{range} · chance per token of dropping all top choices but the last · 0 = off",
        help="XTC: the chance per token that every top choice but the least likely is removed; 0 = off, "
             "0.5 the usual on")
    banned_phrases: tuple[str, ...] = knob(
        (), group="rules", preset=False, metavar="TEXT", label="banned", check=banned_phrases_problems, option="--ban",
        hint="words or phrases never written (any case, whole words) · comma between",
        help="a word or phrase the model never writes (any case, whole words)")
    logit_bias: tuple[tuple[str, float], ...] = knob(
        (), group="rules", preset=False, metavar="TEXT=X", label="bias", check=logit_bias_problems, option="--bias",
        hint="word=X, comma between · X from -100 (away) to 100 (toward)",
        help="push the story toward a word (X up to 100) or away from it (down to -100)")

    def __post_init__(self) -> None:
        problems = []
        for f in FIELDS:
            value = getattr(self, f.name)
            problem = f.problem(value)
            if problem:
                problems.append(problem)
            else:
                object.__setattr__(self, f.name, f.normal(value))
        if problems:
            raise SlmError("; ".join(problems))

    def to_dict(self) -> dict[str, object]:
        """Every field, as JSON and TOML hold them (``FIELDS[...].plain``); ``from_dict`` reads it back."""
        d = asdict(self)
        for f in FIELDS:
            d[f.name] = f.plain(getattr(self, f.name))
        return d

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Sampling:
        unknown = sorted(set(data) - {f.name for f in FIELDS})
        if unknown:
            raise SlmError(f"unknown sampling settings: {', '.join(unknown)}")
        return cls(**data)  # type: ignore[arg-type]


def _kind(hint: object) -> tuple[type, bool, bool]:
    """(kind, optional, many) of a field's type: ``float``, ``int | None``, ``tuple[str, ...]``."""
    if isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return inner, True, False
    if typing.get_origin(hint) is tuple:
        inner = typing.get_args(hint)[0]
        return (tuple if typing.get_origin(inner) is tuple else inner), False, True
    assert hint in (int, float), f"a sampling field is a number, an optional number or a tuple of texts: {hint}"
    return hint, False, False  # type: ignore[return-value]


def _table() -> tuple[SamplingField, ...]:
    hints = typing.get_type_hints(Sampling)
    out = []
    for f in fields(Sampling):
        kind, optional, many = _kind(hints[f.name])
        out.append(SamplingField(name=f.name, kind=kind, default=f.default, optional=optional, many=many,
                                 **f.metadata["knob"]))
    return tuple(out)


FIELDS: tuple[SamplingField, ...] = _table()
"""Every field of ``Sampling``, in order: the engine's checks and the CLI's options."""
SETTING_FIELDS: tuple[SamplingField, ...] = tuple(f for f in FIELDS if f.setting)
"""The settings a person sets one by one: the panel's fields and config.toml's [sampling] (stop strings are a list
and travel apart)."""
PRESET_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.preset)
"""What a preset holds: the character of the sampling, not the length or the seed."""


def _preset(**values: object) -> dict[str, object]:
    """A built-in preset: these values, and the default for every other preset field."""
    assert set(values) <= set(PRESET_FIELDS), set(values) - set(PRESET_FIELDS)
    return {f.name: values.get(f.name, f.default) for f in FIELDS if f.preset}


BUILTIN_PRESETS: dict[str, dict[str, object]] = {
    # DRY 0.8 where the bench saw loops (tests/bench/bench_repetition.py, README "Keeping the story on track"):
    # at faithful's temperature 0.5 it cut repeated 4-grams 0.0076 -> 0.0008 for +0.009 bits per byte; at
    # balanced's 0.8 with penalty 1.1 there was nothing to cut (0.0002), so balanced keeps the defaults.
    "faithful": _preset(temperature=0.5, top_k=20, top_p=0.9, min_p=0.05, repetition_penalty=1.15,
                        dry_multiplier=0.8),
    "balanced": _preset(),  # the defaults: a new story starts balanced
    "wild": _preset(temperature=1.2, top_k=0, top_p=1.0, min_p=0.02, repetition_penalty=1.05),
}
"""Presets set the character of the writing (``PRESET_FIELDS``); length and seed stay as they are."""
