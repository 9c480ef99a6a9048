"""slmtui/format.py: how numbers and models read, the same in the CLI and the TUI."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from slmtui.core.gpt_config import GPTConfig
from slmtui.core.model_folder import ModelInfo
from slmtui.core.tokenizer_spec import ENDOFTEXT, GPT2_PATTERN, TokenizerSpec
from slmtui.format import ago, corpus, created, human_bytes, human_duration, model_details, number, params


def test_numbers() -> None:
    assert [params(n) for n in (999, 169_728, 6_923_520, 1_500_000_000)] == ["999", "169.7K", "6.9M", "1.5B"]
    assert [human_bytes(n) for n in (12, 1_234, 1_234_567, 5 * 10**12)] == ["12 B", "1.2 KB", "1.2 MB", "5000.0 GB"]
    assert [human_duration(s) for s in (None, float("inf"), 42, 125, 7380)] == ["–", "–", "42s", "2m05s", "2h03m"]
    assert number(2.45678) == "2.457" and number(None) == "–" and number(True) == "–" and number("x") == "–"


def test_files_values() -> None:
    assert created("2026-03-14T09:26:53Z") == "2026-03-14 09:26" and created(None) == "–"
    assert created("not a time at all") == "not a time at all"[:16]
    assert corpus("bundled") == "bundled novels" and corpus("/home/r/books") == "books" and corpus(3) == "–"


def test_ago() -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
    cases = {timedelta(seconds=5): "just now", timedelta(minutes=5): "5 min ago", timedelta(hours=3): "3 h ago",
             timedelta(hours=30): "yesterday"}
    for delta, words in cases.items():
        assert ago(now - delta, now) == words
    assert ago(now - timedelta(days=40), now).startswith("2026-03")


def test_model_details_say_what_model_toml_says(tmp_path: Path) -> None:
    config = GPTConfig(vocab_size=512, block_size=64, n_layer=2, n_head=2, n_embd=64, dropout=0.0)
    spec = TokenizerSpec(name="bpe-512", pattern=GPT2_PATTERN, special_tokens={ENDOFTEXT: 511}, n_vocab=512)
    info = ModelInfo(path=tmp_path / "m", config=config, tokenizer=spec,
                     training={"corpus": "bundled", "corpus_bytes": 2_000_000, "steps": 300, "val_loss": 3.14159,
                               "stopped": "interrupted"})
    lines = model_details(info)
    assert lines[0].startswith(f"{params(config.param_count)} parameters · 2 layers × 64 wide")
    assert "corpus bundled novels (2.0 MB)" in lines[1] and "300 steps" in lines[1]
    assert "validation loss 3.142" in lines[2] and "resume" not in lines[2], "no train_state.pt: not resumable"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "train_state.pt").write_bytes(b"")
    assert "stopped early: resume it on the training screen" in model_details(info)[2]
