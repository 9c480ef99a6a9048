"""Build the run's Tokenizer from --tokenizer: GPT-2's, or a BPE trained on the corpus (cached)."""

from __future__ import annotations

import json

from slmtui.core import paths
from slmtui.core.atomic import write_text_atomic
from slmtui.core.model_folder import TOKENIZER
from slmtui.core.tokenizer_spec import TokenizerSpec, parse_tokenizer_arg
from slmtui.engine.tokenizer import Tokenizer
from trainer.bpe import train_bpe


def build_tokenizer(arg: str, train_texts: list[str], *, cache_key: str) -> Tokenizer:
    """``gpt2`` or ``bpe:N``. A BPE is trained once per (corpus, N) and kept in the cache folder."""
    kind, size = parse_tokenizer_arg(arg)
    if kind == "gpt2":
        return Tokenizer.gpt2()
    folder = paths.cache_dir() / "bpe" / f"{cache_key}-{size}"
    spec_file = folder / "spec.json"
    if spec_file.is_file() and (folder / TOKENIZER).is_file():
        spec = TokenizerSpec.from_dict(json.loads(spec_file.read_text()), source=str(spec_file))
        return Tokenizer.from_rank_file(folder / TOKENIZER, spec)
    spec = train_bpe(train_texts, size, folder, name=f"bpe{size}-{cache_key[:8]}")
    write_text_atomic(spec_file, json.dumps(spec.to_dict()))
    return Tokenizer.from_rank_file(folder / TOKENIZER, spec)
