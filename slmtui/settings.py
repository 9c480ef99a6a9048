"""The user's settings: ``Settings`` <-> ``config.toml`` (tomllib reads; tomlkit writes, atomically, changing only
the values that changed, so the user's comments and unknown keys survive).

Loading never fails: a missing file means defaults; a file with a syntax error means defaults plus a problem
naming the line, and that file is then never written over (``save_settings`` re-parses what is on disk and
refuses), so a typo cannot cost the user the rest of their settings. A value of the wrong type or out of range
falls back to its default alone, with a problem naming the key; everything else in the file still applies.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit

from slmtui.core import paths
from slmtui.core.atomic import write_text_atomic
from slmtui.core.errors import SlmError
from slmtui.core.sampling import SETTING_FIELDS, Sampling
from slmtui.writing import MAX_CHOICES
from slmtui.writing.lore import LORE_LIMITS, LoreSettings


@dataclass(frozen=True)
class Settings:
    """Everything config.toml holds. Frozen: the app swaps in a new one with ``dataclasses.replace``."""

    theme: str = "textual-dark"
    """The Textual theme the app opens with (the theme picker remembers its choice here)."""
    model: str | None = None
    """The model in use: a model name from the models folder or a path to a model folder. None: the bundled one."""
    sampling: Sampling = field(default_factory=Sampling)
    """The sampling panel's starting values: its ``SETTING_FIELDS`` (slmtui/core/sampling.py says what each means)."""
    choices: int = 1
    """How many continuations one generation writes side by side (1..MAX_CHOICES): the loom way, pick the best."""
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The user's own sampling presets: name -> some or all of the ``sampling`` keys."""
    keys: dict[str, str] = field(default_factory=dict)
    """Key-binding overrides: action name (e.g. ``generate``) -> key (e.g. ``ctrl+g``)."""
    prob_colours: bool = False
    """Whether the story colours the tokens the model found unlikely (f3 toggles it; the choice is kept)."""
    lore: LoreSettings = field(default_factory=LoreSettings)
    """How the lorebook's entries are found and how much of the context they may fill (config.toml's [lore])."""


@dataclass(frozen=True)
class LoadResult:
    """What ``load_settings`` found: settings to use, and what was wrong with the file, in words."""

    settings: Settings
    problems: list[str]
    path: Path
    writable: bool
    """False when the file could not be parsed: it holds the user's text, so the app must not save over it
    (``save_settings`` refuses anyway); show ``problems`` and let the user fix it."""


_SAMPLING_SETTINGS = {f.name: f for f in SETTING_FIELDS}
"""config.toml's [sampling] and presets: each value checked as the engine checks it."""

_HEADER = "# slmtui settings. The app updates values here in place: your comments and other keys are kept.\n\n"
_KEY_PART = r"\"(?:[^\"\\]|\\.)*\"|'[^']*'|[A-Za-z0-9_-]+"  # a bare or quoted key, as TOML spells it
_BARE_OR_QUOTED = re.compile(r"\"((?:[^\"\\]|\\.)*)\"|'([^']*)'|([A-Za-z0-9_-]+)")
_TABLE_LINE = re.compile(r"\[\[?([^\]]+)\]\]?\s*(?:#.*)?$")
_KEY_LINE = re.compile(rf"((?:{_KEY_PART})(?:\s*\.\s*(?:{_KEY_PART}))*)\s*=")


def _split_key(key: str) -> tuple[str, ...]:
    return tuple(a or b or c for a, b, c in _BARE_OR_QUOTED.findall(key))


def _find_line(text: str, key: tuple[str, ...]) -> int | None:
    """The line where ``key`` is set, by a simple scan of table headers and ``key =`` lines (enough for the
    files people write; multi-line strings may fool it). Falls back to the nearest enclosing table's line."""
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if m := _TABLE_LINE.match(line):
            table = _split_key(m.group(1))
            found.setdefault(table, n)
        elif m := _KEY_LINE.match(line):
            found.setdefault(table + _split_key(m.group(1)), n)
    for end in range(len(key), 0, -1):
        if key[:end] in found:
            return found[key[:end]]
    return None


