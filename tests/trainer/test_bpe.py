"""trainer.bpe: training a BPE rank file that tiktoken loads (the --tokenizer grammar is tests/core/test_tokenizer_spec.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import tiktoken
import tiktoken.load

from slmtui.core.errors import SlmError
from slmtui.core.model_folder import TOKENIZER
from slmtui.core.paths import BUNDLED_CORPUS_DIR
from slmtui.core.tokenizer_spec import ENDOFTEXT, TokenizerSpec
from trainer.bpe import train_bpe

MIXED = "Café déjà vu, naïve façade. 東京は雨です。 Emoji: 🐉🦁✨. Tabs\tand\nnewlines\n\n"


@pytest.fixture(scope="module")
def texts() -> list[str]:
    book = (BUNDLED_CORPUS_DIR / "carroll-alices-adventures-in-wonderland.txt").read_text(encoding="utf-8")
    return [book[:20_000], book[20_000:40_000], MIXED * 3]


@pytest.fixture(scope="module")
def bpe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tok")


@pytest.fixture(scope="module")
def spec(texts: list[str], bpe_dir: Path) -> TokenizerSpec:
    return train_bpe(texts, 500, bpe_dir)


@pytest.fixture
def enc(spec: TokenizerSpec, bpe_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tiktoken.Encoding:
    return encoding(spec, bpe_dir / TOKENIZER, monkeypatch)


def encoding(spec: TokenizerSpec, ranks_file: Path, monkeypatch: pytest.MonkeyPatch) -> tiktoken.Encoding:
    # load_tiktoken_bpe caches even local files by path in a temp dir (so a retrained file at the
    # same path would load stale); an empty TIKTOKEN_CACHE_DIR turns that cache off.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    return tiktoken.Encoding(
        name=spec.name,
        pat_str=spec.pattern,
        mergeable_ranks=tiktoken.load.load_tiktoken_bpe(str(ranks_file)),
        special_tokens=spec.special_tokens,
        explicit_n_vocab=spec.n_vocab,
    )


def test_rank_file_loads_in_tiktoken_with_the_right_sizes(spec: TokenizerSpec, bpe_dir: Path,
                                                           enc: tiktoken.Encoding) -> None:
    ranks_file = bpe_dir / TOKENIZER
    assert ranks_file.name == "tokenizer.tiktoken"
    assert spec.n_vocab == enc.n_vocab == 500
    assert spec.special_tokens == {ENDOFTEXT: 499}
    assert enc.eot_token == 499
    assert enc.max_token_value == 499
    ranks = tiktoken.load.load_tiktoken_bpe(str(ranks_file))
    assert sorted(ranks.values()) == list(range(499))
    assert all(ranks[bytes([b])] == b for b in range(256))  # every byte is a token: nothing is unencodable
    assert not list(bpe_dir.glob("*.tmp"))  # written atomically, no leftovers


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
def test_round_trip(spec: TokenizerSpec, enc: tiktoken.Encoding, text: str) -> None:
    ids = enc.encode_ordinary(text)
    assert enc.decode(ids) == text
    assert all(0 <= i < spec.n_vocab - 1 for i in ids)


def test_round_trip_on_corpus_text_and_compression(texts: list[str], enc: tiktoken.Encoding) -> None:
    ids = enc.encode_ordinary(texts[0])
    assert enc.decode(ids) == texts[0]
    assert len(texts[0].encode("utf-8")) / len(ids) > 2.0  # merges were learned and are used


def test_typed_endoftext_is_ordinary_text(spec: TokenizerSpec, enc: tiktoken.Encoding) -> None:
    text = f"The end.{ENDOFTEXT}Next story"
    ids = enc.encode_ordinary(text)
    assert spec.special_tokens[ENDOFTEXT] not in ids
    assert enc.decode(ids) == text
    with pytest.raises(ValueError):  # why the trainer and the app use encode_ordinary
        enc.encode(text)


def test_training_is_deterministic(texts: list[str], spec: TokenizerSpec, bpe_dir: Path, tmp_path: Path) -> None:
    again = train_bpe(iter(texts), 500, tmp_path, name="again")
    assert again.name == "again"
    assert again.pattern == spec.pattern
    assert (tmp_path / TOKENIZER).read_bytes() == (bpe_dir / TOKENIZER).read_bytes()


def test_too_little_text_for_the_vocabulary(tmp_path: Path) -> None:
    with pytest.raises(SlmError, match=r"too small for a 4096-token vocabulary.*bpe:\d+"):
        train_bpe(["tiny text, tiny text"], 4096, tmp_path)
    assert not (tmp_path / "tokenizer.tiktoken").exists()


def test_train_bpe_checks_the_size(tmp_path: Path) -> None:
    with pytest.raises(SlmError, match="258 to 65536"):
        train_bpe(["some text"], 257, tmp_path)
