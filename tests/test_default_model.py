"""The bundled default model: a valid folder whose numbers are true and whose text does not loop."""

from __future__ import annotations

import os
import re
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from slmtui.core.model_catalog import bundled_default, resolve_model
from slmtui.core.paths import BUNDLED_CORPUS_DIR
from slmtui.engine.decode_paths import EXACT
from slmtui.engine.evaluate import evaluate_texts
from slmtui.engine.generate import Generator
from slmtui.engine.model_io import load_model_dir
from slmtui.engine.threads import threads_context
from slmtui.core.sampling import Sampling
from tests.processes import cores_per_worker
from trainer.corpus import Corpus, corpus_fingerprint, model_split, read_corpus

README = Path(__file__).resolve().parents[1] / "README.md"
SAMPLE = re.compile(r"```console\n\$ slmtui generate '(?P<prompt>[^']+)' --seed (?P<seed>\d+)(?: --path (?P<path>\S+))?\n```\n\n"
                    r"(?P<text>(?:> .*\n|>\n)+)")


def readme_samples() -> list[tuple[str, int, str, str]]:
    """The README's five samples (section "The default model"): prompt, seed, decoding path, the text shown."""
    section = README.read_text(encoding="utf-8").split("## The default model", 1)[1].split("\n## ", 1)[0]
    found = [(m["prompt"], int(m["seed"]), m["path"] or EXACT,
              "\n".join(line[2:] for line in m["text"].rstrip("\n").split("\n")))
             for m in SAMPLE.finditer(section)]
    assert len(found) == 5, "README shows five samples"
    return found


@pytest.fixture(scope="module")
def default():
    return load_model_dir(bundled_default())


def test_the_default_model_is_found_by_name_and_valid(default) -> None:
    assert resolve_model(None) == bundled_default()
    assert default.info.bundled
    meta = tomllib.loads((bundled_default() / "model.toml").read_text())
    assert meta["weights"]["dtype"] in ("bfloat16", "float16")
    size = sum(f.stat().st_size for f in bundled_default().iterdir())
    assert size <= 30 * 2**20, f"{size} bytes"
    assert not (bundled_default() / "train_state.pt").exists()
    for key in ("corpus_sha256", "tokens_seen", "val_bpb", "wall_time_s", "device"):
        assert key in default.info.training


def test_its_tokenizer_round_trips_the_corpus(default) -> None:
    corpus = read_corpus(BUNDLED_CORPUS_DIR)
    sample = "".join(d.text[:20_000] for d in corpus.documents[:5])
    ids = default.tokenizer.encode(sample)
    assert default.tokenizer.decode(ids) == sample
    assert len(sample.encode()) / len(ids) > 3.5  # an 8k BPE fitted to these books compresses well


FULL_CHECKS = os.environ.get("SLMTUI_FULL_CHECKS") == "1"


def trained_split(default):
    """The model's validation and held-out text, after proving the bundled corpus is the text it trained on
    (model.toml names the books, corpus_books, when the bundled corpus has grown since)."""
    corpus = read_corpus(BUNDLED_CORPUS_DIR)
    books = default.info.training.get("corpus_books")
    trained = Corpus(corpus.path, tuple(d for d in corpus.documents if books is None or d.name in books))
    assert corpus_fingerprint(trained) == default.info.training["corpus_sha256"]
    return model_split(corpus, default.info.training)


@pytest.mark.slow
def test_a_sample_of_the_val_text_scores_near_the_val_bpb_in_model_toml(default) -> None:
    """Every eighth book's validation text (about 90k tokens) scores within 0.05 of the whole figure: a wrong
    tokenizer, weight file or split is off by far more. The whole text (740k tokens, three minutes on two
    cores) is checked exactly by the test below with SLMTUI_FULL_CHECKS=1."""
    val = trained_split(default).val
    with threads_context(cores_per_worker()):
        result = evaluate_texts(default.model, default.tokenizer, val[::8])
    assert abs(result.bits_per_byte - float(default.info.training["val_bpb"])) < 0.05


@pytest.mark.skipif(not FULL_CHECKS, reason="the whole validation and held-out text: SLMTUI_FULL_CHECKS=1")
@pytest.mark.parametrize("split", ["val", "heldout"])
def test_eval_reproduces_the_figures_in_model_toml(default, split: str) -> None:
    texts = getattr(trained_split(default), split)
    with threads_context(cores_per_worker()):
        result = evaluate_texts(default.model, default.tokenizer, texts)
    assert round(result.bits_per_byte, 3) == round(float(default.info.training[f"{split}_bpb"]), 3)


@pytest.mark.parametrize("sample", readme_samples(), ids=lambda s: f"seed{s[1]}")
def test_the_readme_samples_replay_and_do_not_loop(default, sample: tuple[str, int, str, str]) -> None:
    """Each sample is what its command prints (same seed, same path, default sampling, 120 new tokens), and no
    8-token sequence appears in it more than twice."""
    prompt, seed, path, shown = sample
    events = list(Generator(default.model, default.tokenizer, path=path).stream(prompt, Sampling(seed=seed, max_new_tokens=120)))
    ids = [e.token_id for e in events]
    assert len(ids) == 120
    assert (prompt + "".join(e.text for e in events)).rstrip() == shown
    grams = Counter(tuple(ids[i : i + 8]) for i in range(len(ids) - 7))
    assert max(grams.values()) <= 2