class _Report:
    """Collects problems as ``<file> line <n>: <key>: <what>``."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text
        self.problems: list[str] = []

    def bad(self, key: tuple[str, ...], what: str) -> None:
        line = _find_line(self.text, key)
        where = f"{self.path} line {line}" if line else str(self.path)
        self.problems.append(f"{where}: {'.'.join(key)}: {what}")


def _check_sampling(table: Any, key: tuple[str, ...], report: _Report) -> dict[str, Any]:
    """The valid sampling values in ``table``; each invalid or unknown one is reported and left out."""
    if not isinstance(table, dict):
        report.bad(key, "should be a table of sampling values; ignored")
        return {}
    good: dict[str, Any] = {}
    for name, value in table.items():
        spec = _SAMPLING_SETTINGS.get(name)
        if spec is None:
            report.bad((*key, name), f"unknown sampling setting (known: {', '.join(_SAMPLING_SETTINGS)}); ignored")
        elif spec.accepts(value):
            good[name] = spec.normal(value)  # 1 -> 1.0 where a float is wanted, "dragon=5" -> ("dragon", 5.0)
        elif spec.many and isinstance(value, list) and (problem := spec.problem(value)):
            report.bad((*key, name), f"{problem.removeprefix(name + ': ')}; using the default")
        else:
            report.bad((*key, name), f"should be {spec.wanted}, not {value!r}; using the default")
    return good


def _check_lore(table: Any, key: tuple[str, ...], report: _Report) -> LoreSettings:
    """config.toml's [lore]: each value checked as LoreSettings checks it (LORE_LIMITS), a bad one defaulted."""
    if not isinstance(table, dict):
        report.bad(key, f"should be a table of lore settings ({', '.join(LORE_LIMITS)}); ignored")
        return LoreSettings()
    good: dict[str, Any] = {}
    for name, value in table.items():
        if name not in LORE_LIMITS:
            report.bad((*key, name), f"unknown lore setting (known: {', '.join(LORE_LIMITS)}); ignored")
            continue
        try:
            LoreSettings(**{name: value})
        except SlmError as e:
            report.bad((*key, name), f"{e.message.removeprefix(f'lore setting {name} is ')}; using the default")
        else:
            good[name] = value
    return LoreSettings(**good)


def _from_doc(doc: dict[str, Any], report: _Report) -> Settings:
    """Settings from a parsed file: every valid value is taken, every other one reported and defaulted."""
    values: dict[str, Any] = {}
    for name, value in doc.items():
        key = (name,)
        if name == "theme":
            if isinstance(value, str) and value.strip():
                values["theme"] = value.strip()
            else:
                report.bad(key, f"should be a theme name, not {value!r}; using the default")
        elif name == "model":
            if isinstance(value, str):
                values["model"] = value.strip() or None
            else:
                report.bad(key, f"should be a model name or folder, not {value!r}; using the bundled model")
        elif name == "sampling":
            values["sampling"] = Sampling(**_check_sampling(value, key, report))  # each checked as Sampling checks
        elif name == "choices":
            if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_CHOICES:
                values["choices"] = value
            else:
                report.bad(key, f"should be a whole number 1 to {MAX_CHOICES}, not {value!r}; using 1")
        elif name == "prob_colours":
            if isinstance(value, bool):
                values["prob_colours"] = value
            else:
                report.bad(key, f"should be true or false, not {value!r}; using false")
        elif name == "lore":
            values["lore"] = _check_lore(value, key, report)
        elif name == "presets":
            if not isinstance(value, dict):
                report.bad(key, "should be a table of presets, one [presets.<name>] each; ignored")
                continue
            values["presets"] = {
                preset: _check_sampling(table, (*key, preset), report) for preset, table in value.items()
            }
        elif name == "keys":
            if not isinstance(value, dict):
                report.bad(key, "should be a table of action = \"key\" lines; ignored")
                continue
            values["keys"] = {}
            for action, binding in value.items():
                if isinstance(binding, str) and binding.strip():
                    values["keys"][action] = binding.strip()
                else:
                    report.bad((*key, action), f"should be a key such as \"ctrl+g\", not {binding!r}; ignored")
        else:
            report.bad(key, "unknown setting; ignored")
    return Settings(**values)


def _to_doc(settings: Settings) -> dict[str, Any]:
    """The TOML document for ``settings``. TOML has no null: None values are left out, and read back as None."""
    doc: dict[str, Any] = {"theme": settings.theme}
    if settings.model is not None:
        doc["model"] = settings.model
    values = ((f, getattr(settings.sampling, f.name)) for f in SETTING_FIELDS)
    doc["sampling"] = {f.name: f.plain(value) for f, value in values if value is not None}
    if settings.choices != 1:
        doc["choices"] = settings.choices
    if settings.prob_colours:
        doc["prob_colours"] = True
    default_lore = LoreSettings()
    lore = {name: getattr(settings.lore, name) for name in LORE_LIMITS
            if getattr(settings.lore, name) != getattr(default_lore, name)}
    if lore:
        doc["lore"] = lore
    if settings.presets:
        doc["presets"] = {name: {k: _SAMPLING_SETTINGS[k].plain(v) if k in _SAMPLING_SETTINGS else v
                                 for k, v in values.items()} for name, values in settings.presets.items()}
    if settings.keys:
        doc["keys"] = dict(settings.keys)
    return doc


