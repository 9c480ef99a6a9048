"""Tokenizer: a thin layer over ``tiktoken.Encoding`` built from a rank file.

tiktoken does all encoding and decoding. A model folder stores its rank file, split pattern and special
tokens, so it is self-contained and loads offline. The GPT-2 ranks ship in the package assets.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import tiktoken
import tiktoken.load

from slmtui.core.atomic import write_bytes_atomic
from slmtui.core.errors import SlmError
from slmtui.core.paths import GPT2_RANKS_FILE
from slmtui.core.tokenizer_spec import ENDOFTEXT, GPT2_RANKS_SHA256, TokenizerSpec, gpt2_spec


class Tokenizer:
    """Text <-> token ids. User text is encoded as ordinary text: typing ``<|endoftext|>`` never raises."""

    def __init__(self, encoding: tiktoken.Encoding, spec: TokenizerSpec) -> None:
        self.encoding = encoding
        self.spec = spec

    @classmethod
    def from_rank_file(cls, path: Path, spec: TokenizerSpec, *, expected_sha256: str | None = None) -> Tokenizer:
        """Build from a ``.tiktoken`` rank file (base64 token, rank per line)."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise SlmError(f"cannot read tokenizer file {path}: {e.strerror}") from e
        if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
            raise SlmError(f"tokenizer file {path} is damaged (sha256 does not match)")
        try:
            ranks = _parse_ranks(data)
            encoding = tiktoken.Encoding(
                name=spec.name,
                pat_str=spec.pattern,
                mergeable_ranks=ranks,
                special_tokens=spec.special_tokens,
                explicit_n_vocab=spec.n_vocab or None,
            )
        except SlmError as e:
            raise SlmError(f"tokenizer file {path}: {e}") from e
        except Exception as e:  # tiktoken raises ValueError/AssertionError on inconsistent ranks
            raise SlmError(f"tokenizer file {path} is not a valid tiktoken rank file: {e}") from e
        return cls(encoding, spec)

    @classmethod
    def gpt2(cls) -> Tokenizer:
        """The GPT-2 encoding (``gpt2_spec``) from the bundled rank file: no network."""
        return cls.from_rank_file(GPT2_RANKS_FILE, gpt2_spec(), expected_sha256=GPT2_RANKS_SHA256)

    @classmethod
    def named(cls, name: str) -> Tokenizer:
        """A named tiktoken encoding, only if it is already on disk: loading one never touches the network."""
        if name in ("gpt2", "r50k_base"):
            return cls.gpt2()
        if name not in tiktoken.list_encoding_names():
            raise SlmError(f"unknown tiktoken encoding {name!r}")
        if not _named_encoding_cached(name):
            raise SlmError(
                f"tiktoken encoding {name!r} is not cached on this machine and slmtui never downloads. "
                f"Fetch it once with network access: python -c \"import tiktoken; tiktoken.get_encoding('{name}')\" "
                "(set TIKTOKEN_CACHE_DIR to keep it in a folder of your choice)"
            )
        enc = tiktoken.get_encoding(name)
        spec = TokenizerSpec(name=name, pattern=enc._pat_str, special_tokens=dict(enc._special_tokens), n_vocab=enc.n_vocab)
        return cls(enc, spec)

    @property
    def n_vocab(self) -> int:
        return self.encoding.n_vocab

    @property
    def eot_token(self) -> int | None:
        return self.spec.special_tokens.get(ENDOFTEXT)

    def encode(self, text: str) -> list[int]:
        return self.encoding.encode_ordinary(text)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.encoding.encode_ordinary_batch(texts)

    def decode(self, ids: Iterable[int]) -> str:
        return self.encoding.decode(list(ids), errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        return self.encoding.decode_single_token_bytes(token_id)

    def token_text(self, token_id: int) -> str:
        """A single token shown alone (may be part of a character: shown with U+FFFD)."""
        return self.token_bytes(token_id).decode("utf-8", errors="replace")

    def stream_decoder(self) -> StreamDecoder:
        return StreamDecoder(self)

    def save_ranks(self, path: Path) -> None:
        """Write the rank file that rebuilds this encoding (tiktoken's .tiktoken format)."""
        from base64 import b64encode

        ranks = self.encoding._mergeable_ranks
        lines = [b64encode(tok) + b" " + str(rank).encode() for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1])]
        write_bytes_atomic(path, b"\n".join(lines) + b"\n")


class StreamDecoder:
    """Turns token ids into text pieces without ever emitting half a character.

    A multi-byte UTF-8 character can be split across BPE tokens; the incremental decoder keeps the
    incomplete bytes until the token that completes them arrives.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        return self._decoder.decode(self._tokenizer.token_bytes(token_id))

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)

    def feed(self, ids: Iterable[int]) -> Iterator[str]:
        for i in ids:
            yield self.push(i)


def _parse_ranks(data: bytes) -> dict[bytes, int]:
    """Parse a rank file held in memory (tiktoken's load_tiktoken_bpe wants a path and may hit the network)."""
    from base64 import b64decode

    ranks: dict[bytes, int] = {}
    for lineno, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[b64decode(token, validate=True)] = int(rank)
        except Exception as e:
            raise SlmError(f"line {lineno}: expected '<base64 token> <rank>'") from e
    if not ranks:
        raise SlmError("the rank file is empty")
    return ranks


def _named_encoding_cached(name: str) -> bool:
    """Whether tiktoken would find this encoding's files on disk (it caches by sha1 of the URL)."""
    import tiktoken_ext.openai_public as public  # noqa: F401  (registers the constructors)
    from tiktoken.registry import ENCODING_CONSTRUCTORS

    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    cache = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "data-gym-cache"
    constructor = ENCODING_CONSTRUCTORS.get(name) if ENCODING_CONSTRUCTORS else None
    if constructor is None:
        return False
    # The constructors only name URLs; read them from the function's constants without calling it.
    urls = [c for c in constructor.__code__.co_consts if isinstance(c, str) and c.startswith("http")]
    return bool(urls) and all((cache / hashlib.sha1(u.encode()).hexdigest()).exists() for u in urls)


def start_ids(tokenizer: Tokenizer, ids: list[int]) -> list[int]:
    """What the model reads of a prompt: its tokens, or for an empty page the document separator, as the model
    saw between books (the context builder, writing/context.py, shows the same)."""
    if ids:
        return ids
    eot = tokenizer.eot_token
    return [eot] if eot is not None else tokenizer.encode("\n")
