"""`slm-train` end to end: a tiny model that `slmtui` loads, fine-tuning, a real Ctrl+C and resume,
and bad input (one clear line, exit 2, nothing left behind).

In-process runs call ``trainer.cli.main``; a few run ``python -m trainer`` as the TUI does, to test
what only a real process shows (signals, exit codes, what reaches stderr).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shlex
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from slmtui.core import paths
from slmtui.core.model_folder import METRICS, TRAIN_STATE
from slmtui.engine.evaluate import evaluate_texts
from slmtui.engine.model_io import load_model_dir
from trainer.cli import main
from trainer.config import FINETUNE_DROPOUT, preset
from trainer.events import CheckpointEvent, DoneEvent, ErrorEvent, EvalEvent, StartEvent, StepEvent, from_json

from excerpts import book_excerpt

REPO = Path(__file__).resolve().parents[2]
STEPS = 50
SUMMARY_FIELDS = ("corpus", "corpus_sha256", "corpus_bytes", "tokens_seen", "val_loss", "val_bpb", "wall_time_s",
                  "device", "steps", "created")


def run_main(argv: list[str]) -> tuple[int, list[str], str]:
    """``trainer.cli.main`` in-process: (exit code, stdout lines, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's errors
            code = e.code if isinstance(e.code, int) else 1
    return code, out.getvalue().splitlines(), err.getvalue()


def subprocess_env() -> dict[str, str]:
    # One thread: the same arithmetic as the in-process runs (conftest sets one thread), and no
    # fight for the two cores with a background job.
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def step_losses(lines: list[str]) -> dict[int, float]:
    events = [from_json(line) for line in lines]
    return {e.step: e.loss for e in events if isinstance(e, StepEvent)}


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "willows.txt"
    path.write_text(book_excerpt("grahame-wind-in-the-willows.txt", 24_000), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(corpus_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, list[str], str]:
    """`slm-train --preset tiny --max-steps 50` on the small corpus: (model folder, exit code, stdout, stderr)."""
    home = tmp_path_factory.mktemp("trained-home")
    out = home / "models" / "willows"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLMTUI_HOME", str(home))
        code, lines, err = run_main(["--corpus", str(corpus_file), "--preset", "tiny", "--max-steps", str(STEPS),
                                     "--out", str(out), "--progress", "jsonl"])
    return out, code, lines, err


# --------------------------------------------------------------------------- a tiny model, end to end


def test_tiny_run_finishes_and_reports(trained: tuple[Path, int, list[str], str], corpus_file: Path) -> None:
    out, code, lines, err = trained
    assert code == 0, err
    events = [from_json(line) for line in lines]  # every stdout line is an event
    assert isinstance(events[0], StartEvent) and events[0].max_steps == STEPS
    assert [e.step for e in events if isinstance(e, StepEvent)] == list(range(1, STEPS + 1))
    assert [e.step for e in events if isinstance(e, EvalEvent)] == [25, 50]
    assert [e.step for e in events if isinstance(e, CheckpointEvent)] == [25, 50]  # saved once per evaluation
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.reason == "max_steps" and done.step == STEPS
    assert "Traceback" not in err

    assert sorted(p.name for p in out.parent.iterdir()) == ["willows"]  # no temp folders beside it
    files = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "model.toml", "tokenizer.tiktoken", TRAIN_STATE, METRICS} <= files

    info = load_model_dir(out).info
    t = info.training
    missing = [k for k in SUMMARY_FIELDS if k not in t]
    assert not missing, f"model.toml [training] lacks {missing}"
    assert len(t["corpus_sha256"]) == 64 and int(t["corpus_sha256"], 16) >= 0
    assert t["corpus"] == str(corpus_file.resolve())
    assert t["corpus_bytes"] > 20_000
    assert t["tokens_seen"] == STEPS * 8 * 64  # tiny: batch 8, context 64
    assert t["steps"] == STEPS
    assert 0 < t["val_bpb"] < 8 and t["val_loss"] == pytest.approx(done.best_val_loss)
    assert t["wall_time_s"] > 0 and t["device"] == "cpu"
    assert "parent" not in t  # trained from scratch

    metrics = [json.loads(line) for line in (out / METRICS).read_text().splitlines()]
    assert [m["step"] for m in metrics if m["event"] == "step"] == list(range(1, STEPS + 1))
    assert [m["step"] for m in metrics if m["event"] == "eval"] == [25, 50]
    assert all(math.isfinite(m["loss"]) for m in metrics if m["event"] == "step")

    state = torch.load(out / TRAIN_STATE, map_location="cpu", weights_only=True)
    assert state["step"] == STEPS


def test_training_metrics_png_is_written(trained: tuple[Path, int, list[str], str]) -> None:
    pytest.importorskip("matplotlib")
    out = trained[0]
    assert (out / "training_metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_model_loads_with_slmtui_generate_and_eval(
    trained: tuple[Path, int, list[str], str], corpus_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = trained[0]
    from slmtui.cli import main as slmtui_main

    assert slmtui_main(["generate", "The Mole", "--model", str(out), "--seed", "3", "--max-new-tokens", "24"]) == 0
    written = capsys.readouterr()
    assert written.out.strip() and "error" not in written.err

    # `slmtui eval` on the corpus's held-out split scores the model exactly as the trainer did.
    assert slmtui_main(["eval", "--model", str(out), "--corpus", str(corpus_file), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    info = load_model_dir(out).info
    assert report["loss"] == pytest.approx(info.training["val_loss"], abs=1e-5)
    assert report["bits_per_byte"] == pytest.approx(info.training["val_bpb"], abs=1e-5)

    # And a plain text file through the engine API, as the TUI will.
    loaded = load_model_dir(out)
    result = evaluate_texts(loaded.model, loaded.tokenizer, ["The Rat and the Mole went down to the river."])
    assert result.tokens > 5 and math.isfinite(result.loss) and result.loss < math.log(512)


@pytest.mark.slow
def test_init_from_fine_tunes_and_records_the_parent(trained: tuple[Path, int, list[str], str], tmp_path: Path) -> None:
    parent = trained[0]
    other = tmp_path / "alice.txt"
    other.write_text(book_excerpt("carroll-alices-adventures-in-wonderland.txt", 10_000), encoding="utf-8")
    text = other.read_text(encoding="utf-8")
    before_model = load_model_dir(parent)
    before = evaluate_texts(before_model.model, before_model.tokenizer, [text])

    out = tmp_path / "models" / "alice"
    code, lines, err = run_main(["--corpus", str(other), "--init-from", str(parent), "--preset", "tiny",
                                 "--max-steps", "20", "--out", str(out), "--progress", "jsonl"])
    assert code == 0, err
    tuned = load_model_dir(out)
    after = evaluate_texts(tuned.model, tuned.tokenizer, [text])
    assert after.loss < before.loss - 0.1, (before.loss, after.loss)
    assert tuned.info.training["parent"] == str(parent)
    # the parent's architecture (dropout is the fine-tune's own, a training setting)...
    assert tuned.info.config == replace(before_model.info.config, dropout=FINETUNE_DROPOUT)
    assert tuned.tokenizer.spec == before_model.tokenizer.spec  # ...and its tokenizer
    # It started from the parent's weights: its first loss is the parent's, far below a fresh model's.
    assert step_losses(lines)[1] < math.log(512) - 0.5


def test_init_from_refuses_architecture_overrides(trained: tuple[Path, int, list[str], str], tmp_path: Path) -> None:
    code, lines, err = run_main(["--corpus", str(tmp_path), "--init-from", str(trained[0]), "--n-layer", "4",
                                 "--out", str(tmp_path / "m"), "--progress", "none"])
    assert code == 2 and "--n-layer" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


# --------------------------------------------------------------------------- Ctrl+C and --resume


@pytest.mark.slow
def test_sigint_saves_and_the_resumed_run_matches(
    trained: tuple[Path, int, list[str], str], corpus_file: Path, tmp_path: Path
) -> None:
    """A real process, a real SIGINT at step k, `--resume`: the losses of an uninterrupted run.

    The uninterrupted run is ``trained``: the same corpus, preset, seed and --max-steps.
    """
    n, k = STEPS, 8
    reference = step_losses(trained[2])
    out = tmp_path / "models" / "interrupted"
    argv = ["--corpus", str(corpus_file), "--preset", "tiny", "--max-steps", str(n), "--out", str(out),
            "--progress", "jsonl"]
    proc = subprocess.Popen([sys.executable, "-m", "trainer", *argv], cwd=REPO,
                            env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first: list[str] = []
    try:
        while line := proc.stdout.readline():  # type: ignore[union-attr]
            first.append(line)
            event = from_json(line)
            if isinstance(event, StepEvent) and event.step >= k:
                proc.send_signal(signal.SIGINT)
                break
        rest, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    first += rest.splitlines()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    done = from_json(first[-1])
    assert isinstance(done, DoneEvent) and done.reason == "interrupted" and k <= done.step < n
    assert done.resume_command == f"slm-train --resume --out {out}"
    resume_lines = [line for line in err.splitlines() if line.startswith("resume with: ")]
    assert resume_lines == [f"resume with: {done.resume_command}"]
    state = torch.load(out / TRAIN_STATE, map_location="cpu", weights_only=True)
    assert state["step"] == done.step
    interrupted = step_losses(first)
    for step in range(1, done.step + 1):
        assert interrupted[step] == pytest.approx(reference[step], abs=1e-4), step

    # Resume with exactly the command it printed.
    command = shlex.split(resume_lines[0].removeprefix("resume with: "))
    assert command[0] == "slm-train"
    code, resumed_lines, err2 = run_main([*command[1:], "--progress", "jsonl"])
    assert code == 0, err2
    resumed = step_losses(resumed_lines)
    assert sorted(resumed) == list(range(done.step + 1, n + 1))
    for step in range(done.step + 1, n + 1):
        assert resumed[step] == pytest.approx(reference[step], abs=1e-4), step
    assert load_model_dir(out).info.training["tokens_seen"] == n * 8 * 64


# --------------------------------------------------------------------------- bad input


def _corpus_case(tmp_path: Path, case: str) -> Path:
    if case == "missing":
        return tmp_path / "no-such-folder"
    folder = tmp_path / case
    folder.mkdir()
    if case == "binary":
        (folder / "book.txt").write_bytes(bytes(range(256)) * 20)
    elif case == "non-utf8":
        (folder / "book.txt").write_bytes("Caf\u00e9 au lait, na\u00efve \u00e9l\u00e8ve.\n\n".encode("latin-1") * 50)
    elif case == "tiny":
        (folder / "book.txt").write_text(book_excerpt("grahame-wind-in-the-willows.txt", 4_000), encoding="utf-8")
    return folder


BAD_INPUT = {
    # case id: (corpus, extra arguments, words the message must contain)
    "missing corpus": ("missing", [], "not found"),
    "empty folder": ("empty", [], "no .txt or .md files"),
    "binary file": ("binary", [], "binary"),
    "non-UTF-8 file": ("non-utf8", [], "UTF-8"),
    "context longer than the corpus": ("tiny", ["--block-size", "4096"], "block-size"),
    "unknown preset": ("tiny", ["--preset", "enormous"], "unknown preset"),
    "negative lr": ("tiny", ["--lr", "-1"], "lr"),
    "zero batch": ("tiny", ["--batch-size", "0"], "batch_size"),
    "bad time limit": ("tiny", ["--time-limit", "abc"], "abc"),
    "tiny BPE": ("tiny", ["--tokenizer", "bpe:10"], "258"),
    "unknown tokenizer": ("tiny", ["--tokenizer", "sentencepiece"], "--tokenizer"),
    "bad n_head": ("tiny", ["--n-head", "3"], "n_head"),
    "no such parent": ("tiny", ["--init-from", "no-such-model"], "no-such-model"),
    "no CUDA": ("tiny", ["--device", "cuda"], "cuda"),
}


def _assert_one_clear_error(code: int, stdout: list[str], err: str, words: str, out: Path, progress: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("slm-train: error: ") and words.lower() in lines[0].lower(), lines[0]
    if progress == "jsonl" and stdout:  # the TUI reads the same message as an error event
        event = from_json(stdout[-1])
        assert isinstance(event, ErrorEvent) and event.message in lines[0]
    # Nothing half-written: no model folder, no temporary folder beside it.
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())
    assert not paths.models_dir().exists() or not any(paths.models_dir().iterdir())


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_clear_line_and_exit_2(case: str, tmp_path: Path) -> None:
    corpus_case, extra, words = BAD_INPUT[case]
    out = tmp_path / "models" / "m"
    argv = ["--corpus", str(_corpus_case(tmp_path, corpus_case)), "--preset", "tiny", "--max-steps", "5",
            "--out", str(out), "--progress", "jsonl", *extra]
    code, stdout, err = run_main(argv)
    _assert_one_clear_error(code, stdout, err, words, out, "jsonl")


@pytest.mark.parametrize("case", ["missing corpus", "bad time limit"])
def test_bad_input_in_a_real_process(case: str, tmp_path: Path) -> None:
    """As a user (or the TUI) sees it: the exit status and stderr of `python -m trainer`."""
    corpus_case, extra, words = BAD_INPUT[case]
    out = tmp_path / "models" / "m"
    argv = ["--corpus", str(_corpus_case(tmp_path, corpus_case)), "--preset", "tiny", "--max-steps", "5",
            "--out", str(out), *extra]
    proc = subprocess.run([sys.executable, "-m", "trainer", *argv], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    _assert_one_clear_error(proc.returncode, proc.stdout.splitlines(), proc.stderr, words, out, "none")
    assert proc.stdout == ""


def test_named_model_that_exists_is_not_overwritten(trained: tuple[Path, int, list[str], str], tmp_path: Path) -> None:
    before = (trained[0] / "model.safetensors").read_bytes()
    code, _, err = run_main(["--corpus", str(tmp_path), "--preset", "tiny", "--max-steps", "5",
                             "--out", str(trained[0]), "--progress", "none"])
    assert code == 2 and "already holds a model" in err and "Traceback" not in err
    assert (trained[0] / "model.safetensors").read_bytes() == before


def test_a_bad_file_beside_good_ones_is_named_and_skipped(tmp_path: Path) -> None:
    corpus = tmp_path / "books"
    corpus.mkdir()
    (corpus / "good.txt").write_text(book_excerpt("grahame-wind-in-the-willows.txt", 12_000), encoding="utf-8")
    (corpus / "bad.txt").write_bytes(b"\xff\xfe\x00\x01" * 100)
    code, _, err = run_main(["--corpus", str(corpus), "--preset", "tiny", "--max-steps", "2",
                             "--name", "books", "--progress", "none"])
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "bad.txt" in warnings[0]
    assert (paths.models_dir() / "books" / "model.toml").is_file()  # --name: in the user's models folder


def test_recipe_flags_reach_the_model_and_the_loop(tmp_path: Path) -> None:
    from trainer.cli import build_parser, spec_from_args

    args = build_parser().parse_args([
        "--preset", "default", "--out", str(tmp_path / "m"), "--max-steps", "5", "--pos-emb", "rope", "--norm", "rmsnorm",
        "--qk-norm", "--mlp", "relu2", "--zero-init-proj", "--no-tie-embeddings", "--logit-softcap", "15",
        "--optimizer", "muon", "--no-fused", "--val-books", "lang-crimson-fairy-book,stevenson-treasure-island"])
    spec = spec_from_args(args)
    m = spec.model
    assert (m.pos_emb, m.norm, m.qk_norm, m.mlp, m.zero_init_proj, m.tie_embeddings, m.logit_softcap) == \
        ("rope", "rmsnorm", True, "relu2", True, False, 15.0)
    assert (spec.train.optimizer, spec.train.fused) == ("muon", False)
    assert spec.train.val_books == "lang-crimson-fairy-book,stevenson-treasure-island"
    plain = spec_from_args(build_parser().parse_args(["--preset", "default", "--out", str(tmp_path / "n"), "--max-steps", "5"]))
    assert plain.model == preset("default").model and plain.train.optimizer == "muon" and plain.train.fused


def test_an_explicit_eval_interval_is_used_as_given(tmp_path: Path) -> None:
    """The default preset evaluates at least once a pass over a small corpus; --eval-interval turns that off."""
    from trainer.cli import build_parser, spec_from_args

    plain = spec_from_args(build_parser().parse_args(["--preset", "default", "--out", str(tmp_path / "n"), "--max-steps", "5"]))
    assert plain.train.evals_per_pass == 1 and plain.train.eval_interval == 200
    given = spec_from_args(build_parser().parse_args(["--preset", "default", "--out", str(tmp_path / "g"), "--max-steps", "5",
                                                      "--eval-interval", "300"]))
    assert given.train.evals_per_pass is None and given.train.eval_interval == 300