def _updated_text(text: str, settings: Settings) -> str:
    """``text`` (a config.toml that parses) with only the values that differ from ``settings`` changed, in
    place: the user's comments, layout, unknown keys and values the app ignored stay as they were."""
    doc = tomlkit.parse(text)
    was = _to_doc(_from_doc(tomllib.loads(text), _Report(Path(), text)))
    _merge(doc, was, _to_doc(settings))
    return tomlkit.dumps(doc)


def _merge(table: Any, was: dict[str, Any], now: dict[str, Any]) -> None:
    """Make ``table`` (tomlkit) say ``now`` where ``was`` (what the app read from it) differs."""
    for key, value in now.items():
        if key in was and was[key] == value:
            continue
        if isinstance(value, dict) and isinstance(table.get(key), dict):
            _merge(table[key], was.get(key, {}) if isinstance(was.get(key), dict) else {}, value)
        else:
            table[key] = value
    for key in was.keys() - now.keys():
        if key in table:
            del table[key]


def _parse_error(e: tomllib.TOMLDecodeError | UnicodeDecodeError, text: str) -> tuple[int | None, str]:
    """(line, message) of a parse error. Python 3.11's TOMLDecodeError has the line only in its message."""
    if isinstance(e, UnicodeDecodeError):
        return None, f"not UTF-8 text ({e.reason} at byte {e.start})"
    message = str(e)
    line = getattr(e, "lineno", None)  # Python 3.14+
    if m := re.search(r"\s*\(at line (\d+), column \d+\)$", message):
        line = line or int(m.group(1))
        message = message[: m.start()]
    elif m := re.search(r"\s*\(at end of document\)$", message):
        line = line or len(text.splitlines()) or 1
        message = message[: m.start()] + " (at the end of the file)"
    return line, message


def load_settings(path: Path | None = None) -> LoadResult:
    """Read config.toml (default: the one in the config folder). Never raises for a bad file: the app must
    start anyway, so it gets defaults and the problems, in words, to show."""
    path = path if path is not None else paths.config_file()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return LoadResult(Settings(), [], path, writable=True)
    except OSError as e:
        return LoadResult(Settings(), [f"{path}: cannot read it ({e.strerror}); using defaults"], path, False)
    text = ""
    try:
        text = data.decode("utf-8")
        doc = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        line, message = _parse_error(e, text)
        where = f"{path} line {line}" if line else str(path)
        problem = f"{where}: {message}; using default settings (the file is left as it is until you fix it)"
        return LoadResult(Settings(), [problem], path, writable=False)
    except RecursionError:  # tables or arrays nested thousands deep: tomllib recurses once a level
        return LoadResult(Settings(), [f"{path}: {TOO_DEEP}; using default settings (the file is left as it is "
                                       "until you fix it)"], path, writable=False)
    report = _Report(path, text)
    try:
        settings = _from_doc(doc, report)
    except RecursionError:
        return LoadResult(Settings(), [f"{path}: {TOO_DEEP}; using default settings"], path, writable=False)
    return LoadResult(settings, report.problems, path, writable=True)


TOO_DEEP = "nested too deeply to read (arrays or tables within each other hundreds of levels deep)"


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write config.toml atomically (a crash leaves the old file or the new, never half), creating its folder.

    Refuses with SlmError to write over a file that does not parse: the app loaded defaults instead of it, so
    saving would replace the user's settings with defaults. The check reads the file now, not at load time.
    """
    path = path if path is not None else paths.config_file()
    text = ""
    try:
        text = path.read_bytes().decode("utf-8")
        tomllib.loads(text)
    except FileNotFoundError:
        pass
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        line, message = _parse_error(e, text)
        where = f"{path} line {line}" if line else str(path)
        raise SlmError(f"not saving settings over {where}: {message}. Fix or delete that file first.",
                       exit_code=1) from e
    except RecursionError as e:
        raise SlmError(f"not saving settings over {path}: {TOO_DEEP}. Fix or delete that file first.",
                       exit_code=1) from e
    except OSError as e:
        raise SlmError(f"cannot read {path} before saving settings: {e.strerror}", exit_code=1) from e
    try:
        write_text_atomic(path, _updated_text(text, settings) if text else _HEADER + tomlkit.dumps(_to_doc(settings)))
    except RecursionError as e:  # tomllib read it, tomlkit (which recurses deeper per level) could not
        raise SlmError(f"not saving settings over {path}: {TOO_DEEP}. Fix or delete that file first.",
                       exit_code=1) from e
    except OSError as e:
        raise SlmError(f"cannot save settings to {path}: {e.strerror or e}", exit_code=1) from e
