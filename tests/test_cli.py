"""The `slmtui` command: every error is one line and exit 2; generate, eval and models on the tiny model."""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from slmtui import __version__
from slmtui.core.model_folder import META, WEIGHTS
from slmtui.engine.evaluate import evaluate_texts
from slmtui.engine.generate import Generator
from slmtui.engine.model_io import load_model_dir
from slmtui.cli import build_parser, main
from slmtui.core.sampling import FIELDS, SamplingField

REPO = Path(__file__).resolve().parent.parent
GEN = ["generate", "Once upon a time", "--model", "tiny", "--max-new-tokens", "12"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def assert_usage_error(result: tuple[int, str, str], *fragments: str) -> None:
    rc, out, err = result
    lines = err.splitlines()
    assert rc == 2, err
    assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    assert lines[0].startswith("slmtui: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


# --------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["generate", "x", "--tempreature", "1"], "unrecognized arguments: --tempreature"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["generate"], "the following arguments are required: PROMPT"),
        (["generate", "x", "--temperature", "hot"], "argument --temperature: invalid float value: 'hot'"),
        (["generate", "x", "--temperature", "9"], "--temperature must be a number from 0 to 5, got 9.0"),
        (["generate", "x", "--temperature", "nan"], "--temperature must be a number"),
        (["generate", "x", "--top-p", "0"], "--top-p must be a number above 0 and at most 1, got 0.0"),
        (["generate", "x", "--top-k", "-2"], "--top-k must be a whole number from 0 to 100000, got -2"),
        (["generate", "x", "--top-k", "2.5"], "argument --top-k: invalid int value: '2.5'"),
        (["generate", "x", "--min-p", "2"], "--min-p must be a number from 0 to 1, got 2.0"),
        (["generate", "x", "--repetition-penalty", "0"], "--repetition-penalty must be a number from 0.5 to 3, got 0.0"),
        (["generate", "x", "--max-new-tokens", "0"], "--max-new-tokens 0 writes nothing: it goes with --show-context"),
        (["generate", "x", "--max-new-tokens", "-1"], "--max-new-tokens must be a whole number from 1 to 100000, got -1"),
        (["generate", "x", "--seed", "1.5"], "argument --seed: invalid int value: '1.5'"),
        (["generate", "x", "--stop", ""], "--stop must be a list of non-empty texts"),
        (["generate", "x", "--ban", ""], "--ban: a banned phrase must be 1 to 80 characters, got ''"),
        (["generate", "x", "--ban", "y" * 81], "--ban: a banned phrase must be 1 to 80 characters"),
        (["generate", "x", "--bias", "dragon"], "--bias: a logit bias is TEXT=NUMBER (e.g. dragon=5), got 'dragon'"),
        (["generate", "x", "--bias", "dragon=101"], "--bias: the bias of 'dragon' must be a number from -100 to 100"),
        (["generate", "x", "--bias", "dragon=inf"], "--bias: a logit bias is TEXT=NUMBER"),
        (["generate", "x", "--dry-multiplier", "-1"], "--dry-multiplier must be a number from 0 to 5, got -1.0"),
        (["generate", "x", "--dry-allowed-length", "0"], "--dry-allowed-length must be a whole number from 1 to 20"),
        (["generate", "x", "--dry-breaker", "x" * 17], "--dry-breaker: a DRY sequence breaker must be 1 to 16"),
        (["generate", "x", "--xtc-threshold", "0.6"], "--xtc-threshold must be a number from 0 to 0.5, got 0.6"),
        (["--device", "tpu", "models"], "argument --device: invalid choice: 'tpu'"),
        (["generate", "x", "--device", "gpu"], "argument --device: invalid choice: 'gpu'"),
        (["eval"], "nothing to evaluate: give text files, or --corpus DIR"),
        (["eval", "a.txt", "--corpus", "books"], "give text files or --corpus, not both"),
        (["eval", "a.txt", "--split", "train"], "--split needs --corpus"),
        (["eval", "--corpus", "books", "--split", "test"], "argument --split: invalid choice: 'test'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str) -> None:
    assert_usage_error(run(capsys, *argv), fragment)


def test_missing_model(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path) -> None:
    assert_usage_error(run(capsys, "generate", "x", "--model", "nope"), "no model named 'nope'; models: tiny")
    assert_usage_error(run(capsys, "generate", "x", "--model", "./no/such/folder"), "no model folder at")


@pytest.fixture
def no_bundled_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As if slmtui shipped no model: the case of an install whose bundled model was removed."""
    from slmtui.core import paths

    monkeypatch.setattr(paths, "BUNDLED_MODELS_DIR", tmp_path / "no-bundled-models")


def test_no_models_at_all(capsys: pytest.CaptureFixture[str], no_bundled_models: None) -> None:
    assert_usage_error(run(capsys, "generate", "x"), "no model named 'default'", "slm-train")


def test_corrupt_model_folder(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path) -> None:
    weights = tiny_model_dir / WEIGHTS
    weights.write_bytes(weights.read_bytes()[:1000])
    assert_usage_error(run(capsys, *GEN), str(weights), "damaged or truncated")


def test_broken_model_toml(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path) -> None:
    (tiny_model_dir / META).write_text("[model\n")
    assert_usage_error(run(capsys, "eval", __file__, "--model", "tiny"), str(tiny_model_dir / META), "not valid TOML")


def test_missing_eval_file(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    assert_usage_error(run(capsys, "eval", str(missing), "--model", "tiny"), f"cannot read {missing}: No such file or directory")


def test_eval_file_that_is_a_folder_or_not_text(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path) -> None:
    assert_usage_error(run(capsys, "eval", str(tmp_path), "--model", "tiny"), f"cannot read {tmp_path}")
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    assert_usage_error(run(capsys, "eval", str(binary), "--model", "tiny"), f"{binary}: not UTF-8 text")
    assert_usage_error(run(capsys, "eval", str(binary), "--raw", "--model", "tiny"), f"{binary} is not UTF-8 text")


def test_missing_corpus(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("trainer.corpus")
    assert_usage_error(run(capsys, "eval", "--corpus", str(tmp_path / "nope"), "--model", "tiny"), "nope")


def test_eval_text_too_short(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path) -> None:
    short = tmp_path / "short.txt"
    short.write_text("a")
    assert_usage_error(run(capsys, "eval", str(short), "--model", "tiny"), "shorter than two tokens")


def test_empty_prompt_on_stdin(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"  \n")))
    assert_usage_error(run(capsys, "generate", "-", "--model", "tiny"), "the prompt on standard input is empty")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_absent_device(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path) -> None:
    assert_usage_error(run(capsys, "--device", "cuda", *GEN), "--device cuda: no CUDA GPU")
    assert_usage_error(run(capsys, *GEN, "--device", "cuda"), "--device cuda: no CUDA GPU")


# --------------------------------------------------------------------------- generate


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f.name)
def test_generate_has_an_option_for_every_sampling_field_with_the_tables_words(field: SamplingField) -> None:
    (generate,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    parser = generate.choices["generate"]
    (option,) = [a for a in parser._actions if field.flag in a.option_strings]
    assert option.dest == field.name and option.metavar == field.metavar
    assert option.help is not None and option.help.startswith(field.help)
    if field.lo is not None or field.hi is not None:
        assert field.bounds in option.help
    if not field.many:
        assert (f"default {field.default}" if field.default is not None else f"default: {field.none}") in option.help
    assert " ".join(option.help.split()) in " ".join(parser.format_help().split())  # argparse wraps the lines


@pytest.mark.parametrize("field", [f for f in FIELDS if f.hi is not None], ids=lambda f: f.name)
def test_generate_refuses_just_past_a_bound_with_the_tables_words(
    capsys: pytest.CaptureFixture[str], field: SamplingField
) -> None:
    past = field.kind(field.hi) + 1
    assert_usage_error(run(capsys, "generate", "x", field.flag, str(past)),
                       f"{field.flag} must be {field.wanted}, got {past!r}")


def test_generate_with_a_seed_is_reproducible(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path) -> None:
    first = run(capsys, *GEN, "--seed", "7", "--temperature", "1.0")
    again = run(capsys, *GEN, "--seed", "7", "--temperature", "1.0")
    other = run(capsys, *GEN, "--seed", "8", "--temperature", "1.0")
    assert first[0] == 0 and first[2] == ""
    assert first == again
    assert first[1] != other[1]
    assert first[1].endswith("\n")


def test_generate_writes_what_the_generator_writes(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path) -> None:
    rc, out, _ = run(capsys, *GEN, "--seed", "3", "--top-k", "5", "--top-p", "0.9", "--min-p", "0.01",
                     "--repetition-penalty", "1.3", "--memory", "Dorothy")
    from slmtui.core.sampling import Sampling

    loaded = load_model_dir(tiny_model_dir)
    s = Sampling(seed=3, top_k=5, top_p=0.9, min_p=0.01, repetition_penalty=1.3, max_new_tokens=12)
    events = list(Generator(loaded.model, loaded.tokenizer, path="exact").stream("Once upon a time", s, memory="Dorothy"))
    assert rc == 0
    assert out.rstrip("\n") == "".join(e.text for e in events).rstrip("\n")


def test_generate_takes_the_new_samplers(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path) -> None:
    """--dry-*, --xtc-*, --ban and --bias reach the engine as the Sampling fields they name."""
    rc, out, _ = run(capsys, *GEN, "--seed", "3", "--temperature", "1", "--dry-multiplier", "1.5",
                     "--dry-breaker", ".", "--dry-breaker", "\\n", "--xtc-probability", "0.5", "--ban", "the",
                     "--ban", "a", "--bias", "o=4", "--bias", "e=-3")
    from slmtui.core.sampling import Sampling

    loaded = load_model_dir(tiny_model_dir)
    s = Sampling(seed=3, temperature=1.0, dry_multiplier=1.5, dry_breakers=(".", "\n"), xtc_probability=0.5,
                 banned_phrases=("the", "a"), logit_bias=(("o", 4.0), ("e", -3.0)), max_new_tokens=12)
    events = list(Generator(loaded.model, loaded.tokenizer, path="exact").stream("Once upon a time", s))
    plain = list(Generator(loaded.model, loaded.tokenizer, path="exact").stream(
        "Once upon a time", Sampling(seed=3, temperature=1.0, max_new_tokens=12)))
    assert rc == 0
    assert out.rstrip("\n") == "".join(e.text for e in events).rstrip("\n")
    assert [e.token_id for e in events] != [e.token_id for e in plain]


def test_generate_with_a_seed_takes_the_exact_path_unless_told(
    capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import slmtui.engine.generate as generate

    paths_used: list[str | None] = []
    real_init = generate.Generator.__init__

    def spy(self: generate.Generator, *args: object, path: str | None = None, **kwargs: object) -> None:
        paths_used.append(path)
        real_init(self, *args, path=path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(generate.Generator, "__init__", spy)
    assert run(capsys, *GEN, "--seed", "3")[0] == 0
    assert run(capsys, *GEN, "--seed", "3", "--path", "int8")[0] == 0
    assert run(capsys, *GEN, "--path", "auto")[0] == 0
    assert run(capsys, *GEN)[0] == 0
    assert paths_used == ["exact", "int8", None, None]
    rc, out, err = run(capsys, *GEN, "--path", "fastest")
    assert rc == 2 and out == "" and err.count("\n") == 1 and "--path 'fastest'" in err


def test_generate_reads_the_prompt_from_stdin(
    capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Once upon a time")))
    piped = run(capsys, "generate", "-", *GEN[2:], "--seed", "4")
    assert piped == run(capsys, *GEN, "--seed", "4")


def test_generate_streams_piece_by_piece(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Recorder(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.log: list[str] = []

        def write(self, s: str) -> int:
            self.log.append(s)
            return super().write(s)

        def flush(self) -> None:
            self.log.append("<flush>")

    out = Recorder()
    monkeypatch.setattr(sys, "stdout", out)
    assert main([*GEN, "--seed", "1", "--temperature", "0"]) == 0
    writes = [w for w in out.log if w != "<flush>"]
    assert len(writes) >= 10, "text must reach stdout as it is generated, not at the end"
    assert out.log.count("<flush>") >= len(writes) - 1


def test_stop_string_and_escapes(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path) -> None:
    _, full, _ = run(capsys, *GEN, "--seed", "2", "--temperature", "0")
    stop = full[3:5]
    assert stop and "\\" not in stop
    _, cut, _ = run(capsys, *GEN, "--seed", "2", "--temperature", "0", "--stop", stop)
    assert cut.rstrip("\n") == full[: full.index(stop) + len(stop)]


def test_ctrl_c_exits_130_quietly(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_stream = Generator.stream

    def interrupted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        for i, event in enumerate(real_stream(self, *args, **kwargs)):
            if i == 3:
                raise KeyboardInterrupt
            yield event

    monkeypatch.setattr(Generator, "stream", interrupted)
    rc, out, err = run(capsys, *GEN, "--seed", "1")
    assert rc == 130
    assert err == ""
    assert len(out) > 0  # what was written before the interrupt stays


# --------------------------------------------------------------------------- eval


def test_eval_json(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path) -> None:
    texts = ["The Scarecrow walked down the road.\n", "Ünïcödé 東京 🎉 and more words here.\n"]
    files = []
    for i, text in enumerate(texts):
        files.append(tmp_path / f"{i}.txt")
        files[-1].write_text(text, encoding="utf-8")
    rc, out, err = run(capsys, "eval", *map(str, files), "--raw", "--model", "tiny", "--json")
    assert rc == 0 and err == ""
    report = json.loads(out)
    assert set(report) >= {"model", "path", "source", "files", "texts", "tokens", "bytes", "loss", "perplexity",
                           "bits_per_byte", "reading"}
    assert report["model"] == "tiny" and report["path"] == str(tiny_model_dir)
    assert report["source"] == "files" and report["texts"] == 2 and report["reading"] == "raw"
    loaded = load_model_dir(tiny_model_dir)
    expected = evaluate_texts(loaded.model, loaded.tokenizer, texts)
    assert report["tokens"] == expected.tokens == sum(len(t.encode()) - 1 for t in texts)
    assert report["bytes"] == expected.bytes
    assert report["loss"] == pytest.approx(expected.loss)
    assert report["perplexity"] == pytest.approx(math.exp(expected.loss))
    assert report["bits_per_byte"] == pytest.approx(expected.loss * expected.tokens / math.log(2) / expected.bytes)


def test_eval_table(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path) -> None:
    rc, out, _ = run(capsys, "eval", __file__, "--model", str(tiny_model_dir))
    assert rc == 0
    labels = [line.split()[0] for line in out.splitlines()]
    assert labels == ["model", "text", "reading", "loss", "perplexity", "bits/byte"]


def test_eval_corpus_uses_the_models_val_fraction(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path) -> None:
    corpus_mod = pytest.importorskip("trainer.corpus")
    books = tmp_path / "books"
    books.mkdir()
    for name in ("a", "b"):
        paragraphs = [f"Paragraph {i} of book {name}: the road of yellow brick went on." for i in range(40)]
        (books / f"{name}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    rc, out, _ = run(capsys, "eval", "--corpus", str(books), "--model", "tiny", "--json")
    assert rc == 0
    report = json.loads(out)
    assert (report["source"], report["split"], report["val_fraction"]) == ("corpus", "val", 0.1)
    train, val = corpus_mod.split_documents(corpus_mod.read_corpus(books), val_fraction=0.1)
    loaded = load_model_dir(tiny_model_dir)
    assert report["tokens"] == evaluate_texts(loaded.model, loaded.tokenizer, val).tokens
    rc, out, _ = run(capsys, "eval", "--corpus", str(books), "--split", "train", "--model", "tiny", "--json")
    assert json.loads(out)["tokens"] == evaluate_texts(loaded.model, loaded.tokenizer, train).tokens


# --------------------------------------------------------------------------- models, version, TUI


def test_models_lists_the_tiny_model(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path) -> None:
    rc, out, _ = run(capsys, "models")
    assert rc == 0
    header, row, bundled = out.splitlines()
    assert bundled.split()[0] == "default" and bundled.split()[-1] == "bundled"  # yours first, then bundled
    assert header.split() == ["NAME", "PARAMETERS", "VOCAB", "CONTEXT", "VAL", "LOSS", "VAL", "BPB", "CREATED", "SOURCE"]
    assert row.split() == ["tiny", "169.7K", "512", "64", "6.250", "9.000", "2026-01-01", "00:00", "user"]
    rc, out, _ = run(capsys, "models", "--json")
    entry, default = json.loads(out)
    assert default["name"] == "default" and default["bundled"]
    assert entry["name"] == "tiny" and entry["path"] == str(tiny_model_dir)
    assert (entry["vocab_size"], entry["n_vocab"], entry["block_size"]) == (512, 257, 64)
    assert (entry["val_loss"], entry["val_bpb"], entry["bundled"]) == (6.25, 9.0, False)
    assert entry["parameters"] == load_model_dir(tiny_model_dir).model.num_params()


def test_models_when_there_are_none(capsys: pytest.CaptureFixture[str], no_bundled_models: None) -> None:
    rc, out, _ = run(capsys, "models")
    assert rc == 0 and "no models yet" in out
    assert json.loads(run(capsys, "models", "--json")[1]) == []


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--version") == (0, f"slmtui {__version__}\n", "")


def test_no_subcommand_opens_the_tui(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, object]] = []
    fake = types.ModuleType("slmtui.tui.app")
    fake.run_app = lambda **kwargs: calls.append(kwargs) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "slmtui.tui.app", fake)
    assert run(capsys, "--model", "tiny", "--device", "cpu")[0] == 0
    assert run(capsys)[0] == 0
    assert calls == [{"model": "tiny", "device": "cpu"}, {"model": None, "device": "auto"}]


def test_tui_missing_is_a_clean_error(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "slmtui.tui.app", None)  # makes the import fail
    rc, _, err = run(capsys)
    assert rc == 1
    assert err == "slmtui: error: the TUI is not available\n"


# --------------------------------------------------------------------------- a real process


def _slmtui(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "slmtui", *argv], cwd=REPO, env=env, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=120,
    )


def test_python_m_slmtui_in_a_real_process(capsys: pytest.CaptureFixture[str], tiny_model_dir: Path) -> None:
    ok = _slmtui(*GEN, "--seed", "9", "--device", "cpu")
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr == ""
    assert ok.stdout == run(capsys, *GEN, "--seed", "9")[1]

    bad = _slmtui(*GEN, "--model", "nope", "--temperature", "0.5")
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr == "slmtui: error: no model named 'nope'; models: tiny, default\n"


@pytest.mark.parametrize("source", ["yes", "/dev/zero"])
def test_a_prompt_on_stdin_that_never_ends_is_refused_at_once(tiny_model_dir: Path, source: str) -> None:
    """`yes | slmtui generate -` and `generate - < /dev/zero` once grew to many GB and never ended: the prompt
    is read with a bound (core/user_input.MAX_PROMPT_BYTES), one byte past it and the command stops."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, "-m", "slmtui", "generate", "-", "--model", "tiny", "--max-new-tokens", "5"]
    if source == "yes":
        feeder = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
        try:
            done = subprocess.run(argv, cwd=REPO, env=env, stdin=feeder.stdout, capture_output=True, text=True,
                                  timeout=60)
        finally:
            feeder.kill()
            feeder.wait()
    else:
        with open("/dev/zero", "rb") as zero:
            done = subprocess.run(argv, cwd=REPO, env=env, stdin=zero, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == "slmtui: error: standard input holds more than 1 MiB, the most a prompt may be\n"
