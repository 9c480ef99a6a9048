"""The tokenised corpus: cached once as memmaps, and batches drawn in a deterministic order.

Batch ``s`` depends only on (seed, s): resuming at step s draws exactly the batches an uninterrupted run
would have, with no data position to save. Under DDP every rank draws the same global batch and takes
its own slice, so a 2-process run sees exactly the batch a single process would.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from slmtui.core import paths
from slmtui.core.atomic import write_bytes_atomic, write_text_atomic
from slmtui.core.errors import SlmError
from slmtui.core.seeds import torch_seed
from slmtui.engine.tokenizer import Tokenizer


@dataclass(frozen=True)
class TokenData:
    train: np.ndarray
    """Every training document's tokens, documents separated by the end-of-text token."""
    val_docs: list[np.ndarray]
    """Validation documents kept apart: evaluation restarts its context at each."""
    cache_dir: Path
    heldout_docs: list[np.ndarray] = field(default_factory=list)
    """Whole held-out books (--val-books), kept apart like the validation tails."""

    @property
    def val_tokens(self) -> int:
        return sum(len(d) for d in self.val_docs)

    @property
    def heldout_tokens(self) -> int:
        return sum(len(d) for d in self.heldout_docs)


def _dtype_for(n_vocab: int) -> np.dtype:
    return np.dtype(np.uint16) if n_vocab <= 2**16 else np.dtype(np.uint32)


def cache_key(corpus_fingerprint: str, tokenizer: Tokenizer, val_fraction: float, heldout_books: tuple[str, ...] = ()) -> str:
    h = hashlib.sha256()
    h.update(corpus_fingerprint.encode())
    h.update(tokenizer.spec.pattern.encode())
    h.update(json.dumps(tokenizer.spec.special_tokens, sort_keys=True).encode())
    for token, rank in sorted(tokenizer.encoding._mergeable_ranks.items(), key=lambda kv: kv[1]):
        h.update(token)
    h.update(str(val_fraction).encode())
    if heldout_books:  # absent for no held-out books, so existing caches stay valid
        h.update(json.dumps(list(heldout_books)).encode())
    return h.hexdigest()[:24]


def tokenize_corpus(
    train_texts: list[str], val_texts: list[str], tokenizer: Tokenizer, *, key: str, heldout_texts: list[str] = ()
) -> TokenData:
    """Tokenise once per (corpus, tokenizer, split); later runs memory-map the cached arrays."""
    folder = paths.cache_dir() / "tokens" / key
    meta_file = folder / "meta.json"
    dtype = _dtype_for(tokenizer.n_vocab)
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text())
            train = np.memmap(folder / "train.bin", dtype=dtype, mode="r")
            val = np.fromfile(folder / "val.bin", dtype=dtype)
            held = np.fromfile(folder / "heldout.bin", dtype=dtype) if meta.get("heldout_lengths") else val[:0]
            bounds = np.cumsum([0, *meta["val_lengths"]])
            hbounds = np.cumsum([0, *meta.get("heldout_lengths", [])])
            if len(train) == meta["train_tokens"] and len(val) == bounds[-1] and len(held) == hbounds[-1]:
                return TokenData(train, [val[a:b] for a, b in zip(bounds[:-1], bounds[1:])], folder,
                                 [held[a:b] for a, b in zip(hbounds[:-1], hbounds[1:])])
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt below
    eot = tokenizer.eot_token
    sep = [eot] if eot is not None else []
    train_ids: list[int] = []
    for ids in tokenizer.encode_batch(train_texts):
        train_ids.extend(ids)
        train_ids.extend(sep)
    val_docs = [np.asarray(ids, dtype=dtype) for ids in tokenizer.encode_batch(val_texts) if len(ids) > 1]
    heldout_docs = [np.asarray(ids, dtype=dtype) for ids in tokenizer.encode_batch(list(heldout_texts)) if len(ids) > 1]
    train = np.asarray(train_ids, dtype=dtype)
    try:  # the cache only saves the next run's tokenising: a full or read-only disk is no reason to stop
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(folder / "train.bin", train.tobytes())
        write_bytes_atomic(folder / "val.bin", np.concatenate(val_docs).tobytes() if val_docs else b"")
        if heldout_docs:
            write_bytes_atomic(folder / "heldout.bin", np.concatenate(heldout_docs).tobytes())
        write_text_atomic(
            meta_file,
            json.dumps({"train_tokens": len(train), "val_lengths": [len(d) for d in val_docs],
                        "heldout_lengths": [len(d) for d in heldout_docs], "n_vocab": tokenizer.n_vocab}),
        )
    except OSError:
        with contextlib.suppress(OSError):
            meta_file.unlink(missing_ok=True)  # never a meta that names bins not written
    return TokenData(train, val_docs, folder, heldout_docs)


class Batches:
    """Random context windows from the training tokens, a pure function of (seed, step)."""

    def __init__(self, data: np.ndarray, *, block_size: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if len(data) <= block_size + 1:
            raise SlmError(
                f"the corpus has {len(data)} training tokens, fewer than one context window of {block_size + 1}: "
                "use a larger corpus or a smaller --block-size"
            )
        self.data = data
        self.block_size = block_size
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    def get(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(torch_seed(self.seed) * 1_000_003 + step)
        starts = torch.randint(0, len(self.data) - self.block_size - 1, (self.global_batch,), generator=g)
        mine = starts[self.rank * self.batch_size : (self.rank + 1) * self.batch_size].tolist()
        # Open windows from the memmap per batch: only the rows needed are read from disk.
        rows = np.stack([np.asarray(self.data[s : s + self.block_size + 1], dtype=np.int64) for s in mine])
        t = torch.from_numpy(rows)
        return t[:, :-1], t[:, 1:]

