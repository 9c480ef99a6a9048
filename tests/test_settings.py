"""Settings <-> config.toml: defaults, round trip, and what a bad file does (and must not do)."""

from __future__ import annotations

from dataclasses import replace

import dataclasses
import tomllib
from pathlib import Path

import pytest

from slmtui.core.errors import SlmError
from slmtui.core.sampling import Sampling
from slmtui.settings import Settings, load_settings, save_settings


def test_defaults_when_there_is_no_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    result = load_settings(path)
    assert result.problems == [] and result.writable and result.path == path
    s = result.settings
    assert s == Settings()
    assert (s.theme, s.model, s.presets, s.keys) == ("textual-dark", None, {}, {})
    assert s.sampling.to_dict() == {
        "temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.0,
        "repetition_penalty": 1.1, "max_new_tokens": 120, "finish_sentence": 0, "seed": None, "stop": [],
        "dry_multiplier": 0.0, "dry_base": 1.75, "dry_allowed_length": 2, "dry_breakers": ["\n", ":", '"', "*"],
        "xtc_threshold": 0.1, "xtc_probability": 0.0, "banned_phrases": [], "logit_bias": [],
    }
    assert not path.exists()  # loading never writes


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    settings = Settings(
        theme="nord",
        model="/models/my book",
        sampling=Sampling(temperature=1.2, top_k=0, seed=7),
        presets={"wild": {"temperature": 1.5, "top_p": 1.0}, "safe one": {"top_k": 5}},
        keys={"generate": "ctrl+g", "undo": "ctrl+z"},
    )
    save_settings(settings, path)
    result = load_settings(path)
    assert result.problems == []
    assert result.settings == settings
    assert tomllib.loads(path.read_text())["sampling"]["seed"] == 7

    # None cannot be written in TOML: it is left out and comes back as None
    save_settings(dataclasses.replace(settings, model=None, sampling=Sampling()), path)
    back = load_settings(path).settings
    assert back.model is None and back.sampling.seed is None


def test_broken_toml_is_reported_by_line_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    original = b'theme = "nord"\n[sampling]\ntemperature = = 0.5\ntop_k = 3\n'
    path.write_bytes(original)

    result = load_settings(path)
    assert result.settings == Settings()
    assert not result.writable
    assert len(result.problems) == 1
    assert "config.toml line 3:" in result.problems[0]

    with pytest.raises(SlmError, match="line 3"):
        save_settings(dataclasses.replace(result.settings, theme="changed"), path)
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_a_syntax_error_at_the_end_names_the_last_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('theme = "nord"\nmodel = "unterminated')  # no newline: the error is at the end
    [problem] = load_settings(path).problems
    assert "config.toml line 2:" in problem and "end of the file" in problem


def test_a_file_that_is_not_utf8_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'theme = "\xff\xfe"\n')
    result = load_settings(path)
    assert not result.writable and "UTF-8" in result.problems[0]
    with pytest.raises(SlmError):
        save_settings(Settings(), path)
    assert path.read_bytes() == b'theme = "\xff\xfe"\n'


def test_ill_typed_values_fall_back_one_by_one(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        "theme = 3\n"                      # 1
        'model = "tiny"\n'                 # 2
        "colour = \"red\"\n"               # 3
        "[sampling]\n"                     # 4
        'temperature = "hot"\n'            # 5
        "top_k = 50\n"                     # 6
        "top_p = 1.5\n"                    # 7
        "max_new_tokens = true\n"          # 8
        "repetition_penalty = 1\n"         # 9
        "warmth = 2\n"                     # 10
        "[presets.calm]\n"                 # 11
        "temperature = 0.3\n"              # 12
        "top_k = 2.5\n"                    # 13
        "[keys]\n"                         # 14
        'generate = "ctrl+g"\n'            # 15
        "undo = 5\n"                       # 16
    )
    result = load_settings(path)
    s = result.settings
    assert result.writable
    assert s.theme == "textual-dark" and s.model == "tiny"
    assert s.sampling == Sampling(top_k=50, repetition_penalty=1.0)
    assert isinstance(s.sampling.repetition_penalty, float)
    assert s.presets == {"calm": {"temperature": 0.3}}
    assert s.keys == {"generate": "ctrl+g"}

    expected = {
        "theme": 1, "colour": 3, "sampling.temperature": 5, "sampling.top_p": 7, "sampling.max_new_tokens": 8,
        "sampling.warmth": 10, "presets.calm.top_k": 13, "keys.undo": 16,
    }
    assert len(result.problems) == len(expected), result.problems
    for key, line in expected.items():
        matching = [p for p in result.problems if f": {key}:" in p]
        assert matching, f"no problem reported for {key}: {result.problems}"
        assert f"config.toml line {line}:" in matching[0]
    assert any("'hot'" in p for p in result.problems)

    # the ill-typed file parses, so saving is allowed; it changes only what changed and leaves the user's
    # other lines (the ignored values included, still reported) for the user to fix
    before = path.read_text()
    save_settings(replace(s, theme="nord"), path)
    again = load_settings(path)
    assert again.settings == replace(s, theme="nord")
    assert again.problems == [p for p in result.problems if ": theme:" not in p]  # the theme is fixed now
    assert path.read_text().splitlines()[1:] == before.splitlines()[1:]


