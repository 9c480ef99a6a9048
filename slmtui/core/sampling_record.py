"""What a passage's record says of the settings that drew its tokens (stories.db's ``passages.sampling``, JSON),
and the one way it is described on screen and in an export.

The record is every sampling field as the first token was drawn with it (``Sampling.to_dict``, the stream's
own seed), and, when a setting changed mid-passage (the panel is read before every token), ``"changes"``: a
list of ``{"from_token": k, <field>: <value>, ...}``, each with the fields that differ from the run before,
in force from the passage's token k on. A record written before changes were kept has no ``"changes"``: it
reads as one run, as it always did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from slmtui.core.sampling import FIELDS, Sampling

CHANGES = "changes"
FROM_TOKEN = "from_token"

_DEFAULTS = Sampling().to_dict()
_SHORT = {"temperature": "t", "top_k": "k", "top_p": "p", "min_p": "min-p", "repetition_penalty": "rep",
          "dry_multiplier": "dry", "dry_base": "dry base", "dry_allowed_length": "dry allowed",
          "dry_breakers": "dry breaks", "xtc_threshold": "xtc ≥", "xtc_probability": "xtc", "banned_phrases": "bans",
          "logit_bias": "bias", "max_new_tokens": "length", "stop": "stops", "seed": "seed"}
_ALWAYS = ("temperature", "top_k", "top_p")
"""Shown in every description; the others only where they differ from the default (and the seed last), but for
the length and the stop strings, which say where a passage ended, not how its tokens were drawn."""
_QUIET = ("max_new_tokens", "stop", "seed")


def sampling_record(runs: Sequence[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """The record of a passage drawn in ``runs``: (first token, settings as ``to_dict`` with the seed used),
    in order, one per change; the first run's token is where the stream began."""
    first = dict(runs[0][1])
    changes = []
    previous = runs[0][1]
    for start, values in runs[1:]:
        diff = {k: v for k, v in values.items() if previous.get(k) != v}
        if diff:
            changes.append({FROM_TOKEN: start, **diff})
        previous = values
    if changes:
        first[CHANGES] = changes
    return first


def record_runs(record: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The runs a record holds, each with every setting in force (an old record: one run from token 0)."""
    current = {k: v for k, v in record.items() if k != CHANGES}
    runs = [(0, dict(current))]
    for change in record.get(CHANGES) or ():
        if not isinstance(change, Mapping):
            continue
        current.update({k: v for k, v in change.items() if k != FROM_TOKEN})
        runs.append((int(change.get(FROM_TOKEN, 0)), dict(current)))
    return runs


def _show(name: str, value: Any) -> str:
    short = _SHORT.get(name, name)
    if isinstance(value, (list, tuple)):
        return f"{short} {len(value)}"
    return f"{short} {value:g}" if isinstance(value, float) else f"{short} {value}"


def describe_record(record: Mapping[str, Any] | None) -> str:
    """One line: ``t 0.8 k 40 p 0.95 dry 0.8 seed 5 · from token 38: t 0`` (the settings that changed, from
    the token they applied to, counted from 1 as a reader counts). "" for no record (a passage of the writer's)."""
    if not record:
        return ""
    first = {k: v for k, v in record.items() if k != CHANGES}
    names = [f.name for f in FIELDS if f.name in first]
    shown = [n for n in names if n in _ALWAYS or (n not in _QUIET and first[n] != _DEFAULTS.get(n, first[n]))]
    parts = [" ".join(_show(n, first[n]) for n in shown + (["seed"] if first.get("seed") is not None else []))]
    for change in record.get(CHANGES) or ():
        if isinstance(change, Mapping):
            values = ", ".join(_show(k, v) for k, v in change.items() if k != FROM_TOKEN)
            start = change.get(FROM_TOKEN)
            parts.append(f"from token {start + 1 if isinstance(start, int) else '?'}: {values}")
    return " · ".join(p for p in parts if p)
