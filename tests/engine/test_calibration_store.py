"""Calibrations kept on disk: measured once per machine and model shape, keyed so a change measures afresh,
and a damaged file is ignored and rewritten."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
import torch

from slmtui.core import paths
from slmtui.engine import calibration_store, decode_paths, threads
from slmtui.engine.calibration_store import FILE_NAME, MAX_AGE_S, CalibrationStore
from slmtui.engine.decode_paths import CANDIDATES
from slmtui.engine.generate import Generator
from slmtui.engine.model import GPT
from slmtui.engine.tokenizer import Tokenizer


@pytest.fixture
def store_file() -> Path:
    return paths.cache_dir() / FILE_NAME


@pytest.fixture
def timed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each process-level memo empty (a fresh process), and the name of every candidate built to be timed."""
    monkeypatch.setattr(decode_paths, "_CHOICES", {})
    monkeypatch.setattr(threads, "_CHOICES", {})
    built: list[str] = []
    real = decode_paths.build_path

    def build(model, name):  # type: ignore[no-untyped-def]
        built.append(name)
        return real(model, name)

    monkeypatch.setattr(decode_paths, "build_path", build)
    return built


def new_process(monkeypatch: pytest.MonkeyPatch, built: list[str]) -> None:
    """As if the next Generator were made by another process: nothing remembered in memory."""
    monkeypatch.setattr(decode_paths, "_CHOICES", {})
    monkeypatch.setattr(threads, "_CHOICES", {})
    built.clear()


def test_a_path_choice_is_measured_once_and_then_read_from_the_cache(
    tiny_model: GPT, byte_tokenizer: Tokenizer, monkeypatch: pytest.MonkeyPatch, timed: list[str], store_file: Path
) -> None:
    first = Generator(tiny_model, byte_tokenizer)
    assert set(timed) == set(CANDIDATES), "measured: every candidate built and timed"
    assert first.choices[1].measured_at is None and "at load" in first.choices[1].reason
    data = json.loads(store_file.read_bytes())
    assert data["format"] == calibration_store.FORMAT and any(k.startswith("path/") for k in data["entries"])

    new_process(monkeypatch, timed)
    monkeypatch.setattr(decode_paths, "StepTimer", _never)  # nothing may be timed now
    second = Generator(tiny_model, byte_tokenizer)
    assert second.path_for(1) == first.path_for(1)
    assert second.choices[1].ms_per_step == pytest.approx(first.choices[1].ms_per_step)
    assert second.choices[1].measured_at is not None and "kept from" in second.choices[1].reason
    assert timed == [], "no candidate built for timing"


def test_keep_calibration_false_neither_reads_nor_writes(
    tiny_model: GPT, byte_tokenizer: Tokenizer, timed: list[str], store_file: Path
) -> None:
    Generator(tiny_model, byte_tokenizer, keep_calibration=False)
    assert not store_file.exists()


def test_another_model_shape_cpu_or_torch_measures_afresh(
    tiny_model: GPT, byte_tokenizer: Tokenizer, monkeypatch: pytest.MonkeyPatch, timed: list[str]
) -> None:
    Generator(tiny_model, byte_tokenizer)
    wider = GPT(dataclasses.replace(tiny_model.config, n_layer=1)).eval()
    new_process(monkeypatch, timed)
    assert Generator(wider, byte_tokenizer).choices[1].measured_at is None, "another shape"
    assert timed, "its candidates were built and timed"

    try:
        for change in ("cpu", "torch"):
            new_process(monkeypatch, timed)
            calibration_store.machine_key.cache_clear()
            with monkeypatch.context() as m:
                if change == "cpu":
                    m.setattr(calibration_store, "cpu_identity", lambda: "Another CPU|avx2 fma")
                else:
                    m.setattr(torch, "__version__", "9.9.9")
                assert Generator(tiny_model, byte_tokenizer).choices[1].measured_at is None, change
    finally:
        calibration_store.machine_key.cache_clear()


def test_the_same_shape_with_other_weights_reuses_the_calibration(
    tiny_model: GPT, byte_tokenizer: Tokenizer, monkeypatch: pytest.MonkeyPatch, timed: list[str]
) -> None:
    """The timing is of shapes: a model retrained at the same shape is served from the cache."""
    Generator(tiny_model, byte_tokenizer)
    torch.manual_seed(99)
    retrained = GPT(tiny_model.config).eval()
    new_process(monkeypatch, timed)
    assert Generator(retrained, byte_tokenizer).choices[1].measured_at is not None


