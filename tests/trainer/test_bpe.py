"""trainer.bpe: parsing --tokenizer, training a BPE rank file that tiktoken loads, GPT-2's spec."""

from __future__ import annotations

from pathlib import Path

import pytest
import tiktoken
import tiktoken.load

from slmtui.engine.errors import SlmError
from slmtui.engine.paths import BUNDLED_CORPUS_DIR, GPT2_RANKS_FILE
from trainer.bpe import (
    ENDOFTEXT,
    MAX_BPE_VOCAB,
    MIN_BPE_VOCAB,
    TokenizerSpec,
    gpt2_spec,
    parse_tokenizer_arg,
    train_bpe,
)

MIXED = "Café déjà vu, naïve façade. 東京は雨です。 Emoji: 🐉🦁✨. Tabs\tand\nnewlines\n\n"


@pytest.fixture(scope="module")
def texts() -> list[str]:
    book = (BUNDLED_CORPUS_DIR / "carroll-alices-adventures-in-wonderland.txt").read_text(encoding="utf-8")
    return [book[:20_000], book[20_000:40_000], MIXED * 3]


@pytest.fixture(scope="module")
def spec(texts: list[str], tmp_path_factory: pytest.TempPathFactory) -> TokenizerSpec:
    return train_bpe(texts, 500, tmp_path_factory.mktemp("tok"))


def encoding(spec: TokenizerSpec, monkeypatch: pytest.MonkeyPatch) -> tiktoken.Encoding:
    # load_tiktoken_bpe caches even local files by path in a temp dir (so a retrained file at the
    # same path would load stale); an empty TIKTOKEN_CACHE_DIR turns that cache off.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    return tiktoken.Encoding(
        name=spec.name,
        pat_str=spec.pattern,
        mergeable_ranks=tiktoken.load.load_tiktoken_bpe(str(spec.ranks_file)),
        special_tokens=spec.special_tokens,
        explicit_n_vocab=spec.n_vocab,
    )


def test_rank_file_loads_in_tiktoken_with_the_right_sizes(
    spec: TokenizerSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    enc = encoding(spec, monkeypatch)
    assert spec.ranks_file.name == "tokenizer.tiktoken"
    assert spec.n_vocab == enc.n_vocab == 500
    assert spec.special_tokens == {ENDOFTEXT: 499}
    assert enc.eot_token == 499
    assert enc.max_token_value == 499
    ranks = tiktoken.load.load_tiktoken_bpe(str(spec.ranks_file))
    assert sorted(ranks.values()) == list(range(499))
    assert all(ranks[bytes([b])] == b for b in range(256))  # every byte is a token: nothing is unencodable
    assert not list(spec.ranks_file.parent.glob("*.tmp"))  # written atomically, no leftovers


@pytest.mark.parametrize(
    "text",
    [
        MIXED,
        "Ünïcödé ÀÉÎÕÜ ñ ß ø",
        "漢字かなカナ한국어",
        "👩‍👩‍👧 family, 🇫🇷 flag, 🐉",
        "",
        "   \n\n\t",
        "x" * 1000,
    ],
)
def test_round_trip(spec: TokenizerSpec, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    enc = encoding(spec, monkeypatch)
    ids = enc.encode_ordinary(text)
    assert enc.decode(ids) == text
    assert all(0 <= i < spec.n_vocab - 1 for i in ids)


def test_round_trip_on_corpus_text_and_compression(
    spec: TokenizerSpec, texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    enc = encoding(spec, monkeypatch)
    ids = enc.encode_ordinary(texts[0])
    assert enc.decode(ids) == texts[0]
    assert len(texts[0].encode("utf-8")) / len(ids) > 2.0  # merges were learned and are used


def test_typed_endoftext_is_ordinary_text(spec: TokenizerSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    enc = encoding(spec, monkeypatch)
    text = f"The end.{ENDOFTEXT}Next story"
    ids = enc.encode_ordinary(text)
    assert spec.special_tokens[ENDOFTEXT] not in ids
    assert enc.decode(ids) == text
    with pytest.raises(ValueError):  # why the trainer and the app use encode_ordinary
        enc.encode(text)


def test_training_is_deterministic(texts: list[str], spec: TokenizerSpec, tmp_path: Path) -> None:
    again = train_bpe(iter(texts), 500, tmp_path, name="again")
    assert again.name == "again"
    assert again.pattern == spec.pattern
    assert again.ranks_file.read_bytes() == spec.ranks_file.read_bytes()


def test_too_little_text_for_the_vocabulary(tmp_path: Path) -> None:
    with pytest.raises(SlmError, match=r"too small for a 4096-token vocabulary.*bpe:\d+"):
        train_bpe(["tiny text, tiny text"], 4096, tmp_path)
    assert not (tmp_path / "tokenizer.tiktoken").exists()


def test_gpt2_spec_matches_tiktoken_gpt2(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = gpt2_spec()
    assert spec.ranks_file == GPT2_RANKS_FILE
    enc = encoding(spec, monkeypatch)
    assert enc.n_vocab == 50257 and enc.eot_token == 50256
    # Known GPT-2 ids: "Hello" = 15496, " world" = 995.
    assert enc.encode_ordinary("Hello world") == [15496, 995]
    assert enc.encode_ordinary(ENDOFTEXT) != [50256]


@pytest.mark.parametrize(
    "arg, expected",
    [("gpt2", ("gpt2", None)), (" GPT2 ", ("gpt2", None)), ("bpe:8192", ("bpe", 8192)),
     ("BPE:258", ("bpe", MIN_BPE_VOCAB)), ("bpe:65536", ("bpe", MAX_BPE_VOCAB))],
)
def test_parse_tokenizer_arg(arg: str, expected: tuple[str, int | None]) -> None:
    assert parse_tokenizer_arg(arg) == expected


@pytest.mark.parametrize(
    "arg, message",
    [
        *[(bad, "must be 'gpt2' or 'bpe:N'") for bad in ("", "gpt3", "bpe", "bpe:", "bpe:8k", "bpe:1.5", "8192")],
        *[(bad, "258 to 65536") for bad in ("bpe:257", "bpe:0", "bpe:-5", "bpe:65537")],
    ],
)
def test_parse_tokenizer_arg_errors(arg: str, message: str) -> None:
    with pytest.raises(SlmError, match=message) as info:
        parse_tokenizer_arg(arg)
    assert info.value.exit_code == 2


def test_train_bpe_checks_the_size(tmp_path: Path) -> None:
    with pytest.raises(SlmError, match="258 to 65536"):
        train_bpe(["some text"], 257, tmp_path)
