"""The tokenizer spec without tiktoken: model.toml's [tokenizer] table, GPT-2's spec, and the ``gpt2 | bpe:N`` grammar
that slm-train and the training form read."""

from __future__ import annotations

import pytest
import tiktoken
import tiktoken.load

from slmtui.core.errors import SlmError
from slmtui.core.paths import GPT2_RANKS_FILE
from slmtui.core.tokenizer_spec import (
    ENDOFTEXT,
    GPT2_N_VOCAB,
    GPT2_PATTERN,
    MAX_BPE_VOCAB,
    MIN_BPE_VOCAB,
    TokenizerSpec,
    gpt2_spec,
    parse_tokenizer_arg,
    read_tokenizer_arg,
    tokenizer_vocab_size,
)
from slmtui.engine.tokenizer import Tokenizer


def test_spec_from_incomplete_dict_names_the_source() -> None:
    with pytest.raises(SlmError, match=r"x/model.toml: \[tokenizer\] is incomplete"):
        TokenizerSpec.from_dict({"name": "t"}, source="x/model.toml")
    spec = TokenizerSpec(name="t", pattern=GPT2_PATTERN, special_tokens={ENDOFTEXT: 256}, n_vocab=257)
    assert TokenizerSpec.from_dict(spec.to_dict()) == spec


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


def test_the_grammar_alone_leaves_the_size_to_check() -> None:
    assert read_tokenizer_arg("bpe:9") == ("bpe", 9)
    assert [read_tokenizer_arg(bad) for bad in ("", "gpt3", "bpe", "bpe:8k")] == [None] * 4


def test_vocab_size_of_a_tokenizer_arg() -> None:
    assert tokenizer_vocab_size("gpt2") == GPT2_N_VOCAB == gpt2_spec().n_vocab
    assert tokenizer_vocab_size("bpe:8192") == 8192
    with pytest.raises(SlmError):
        tokenizer_vocab_size("bpe:9")


def test_gpt2_spec_with_the_bundled_ranks_is_tiktokens_gpt2(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = gpt2_spec()
    assert Tokenizer.gpt2().spec == spec  # the engine builds GPT-2 from this spec and paths.GPT2_RANKS_FILE
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # load_tiktoken_bpe would cache the local file by path
    enc = tiktoken.Encoding(name=spec.name, pat_str=spec.pattern, special_tokens=spec.special_tokens,
                            mergeable_ranks=tiktoken.load.load_tiktoken_bpe(str(GPT2_RANKS_FILE)),
                            explicit_n_vocab=spec.n_vocab)
    assert enc.n_vocab == 50257 and enc.eot_token == 50256
    # Known GPT-2 ids: "Hello" = 15496, " world" = 995.
    assert enc.encode_ordinary("Hello world") == [15496, 995]
    assert enc.encode_ordinary(ENDOFTEXT) != [50256]