@pytest.mark.parametrize(
    "damage",
    [b"", b"{not json", b"\xff\xfe\x00garbage", b"[1, 2, 3]", b'{"format": 999, "entries": {}}',
     b'{"format": 1, "entries": []}'],
)
def test_a_damaged_cache_file_is_ignored_and_rewritten(
    tiny_model: GPT, byte_tokenizer: Tokenizer, timed: list[str], store_file: Path, damage: bytes
) -> None:
    store_file.parent.mkdir(parents=True, exist_ok=True)
    store_file.write_bytes(damage)
    gen = Generator(tiny_model, byte_tokenizer)
    assert gen.choices[1].measured_at is None, "measured, the file notwithstanding"
    data = json.loads(store_file.read_bytes())
    assert data["format"] == calibration_store.FORMAT and len(data["entries"]) >= 1
    assert [p.name for p in store_file.parent.iterdir()] == [FILE_NAME], "no temporary file left behind"


def test_a_malformed_or_stale_entry_is_measured_again(
    tiny_model: GPT, byte_tokenizer: Tokenizer, monkeypatch: pytest.MonkeyPatch, timed: list[str], store_file: Path
) -> None:
    Generator(tiny_model, byte_tokenizer)
    data = json.loads(store_file.read_bytes())
    (key,) = [k for k in data["entries"] if k.startswith("path/")]
    for entry in (
        {"measured": time.time(), "value": {"name": "warp-drive", "ms_per_step": {}}},  # a path this build lacks
        {"measured": time.time(), "value": {"name": "exact", "ms_per_step": {"exact": "fast"}}},
        {"measured": time.time(), "value": "exact"},
        {"measured": time.time() - MAX_AGE_S - 60, "value": data["entries"][key]["value"]},  # too old
        {"measured": time.time() + 3600 * 24, "value": data["entries"][key]["value"]},  # from the future: a clock reset
    ):
        store_file.write_text(json.dumps({"format": calibration_store.FORMAT, "entries": {key: entry}}))
        new_process(monkeypatch, timed)
        assert Generator(tiny_model, byte_tokenizer).choices[1].measured_at is None, entry
        kept = json.loads(store_file.read_bytes())["entries"][key]
        assert kept["value"]["name"] in CANDIDATES and time.time() - kept["measured"] < 60, "rewritten"


def test_a_thread_choice_is_kept_per_batch_size_and_cores(
    tiny_model: GPT, monkeypatch: pytest.MonkeyPatch, store_file: Path
) -> None:
    saved = torch.get_num_threads()
    monkeypatch.setattr(threads, "_CHOICES", {})
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "_keeps_up", lambda *args, **kwargs: True)
    store = CalibrationStore(store_file)
    try:
        first = threads.choose_threads(tiny_model, batch_size=2, key="tiny", rounds=1, steps=1, store=store)
        monkeypatch.setattr(threads, "_CHOICES", {})
        monkeypatch.setattr(threads, "StepTimer", _never)
        kept = threads.choose_threads(tiny_model, batch_size=2, key="tiny", store=store)
        assert (kept.threads, kept.ms_per_step, kept.gave_up) == (first.threads, first.ms_per_step, first.gave_up)
        assert "kept from" in kept.reason
        monkeypatch.setattr(threads, "usable_cores", lambda: 3)  # another affinity mask: measured again
        with pytest.raises(AssertionError, match="timed"):
            threads.choose_threads(tiny_model, batch_size=2, key="tiny", store=store)
        with pytest.raises(AssertionError, match="timed"):
            threads.choose_threads(tiny_model, batch_size=3, key="tiny", store=store)
    finally:
        torch.set_num_threads(saved)


def test_a_cache_folder_that_cannot_be_written_costs_nothing_but_the_keeping(
    tiny_model: GPT, byte_tokenizer: Tokenizer, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store = CalibrationStore(blocker / "cache" / FILE_NAME)
    store.put("key", {"name": "exact"})  # no error
    assert store.get("key") is None
    assert blocker.read_text() == "not a folder"


def test_the_cpu_identity_names_the_model_and_flags() -> None:
    identity = calibration_store.cpu_identity()
    assert "|" in identity and identity.strip("|")


class _never:
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("timed a decode step: the cached calibration was not used")