def test_values_out_of_the_engines_bounds_fall_back_one_by_one(tmp_path: Path) -> None:
    """Numbers the engine refuses (temperature above 5, a penalty under 0.5, top-k past 100000) are refused here,
    each alone with its line, so the file's other sampling values still apply."""
    path = tmp_path / "config.toml"
    path.write_text(
        "[sampling]\n"                     # 1
        "temperature = 7\n"                # 2
        "top_p = 0.5\n"                    # 3
        "repetition_penalty = 0.2\n"       # 4
        "top_k = 200000\n"                 # 5
        "max_new_tokens = 100000\n"        # 6
        "[presets.hot]\n"                  # 7
        "temperature = 5.5\n"              # 8
        "min_p = 0.1\n"                    # 9
    )
    result = load_settings(path)
    assert result.writable
    assert result.settings.sampling == Sampling(top_p=0.5, max_new_tokens=100000)
    assert result.settings.presets == {"hot": {"min_p": 0.1}}
    assert result.problems == [
        f"{path} line 2: sampling.temperature: should be a number from 0 to 5, not 7; using the default",
        f"{path} line 4: sampling.repetition_penalty: should be a number from 0.5 to 3, not 0.2; using the default",
        f"{path} line 5: sampling.top_k: should be a whole number from 0 to 100000, not 200000; using the default",
        f"{path} line 8: presets.hot.temperature: should be a number from 0 to 5, not 5.5; using the default",
    ]


def test_saving_keeps_comments_unknown_keys_and_layout(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        "# my settings, by hand\n"
        'theme = "nord"  # the dark one\n'
        "future_option = true\n"
        "\n"
        "[sampling]\n"
        "# warmer than the default\n"
        "temperature = 1.1\n"
        "top_k = 50\n"
        "\n"
        "[keys]\n"
        'generate = "ctrl+g"  # my key\n'
    )
    loaded = load_settings(path).settings
    changed = replace(loaded, sampling=replace(loaded.sampling, temperature=0.7, seed=2**64), model="tiny")
    save_settings(changed, path)
    text = path.read_text()
    for kept in ("# my settings, by hand", 'theme = "nord"  # the dark one', "future_option = true",
                 "# warmer than the default", "top_k = 50", 'generate = "ctrl+g"  # my key'):
        assert kept in text, text
    assert "temperature = 0.7" in text and "temperature = 1.1" not in text
    assert load_settings(path).settings == changed  # a seed past 64 bits round-trips too
    save_settings(replace(changed, model=None, sampling=replace(changed.sampling, seed=None)), path)
    text = path.read_text()
    assert "model" not in text and "seed" not in text and "future_option = true" in text


def test_wrongly_shaped_tables_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('sampling = 3\npresets = "none"\nkeys = [1]\n')
    result = load_settings(path)
    assert result.settings == Settings()
    assert [p.split(": ")[1] for p in result.problems] == ["sampling", "presets", "keys"]


def test_save_is_atomic_and_creates_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "config.toml"
    save_settings(Settings(theme="one"), path)
    save_settings(Settings(theme="two"), path)  # replaces an existing file the same way
    assert load_settings(path).settings.theme == "two"
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temp files left behind


def test_slmtui_home_is_respected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLMTUI_HOME", str(tmp_path))
    save_settings(Settings(theme="home"))
    assert (tmp_path / "config" / "config.toml").is_file()
    result = load_settings()
    assert result.path == tmp_path / "config" / "config.toml"
    assert result.settings.theme == "home"


