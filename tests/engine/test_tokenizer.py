"""Tokenizer: GPT-2 offline, special tokens typed as text, named encodings never downloaded, bad rank files."""

from __future__ import annotations

import socket
import time
from base64 import b64encode
from pathlib import Path

import pytest

from slmtui.core.errors import SlmError
from slmtui.core.tokenizer_spec import ENDOFTEXT, GPT2_PATTERN, TokenizerSpec
from slmtui.engine.tokenizer import Tokenizer


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test loudly."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the tokenizer tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def gpt2() -> Tokenizer:
    return Tokenizer.gpt2()


def test_gpt2_offline(gpt2: Tokenizer, no_network: None) -> None:
    assert gpt2.encode("Hello world") == [15496, 995]
    assert gpt2.decode([15496, 995]) == "Hello world"
    assert gpt2.n_vocab == 50257
    assert gpt2.eot_token == 50256
    assert Tokenizer.named("gpt2").encode("Hello world") == [15496, 995]


def test_typed_endoftext_is_ordinary_text(gpt2: Tokenizer) -> None:
    ids = gpt2.encode(f"The end.{ENDOFTEXT}Chapter two")
    assert 50256 not in ids
    assert gpt2.decode(ids) == f"The end.{ENDOFTEXT}Chapter two"
    assert gpt2.encode_batch([ENDOFTEXT, "Hello world"])[1] == [15496, 995]


def test_decode_never_raises_on_partial_characters(gpt2: Tokenizer) -> None:
    ids = gpt2.encode("🎉")
    assert len(ids) > 1
    assert gpt2.decode(ids[:1]) == "\ufffd"
    assert gpt2.token_text(ids[0]) == "\ufffd"


def test_rank_file_round_trip(gpt2: Tokenizer, tmp_path: Path) -> None:
    gpt2.save_ranks(tmp_path / "ranks.tiktoken")
    again = Tokenizer.from_rank_file(tmp_path / "ranks.tiktoken", gpt2.spec)
    text = "Once upon a time, naïve 東京 🎉"
    assert again.encode(text) == gpt2.encode(text)
    assert again.n_vocab == gpt2.n_vocab


def test_named_encoding_not_cached_fails_fast_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None
) -> None:
    empty = tmp_path / "tiktoken-cache"
    empty.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(empty))
    start = time.perf_counter()
    with pytest.raises(SlmError) as e:
        Tokenizer.named("cl100k_base")
    assert time.perf_counter() - start < 2.0
    message = str(e.value)
    assert "'cl100k_base' is not cached" in message
    assert "tiktoken.get_encoding('cl100k_base')" in message
    assert "TIKTOKEN_CACHE_DIR" in message
    assert list(empty.iterdir()) == []


def test_unknown_named_encoding(no_network: None) -> None:
    with pytest.raises(SlmError, match="unknown tiktoken encoding 'klingon'"):
        Tokenizer.named("klingon")


def _spec(n_vocab: int = 257) -> TokenizerSpec:
    return TokenizerSpec(name="t", pattern=GPT2_PATTERN, special_tokens={ENDOFTEXT: 256}, n_vocab=n_vocab)


def _byte_lines() -> list[bytes]:
    return [b64encode(bytes([i])) + b" %d" % i for i in range(256)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not base64!! 0\n", "line 1: expected '<base64 token> <rank>'"),
        (b"\n".join(_byte_lines()[:10]) + b"\nQUJD\n", "line 11: expected '<base64 token> <rank>'"),
        (b"\n".join(_byte_lines()[:10]) + b"\nQUJD notanumber\n", "line 11"),
        (b"", "the rank file is empty"),
        (b"\x00\xff\xfe garbage", "line 1"),
        (b"\n".join(_byte_lines()[:100]) + b"\n", "not a valid tiktoken rank file"),  # n_vocab 257 promised
    ],
)
def test_corrupt_rank_file_is_an_slm_error_naming_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "broken.tiktoken"
    path.write_bytes(content)
    with pytest.raises(SlmError) as e:
        Tokenizer.from_rank_file(path, _spec())
    assert str(path) in str(e.value)
    assert message in str(e.value)


def test_missing_rank_file(tmp_path: Path) -> None:
    with pytest.raises(SlmError, match="cannot read tokenizer file .*missing.tiktoken"):
        Tokenizer.from_rank_file(tmp_path / "missing.tiktoken", _spec())


def test_damaged_bundled_ranks_are_caught_by_checksum(tmp_path: Path) -> None:
    path = tmp_path / "r50k_base.tiktoken"
    path.write_bytes(b"\n".join(_byte_lines()) + b"\n")
    with pytest.raises(SlmError, match="sha256 does not match"):
        Tokenizer.from_rank_file(path, _spec(), expected_sha256="0" * 64)
