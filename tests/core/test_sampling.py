"""The one table of sampling fields: each field's bounds, checked alike by a Sampling (what the engine runs with)
and by config.toml's [sampling] and presets, at the edges, just outside them and with the wrong types."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from slmtui.core.sampling import BUILTIN_PRESETS, FIELDS, PRESET_FIELDS, SETTING_FIELDS, Sampling, SamplingField
from slmtui.core.errors import SlmError
from slmtui.settings import load_settings


def candidates(f: SamplingField) -> list[object]:
    """Values at the field's edges and just past them, its default, and values of the wrong type."""
    if f.many:
        return [(), ("a",), ["a", "b c"], ("",), ("a", ""), ("a", 1), "a", 1, None, True]
    values: list[object] = [f.default, "1", True, False, [1], None, float("nan"), float("inf"), float("-inf")]
    step = (lambda x, d: x + d) if f.kind is int else (lambda x, d: math.nextafter(x, d * math.inf))
    for edge, outward in ((f.lo, -1), (f.hi, 1)):
        if edge is not None:
            values += [f.kind(edge), step(f.kind(edge), outward), step(f.kind(edge), -outward)]
    if f.kind is int:
        values += [float(f.default if f.default is not None else 7), 2.5, 2**64, -(2**63)]
    else:
        values += [int(f.hi if f.hi is not None else 1)]  # an integer stands for a float
    return values


def engine_takes(name: str, value: object) -> object:
    """The value a Sampling keeps, or SlmError's class if it refuses it."""
    try:
        return getattr(Sampling(**{name: value}), name)  # type: ignore[arg-type]
    except SlmError as e:
        assert name in str(e) and e.exit_code == 2
        return SlmError


def settings_take(name: str, value: object, path: Path) -> object:
    """The value config.toml's [sampling] and a preset keep, or SlmError's class if they refuse it (one problem
    each, naming the key; the rest of the file still applies)."""
    path.write_text(tomli_w.dumps({"theme": "nord", "sampling": {name: value}, "presets": {"p": {name: value}}}))
    result = load_settings(path)
    assert result.writable and result.settings.theme == "nord"
    if not result.problems:
        kept = getattr(result.settings.sampling, name)
        assert result.settings.presets["p"] == {name: kept}
        return kept
    assert [p.split(": ")[1] for p in result.problems] == [f"sampling.{name}", f"presets.p.{name}"], result.problems
    assert getattr(result.settings.sampling, name) == getattr(Sampling(), name)  # the default, that value alone
    assert result.settings.presets["p"] == {}
    return SlmError


def same(a: object, b: object) -> bool:
    return type(a) is type(b) and (a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)))


@pytest.mark.parametrize("f", FIELDS, ids=lambda f: f.name)
def test_the_settings_file_accepts_exactly_what_the_engine_accepts(f: SamplingField, tmp_path: Path) -> None:
    took_any = refused_any = False
    for value in candidates(f):
        engine = engine_takes(f.name, value)
        assert (engine is not SlmError) == f.accepts(value), (f.name, value)
        took_any |= engine is not SlmError
        refused_any |= engine is SlmError
        if engine is not SlmError and f.kind is float and value is not None:
            assert type(engine) is float  # 1 is kept as 1.0
        if not f.setting:
            continue
        if value is None:  # TOML has no null: None is a setting left out, which is the default
            assert engine is SlmError or f.optional
            continue
        assert same(settings_take(f.name, value, tmp_path / "config.toml"), engine), (f.name, value)
    assert took_any and refused_any


@pytest.mark.parametrize("f", [f for f in FIELDS if f.lo is not None or f.hi is not None], ids=lambda f: f.name)
def test_bounds_are_inclusive_except_where_marked(f: SamplingField) -> None:
    for edge, outward in ((f.lo, -1), (f.hi, 1)):
        if edge is None:
            continue
        inside = f.kind(edge)
        outside = inside + outward if f.kind is int else math.nextafter(inside, outward * math.inf)
        assert f.accepts(inside) != (f.above and edge == f.lo), (f.name, inside)
        assert not f.accepts(outside), (f.name, outside)