@pytest.mark.parametrize("nested", ["a = " + "[" * 5000 + "]" * 5000, "a = " + "{b = " * 5000 + "1" + "}" * 5000],
                         ids=["arrays", "inline tables"])
def test_a_config_nested_5000_deep_loads_defaults_and_is_never_written_over(tmp_path: Path, nested: str) -> None:
    """Before: tomllib's RecursionError crashed the app at start (issue 23, item 7)."""
    path = tmp_path / "config.toml"
    path.write_text(nested)
    result = load_settings(path)
    assert result.settings == Settings() and not result.writable
    assert len(result.problems) == 1 and "nested too deeply" in result.problems[0]
    with pytest.raises(SlmError, match="not saving settings over"):
        save_settings(Settings(), path)
    assert path.read_text() == nested


def test_the_new_samplers_round_trip_through_config_toml(tmp_path: Path) -> None:
    """DRY, XTC, bans and biases are [sampling] keys like the others: written, read back, checked (issue 21)."""
    path = tmp_path / "config.toml"
    sampling = Sampling(dry_multiplier=0.8, dry_breakers=("\n", "."), xtc_probability=0.5, xtc_threshold=0.2,
                        banned_phrases=("the sea", "Café"), logit_bias=(("dragon", 5.0), ("castle", -100.0)))
    save_settings(Settings(sampling=sampling, presets={"mine": {"dry_multiplier": 1.5}}), path)
    text = path.read_text()
    assert 'logit_bias = ["dragon=5", "castle=-100"]' in text and 'banned_phrases = ["the sea", "Café"]' in text
    back = load_settings(path)
    assert back.problems == [] and back.settings.sampling == sampling
    assert back.settings.presets == {"mine": {"dry_multiplier": 1.5}}
    path.write_text('[sampling]\nlogit_bias = ["dragon=500"]\nbanned_phrases = [""]\ndry_multiplier = 9\n'
                    'xtc_threshold = 0.2\n')
    bad = load_settings(path)
    assert len(bad.problems) == 3, bad.problems
    assert "sampling.logit_bias: the bias of 'dragon' must be a number from -100 to 100" in bad.problems[0]
    assert bad.settings.sampling == Sampling(xtc_threshold=0.2)  # the good value kept, each bad one defaulted


def test_probability_colours_are_kept_and_a_bad_value_falls_back(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    save_settings(Settings(prob_colours=True), path)
    assert tomllib.loads(path.read_text())["prob_colours"] is True
    assert load_settings(path).settings.prob_colours is True
    path.write_text('prob_colours = "yes"\n')
    result = load_settings(path)
    assert result.settings.prob_colours is False
    assert any("prob_colours" in p and "true or false" in p for p in result.problems), result.problems


def test_lore_settings_round_trip_and_each_bad_value_falls_back_alone(tmp_path: Path) -> None:
    from slmtui.writing.lore import LoreSettings

    path = tmp_path / "config.toml"
    save_settings(Settings(lore=LoreSettings(scan_depth=512, budget_share=0.3)), path)
    assert tomllib.loads(path.read_text())["lore"] == {"scan_depth": 512, "budget_share": 0.3}  # max_rounds: default
    assert load_settings(path).settings.lore == LoreSettings(scan_depth=512, budget_share=0.3)
    path.write_text("[lore]\nscan_depth = 99999\nbudget_share = 0.2\nmax_rounds = 1.5\ndepth = 3\n")
    result = load_settings(path)
    assert result.settings.lore == LoreSettings(budget_share=0.2)
    assert len(result.problems) == 3, result.problems
    assert any("lore.scan_depth" in p and "0 to 4096" in p for p in result.problems), result.problems
    assert any("lore.max_rounds" in p and "whole number" in p for p in result.problems), result.problems
    assert any("lore.depth" in p and "unknown lore setting" in p for p in result.problems), result.problems
    path.write_text('lore = "all"\n')
    assert load_settings(path).settings.lore == LoreSettings()


def test_the_readmes_example_config_loads_without_a_problem(tmp_path: Path) -> None:
    """README's Settings section shows a config.toml: every key in it is one the app reads, with a good value."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    example = readme.split("\n## Settings\n", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "config.toml"
    path.write_text(example)
    result = load_settings(path)
    assert result.problems == []
    assert result.settings.prob_colours and result.settings.choices == 3 and result.settings.keys == {"retry": "ctrl+r"}
