"""Choose a tokenizer: GPT-2's, or a byte-level BPE vocabulary trained on the corpus.

rustbpe (a well-kept Rust trainer) learns the merges; the result is written as a tiktoken rank
file, so tiktoken does all encoding and a model folder carries its own tokenizer.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import rustbpe

from slmtui.engine.atomic import write_bytes_atomic
from slmtui.engine.errors import SlmError
from slmtui.engine.paths import GPT2_RANKS_FILE

ENDOFTEXT = "<|endoftext|>"
RANKS_FILENAME = "tokenizer.tiktoken"

# GPT-2's split pattern, verbatim from tiktoken_ext/openai_public.py (r50k_pat_str): the named
# encoding may not be cached on an offline machine, but the bundled rank file plus this builds it.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""

# The GPT-4 style split pattern, exactly as rustbpe 0.1 uses by default; passed explicitly so a
# new rustbpe default cannot change our vocabularies. Chosen over GPT-2's because it compresses
# the bundled corpus better at small sizes (held-out bytes/token: 3.88 vs 3.69 at 4096 tokens,
# 4.26 vs 4.01 at 8192): a leading quote or dash joins the word after it ("‘Twas", "--oh"),
# and newlines group with the punctuation before them.
GPT4_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
    r"""|\s*[\r\n]|\s+(?!\S)|\s+"""
)

# 256 byte tokens + at least one merge + <|endoftext|>: fewer is not a BPE vocabulary.
MIN_BPE_VOCAB = 258
# data.py stores token ids as uint16 when n_vocab <= 65536 (ids 0..65535), halving the cache
# and the memory a batch reads; 65536 is also far more than a few megabytes of books can use.
MAX_BPE_VOCAB = 65536


@dataclass(frozen=True)
class TokenizerSpec:
    """Everything that rebuilds a ``tiktoken.Encoding``: the rank file plus what it lacks.

    ``n_vocab`` counts the special tokens; ids run 0..n_vocab-1 with no gaps.
    """

    name: str
    pattern: str
    special_tokens: dict[str, int]
    n_vocab: int
    ranks_file: Path


def parse_tokenizer_arg(s: str) -> tuple[Literal["gpt2"], None] | tuple[Literal["bpe"], int]:
    """``gpt2`` -> ("gpt2", None); ``bpe:N`` -> ("bpe", N) with N checked; else SlmError."""
    value = s.strip()
    if value.lower() == "gpt2":
        return "gpt2", None
    usage = f"--tokenizer must be 'gpt2' or 'bpe:N' (e.g. bpe:8192), not {s!r}"
    kind, sep, size = value.partition(":")
    if kind.lower() != "bpe" or not sep:
        raise SlmError(usage)
    try:
        n = int(size)
    except ValueError:
        raise SlmError(usage) from None
    _check_vocab_size(n)
    return "bpe", n


def _check_vocab_size(n: int) -> None:
    if not MIN_BPE_VOCAB <= n <= MAX_BPE_VOCAB:
        raise SlmError(
            f"a BPE vocabulary must have {MIN_BPE_VOCAB} to {MAX_BPE_VOCAB} tokens, not {n} "
            f"(256 bytes, the merges, and {ENDOFTEXT}; at most 65536 so token ids fit in 16 bits)"
        )


def gpt2_spec() -> TokenizerSpec:
    """GPT-2's encoding (r50k_base, 50257 tokens) from the rank file bundled in the assets."""
    return TokenizerSpec(
        name="gpt2",
        pattern=GPT2_PATTERN,
        special_tokens={ENDOFTEXT: 50256},
        n_vocab=50257,
        ranks_file=GPT2_RANKS_FILE,
    )


def train_bpe(
    texts: Iterable[str], vocab_size: int, out_dir: Path, *, name: str | None = None
) -> TokenizerSpec:
    """Learn ``vocab_size - 257`` merges on ``texts`` and write ``out_dir/tokenizer.tiktoken``.

    Train on the training split only, so validation text is as new to the tokenizer as to the
    model. ``<|endoftext|>`` gets the last id, ``vocab_size - 1``; it is a special token, never a
    merge, so a user typing it gets ordinary text tokens. The result is deterministic.
    """
    _check_vocab_size(vocab_size)
    tokenizer = rustbpe.Tokenizer()
    # rustbpe's vocab_size counts the 256 byte tokens and the merges; the special token is ours.
    tokenizer.train_from_iterator(iter(texts), vocab_size - 1, pattern=GPT4_PATTERN)
    ranks = sorted(tokenizer.get_mergeable_ranks(), key=lambda pair: pair[1])
    n_mergeable = len(ranks)
    if n_mergeable < vocab_size - 1:
        # rustbpe stops when no pair of tokens occurs twice: the text is too small for N.
        raise SlmError(
            f"the training text is too small for a {vocab_size}-token vocabulary: it yields at most "
            f"{n_mergeable + 1} tokens; use --tokenizer bpe:{n_mergeable + 1} or less, or more text"
        )
    if [rank for _, rank in ranks] != list(range(n_mergeable)):
        raise AssertionError("rustbpe returned ranks with gaps")  # a bug, not a user error

    ranks_file = Path(out_dir) / RANKS_FILENAME
    # tiktoken's .tiktoken format (see tiktoken.load.dump_tiktoken_bpe): "base64(bytes) rank\n".
    lines = b"".join(base64.b64encode(bytes(token)) + b" %d\n" % rank for token, rank in ranks)
    write_bytes_atomic(ranks_file, lines)
    return TokenizerSpec(
        name=name or f"slmtui-bpe-{vocab_size}",
        pattern=tokenizer.get_pattern(),
        special_tokens={ENDOFTEXT: vocab_size - 1},
        n_vocab=vocab_size,
        ranks_file=ranks_file,
    )
