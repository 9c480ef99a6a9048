"""Train a byte-level BPE vocabulary on the corpus (GPT-2's ready-made one is ``slmtui.core.tokenizer_spec``).

rustbpe (a well-kept Rust trainer) learns the merges; the result is written as a tiktoken rank
file, so tiktoken does all encoding and a model folder carries its own tokenizer.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from pathlib import Path

import rustbpe

from slmtui.core.atomic import write_bytes_atomic
from slmtui.core.errors import SlmError
from slmtui.core.model_folder import TOKENIZER
from slmtui.core.tokenizer_spec import ENDOFTEXT, TokenizerSpec, check_vocab_size

# The GPT-4 style split pattern, exactly as rustbpe 0.1 uses by default; passed explicitly so a
# new rustbpe default cannot change our vocabularies. Chosen over GPT-2's because it compresses
# the bundled corpus better at small sizes (held-out bytes/token: 3.88 vs 3.69 at 4096 tokens,
# 4.26 vs 4.01 at 8192): a leading quote or dash joins the word after it ("‘Twas", "--oh"),
# and newlines group with the punctuation before them.
GPT4_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
    r"""|\s*[\r\n]|\s+(?!\S)|\s+"""
)


def train_bpe(
    texts: Iterable[str], vocab_size: int, out_dir: Path, *, name: str | None = None
) -> TokenizerSpec:
    """Learn ``vocab_size - 257`` merges on ``texts`` and write their rank file, ``out_dir / TOKENIZER``
    (named as in a model folder).

    Train on the training split only, so validation text is as new to the tokenizer as to the
    model. ``<|endoftext|>`` gets the last id, ``vocab_size - 1``; it is a special token, never a
    merge, so a user typing it gets ordinary text tokens. The result is deterministic.
    """
    check_vocab_size(vocab_size)
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

    ranks_file = Path(out_dir) / TOKENIZER
    # tiktoken's .tiktoken format (see tiktoken.load.dump_tiktoken_bpe): "base64(bytes) rank\n".
    lines = b"".join(base64.b64encode(bytes(token)) + b" %d\n" % rank for token, rank in ranks)
    write_bytes_atomic(ranks_file, lines)
    return TokenizerSpec(
        name=name or f"slmtui-bpe-{vocab_size}",
        pattern=tokenizer.get_pattern(),
        special_tokens={ENDOFTEXT: vocab_size - 1},
        n_vocab=vocab_size,
    )
