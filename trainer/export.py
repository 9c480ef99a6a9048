"""`python -m trainer.export SRC DEST`: a model folder made fit to ship.

Drops the training state, stores the weights in 16 bits, and re-scores the validation split with
the rounded weights, so model.toml's val_bpb is exactly what `slmtui eval --corpus ... --split val`
reports for the shipped files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from slmtui.core.errors import SlmError
from slmtui.core.model_folder import METRICS, read_model_info
from slmtui.core.model_target import check_model_target
from slmtui.engine.evaluate import evaluate_texts
from slmtui.engine.model_io import load_model_dir, save_model_dir
from trainer.corpus import corpus_path, model_split, read_corpus
from trainer.plot import PLOT_FILE

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def export_model(src: Path, dest: Path, *, dtype: str = "bf16", corpus: Path | None = None,
                 force: bool = False) -> dict[str, object]:
    """Write DEST from SRC; returns the training summary written to DEST's model.toml.

    DEST must be new, an empty folder, or (with ``force``) a model folder: the same rule as training's.
    """
    recorded = read_model_info(src).training.get("corpus")
    if corpus is None and not recorded:
        raise SlmError(f"{src}/model.toml does not name the corpus the model was trained on: give --corpus")
    corpus_dir = corpus or corpus_path(str(recorded))
    check_model_target(dest, replace_model=force, corpus=corpus_dir, how_to_replace="add --force to replace it")
    loaded = load_model_dir(src)
    rounded = loaded.model
    with torch.no_grad():
        for p in rounded.parameters():
            p.copy_(p.to(DTYPES[dtype]).to(torch.float32))
    training = dict(loaded.info.training)
    parts = model_split(read_corpus(corpus_dir), training)
    result = evaluate_texts(rounded, loaded.tokenizer, parts.val)
    training.update(val_loss=result.loss, val_bpb=result.bits_per_byte, val_tokens=result.tokens,
                    val_bytes=result.bytes, weights_dtype=dtype, exported_from=src.name, scored="full")
    if parts.heldout:
        held = evaluate_texts(rounded, loaded.tokenizer, parts.heldout)
        training.update(heldout_loss=held.loss, heldout_bpb=held.bits_per_byte, heldout_tokens=held.tokens,
                        heldout_bytes=held.bytes)
    extra = {name: src / name for name in (METRICS, PLOT_FILE) if (src / name).is_file()}
    save_model_dir(dest, rounded, loaded.tokenizer, training=training, dtype=DTYPES[dtype], extra_files=extra,
                   replace_model=force, corpus=corpus_dir)
    return training


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer.export", description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path)
    p.add_argument("dest", type=Path)
    p.add_argument("--dtype", choices=tuple(DTYPES), default="bf16")
    p.add_argument("--corpus", type=Path, help="the corpus the model was trained on (default: as model.toml says)")
    p.add_argument("--force", action="store_true", help="replace DEST when it is already a model folder")
    args = p.parse_args(argv)
    try:
        training = export_model(args.src, args.dest, dtype=args.dtype, corpus=args.corpus, force=args.force)
    except SlmError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    held = f", held-out books {training['heldout_bpb']:.4f} bits/byte" if "heldout_bpb" in training else ""
    print(f"wrote {args.dest}: val loss {training['val_loss']:.4f}, {training['val_bpb']:.4f} bits/byte{held} ({args.dtype})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