def test_fields_not_in_the_settings_file_are_refused_there(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    for f in FIELDS:
        if not f.setting:
            path.write_text(tomli_w.dumps({"sampling": {f.name: ["x"]}}))
            [problem] = load_settings(path).problems
            assert f"sampling.{f.name}: unknown sampling setting" in problem


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"temperature": -0.1}, "temperature must be a number from 0 to 5, got -0.1"),
        ({"temperature": 5.5}, "temperature must be a number from 0 to 5, got 5.5"),
        ({"temperature": float("nan")}, "temperature must be a number from 0 to 5, got nan"),
        ({"temperature": "hot"}, "temperature must be a number from 0 to 5, got 'hot'"),
        ({"top_k": -1}, "top_k must be a whole number from 0 to 100000, got -1"),
        ({"top_k": 2.5}, "top_k must be a whole number from 0 to 100000, got 2.5"),
        ({"top_k": 40.0}, "top_k must be a whole number from 0 to 100000, got 40.0"),
        ({"top_p": 0.0}, "top_p must be a number above 0 and at most 1, got 0.0"),
        ({"top_p": 1.5}, "top_p must be a number above 0 and at most 1, got 1.5"),
        ({"min_p": -0.5}, "min_p must be a number from 0 to 1, got -0.5"),
        ({"repetition_penalty": 0.0}, "repetition_penalty must be a number from 0.5 to 3, got 0.0"),
        ({"repetition_penalty": 0.4}, "repetition_penalty must be a number from 0.5 to 3, got 0.4"),
        ({"max_new_tokens": 0}, "max_new_tokens must be a whole number from 1 to 100000, got 0"),
        ({"max_new_tokens": True}, "max_new_tokens must be a whole number from 1 to 100000, got True"),
        ({"seed": 1.5}, "seed must be a whole number, got 1.5"),
        ({"seed": True}, "seed must be a whole number, got True"),
        ({"stop": ("",)}, "stop must be a list of non-empty texts, got ('',)"),
    ],
)
def test_impossible_settings_raise_a_clear_error(changes: dict[str, object], message: str) -> None:
    with pytest.raises(SlmError) as e:
        Sampling(**changes)  # type: ignore[arg-type]
    assert message in str(e.value)
    assert e.value.exit_code == 2


def test_several_problems_are_reported_together() -> None:
    with pytest.raises(SlmError) as e:
        Sampling(temperature=9, top_k=-1)
    assert "temperature" in str(e.value) and "top_k" in str(e.value)


def test_to_dict_round_trips_and_rejects_unknown_settings() -> None:
    s = Sampling(temperature=0.3, top_k=5, stop=["\n\n", "THE END"], seed=7)  # type: ignore[arg-type]
    assert s.stop == ("\n\n", "THE END")
    assert Sampling.from_dict(s.to_dict()) == s
    with pytest.raises(SlmError, match="unknown sampling settings: temp"):
        Sampling.from_dict({"temp": 1.0})


def test_the_table_is_sampling_field_by_field() -> None:
    assert tuple(f.name for f in FIELDS) == tuple(f.name for f in dataclasses.fields(Sampling))
    defaults = Sampling()
    for f in FIELDS:
        assert f.default == getattr(defaults, f.name) and f.accepts(f.default), f.name
        assert f.help and f.metavar and "%" not in f.help, f.name  # argparse formats help with %
        if f.setting:
            assert f.label and f.bounds in f.panel_hint, f.name
    assert [f.name for f in SETTING_FIELDS] == [n for n in (f.name for f in FIELDS) if n != "stop"]
    assert {"seed", "max_new_tokens", "stop"}.isdisjoint(PRESET_FIELDS)
    assert dataclasses.replace(defaults, top_k=7).top_k == 7


def test_builtin_presets_hold_every_preset_field_in_bounds() -> None:
    for name, values in BUILTIN_PRESETS.items():
        assert set(values) == set(PRESET_FIELDS), name
        Sampling(**values)  # type: ignore[arg-type]  # in bounds, or SlmError
    assert BUILTIN_PRESETS["balanced"] == {n: getattr(Sampling(), n) for n in PRESET_FIELDS}
    assert len({tuple(v.items()) for v in BUILTIN_PRESETS.values()}) == len(BUILTIN_PRESETS)


@pytest.mark.parametrize("first", ["slmtui.core.sampling", "slmtui.settings", "slmtui.engine"])
def test_each_reader_may_be_imported_first(first: str) -> None:
    """No import loop between the table and the engine, whichever a program imports first."""
    code = f"import {first}, slmtui.core.sampling, slmtui.engine.generate, slmtui.engine.remote, slmtui.cli"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
