"""What a tokenizer is, without tiktoken: the spec model.toml's [tokenizer] table stores, GPT-2's, and the grammar
``gpt2 | bpe:N`` that slm-train's ``--tokenizer`` and the training form read.

``slmtui.engine.tokenizer.Tokenizer`` builds a tiktoken encoding from a spec and a rank file; trainer/bpe.py learns
a BPE and returns its spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from slmtui.core.errors import SlmError

ENDOFTEXT = "<|endoftext|>"
"""The one special token: it ends a text, and is never a merge (a user typing it gets ordinary text tokens)."""

# GPT-2's split pattern, verbatim from tiktoken_ext/openai_public.py (r50k_base), so the bundled rank file builds
# the same encoding as tiktoken.get_encoding("gpt2") without the network (the named encoding may not be cached).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
GPT2_RANKS_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
"""The bundled r50k_base rank file (``paths.GPT2_RANKS_FILE``), checked before it is used."""
GPT2_N_VOCAB = 50257
"""GPT-2's tokens: 50256 merges and bytes, then ``ENDOFTEXT``."""

MIN_BPE_VOCAB = 258
"""256 byte tokens + at least one merge + ``ENDOFTEXT``: fewer is not a BPE vocabulary."""
MAX_BPE_VOCAB = 65536
"""trainer/data.py stores token ids as uint16 when n_vocab <= 65536 (ids 0..65535), halving the cache and the memory
a batch reads; 65536 is also far more than a few megabytes of books can use."""


@dataclass(frozen=True)
class TokenizerSpec:
    """What builds an encoding besides its rank file: stored in model.toml's [tokenizer] table.

    ``n_vocab`` counts the special tokens; ids run 0..n_vocab-1 with no gaps.
    """

    name: str
    pattern: str
    special_tokens: dict[str, int] = field(default_factory=dict)
    n_vocab: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "pattern": self.pattern,
            "special_tokens": dict(self.special_tokens),
            "n_vocab": self.n_vocab,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object], *, source: str = "model.toml") -> TokenizerSpec:
        try:
            return cls(
                name=str(data["name"]),
                pattern=str(data["pattern"]),
                special_tokens={str(k): int(v) for k, v in dict(data.get("special_tokens", {})).items()},  # type: ignore[call-overload]
                n_vocab=int(data["n_vocab"]),  # type: ignore[call-overload]
            )
        except (KeyError, TypeError, ValueError) as e:
            raise SlmError(f"{source}: [tokenizer] is incomplete or ill-typed ({e})") from e


def gpt2_spec() -> TokenizerSpec:
    """GPT-2's encoding (r50k_base), whose ranks ship in the assets (``paths.GPT2_RANKS_FILE``)."""
    return TokenizerSpec(name="gpt2", pattern=GPT2_PATTERN, special_tokens={ENDOFTEXT: GPT2_N_VOCAB - 1},
                         n_vocab=GPT2_N_VOCAB)


TokenizerArg = tuple[Literal["gpt2"], None] | tuple[Literal["bpe"], int]
"""A ``--tokenizer`` value read: ("gpt2", None) or ("bpe", N)."""


def read_tokenizer_arg(text: str) -> TokenizerArg | None:
    """The grammar alone: ``gpt2`` (any case, spaces around) -> ("gpt2", None); ``bpe:N`` -> ("bpe", N), N not yet
    checked (``check_vocab_size``); anything else -> None."""
    value = text.strip()
    if value.lower() == "gpt2":
        return "gpt2", None
    kind, sep, size = value.partition(":")
    if kind.lower() != "bpe" or not sep:
        return None
    try:
        return "bpe", int(size)
    except ValueError:
        return None


def check_vocab_size(n: int) -> None:
    """A BPE vocabulary's size must be MIN_BPE_VOCAB to MAX_BPE_VOCAB; SlmError (exit 2) says why if not."""
    if not MIN_BPE_VOCAB <= n <= MAX_BPE_VOCAB:
        raise SlmError(
            f"a BPE vocabulary must have {MIN_BPE_VOCAB} to {MAX_BPE_VOCAB} tokens, not {n} "
            f"(256 bytes, the merges, and {ENDOFTEXT}; at most {MAX_BPE_VOCAB} so token ids fit in 16 bits)"
        )


def parse_tokenizer_arg(text: str) -> TokenizerArg:
    """``--tokenizer`` read and checked: ``read_tokenizer_arg``, then ``check_vocab_size``; else SlmError."""
    parsed = read_tokenizer_arg(text)
    if parsed is None:
        raise SlmError(f"--tokenizer must be 'gpt2' or 'bpe:N' (e.g. bpe:8192), not {text!r}")
    if parsed[0] == "bpe":
        check_vocab_size(parsed[1])
    return parsed


def tokenizer_vocab_size(text: str) -> int:
    """The tokens a ``--tokenizer`` value gives (GPT-2's 50257, or N); SlmError when it is not one."""
    kind, n = parse_tokenizer_arg(text)
    return GPT2_N_VOCAB if kind == "gpt2" else n
