"""`slm-train` / `python -m trainer`: pretrain (or fine-tune) a model on a corpus.

Progress goes to a tqdm bar on a terminal, or one JSON event per line (``--progress jsonl``) for the
TUI. Ctrl+C or SIGTERM saves the run and prints how to resume it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from slmtui.core import paths
from slmtui.core.devices import DEVICE_CHOICES
from slmtui.core.model_catalog import DEFAULT_MODEL
from slmtui.core.errors import ENVIRONMENT_ERRNOS, SlmError, people_stream
from slmtui.core.model_target import target_path
from slmtui.core.seeds import SEED_HELP
from slmtui.engine.device import pick_device
from slmtui.engine.model_io import LoadedModel
from trainer import config
from trainer.config import DEFAULT_EPOCHS, DEFAULT_PRESET, PRESETS, SCHEDULES, default_run_name, preset
from trainer.corpus import corpus_path, read_corpus
from trainer.events import DoneEvent, ErrorEvent, EvalEvent, Event, SampleEvent, StartEvent, StepEvent, to_json
from trainer.loop import RunSpec, train
from trainer.preflight import check_block_size


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"slm-train: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def time_limit_arg(text: str) -> float:
    """--time-limit's type: seconds from '90', '90s', '15m', '2h' or '1h30m' (``config.parse_duration``), above 0."""
    seconds = config.parse_duration(text)
    if seconds is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 90s, 15m or 2h)")
    if seconds <= 0:  # not "no limit": a run with no time at all is a mistake, said as one
        raise argparse.ArgumentTypeError(f"{text!r} is no time at all: give more than 0 (e.g. 90s, 15m or 2h), "
                                         "or leave --time-limit out for no limit")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="slm-train", description="Pretrain a small GPT on a folder of books (or fine-tune one).")
    p.add_argument("--corpus", type=corpus_path, default=paths.BUNDLED_CORPUS_DIR,
                   help="folder of .txt/.md files, or one file; 'bundled' (the default) is the shipped public-domain novels")
    p.add_argument("--name", help="model name: saved as <user data>/models/NAME (default: the corpus folder's name)")
    p.add_argument("--out", type=Path, help="model folder to write (instead of --name)")
    p.add_argument("--preset", default=DEFAULT_PRESET, help=f"architecture and training settings: {', '.join(PRESETS)}")
    p.add_argument("--tokenizer", help="gpt2, or bpe:N to train an N-token BPE on the corpus (default: per preset)")
    p.add_argument("--init-from", help="fine-tune: start from this model (name or folder); keeps its architecture")
    p.add_argument("--resume", action="store_true", help="continue the run saved in the model folder")
    budget = p.add_argument_group("budget (the first reached ends the run)")
    budget.add_argument("--max-steps", type=int, help="optimizer steps (also the learning-rate schedule's length)")
    budget.add_argument("--epochs", type=float, help="passes over the training tokens")
    budget.add_argument("--time-limit", type=time_limit_arg, help="wall clock for this invocation, e.g. 30m or 2h")
    arch = p.add_argument_group("architecture overrides")
    for flag, kind in (("--block-size", int), ("--n-layer", int), ("--n-head", int), ("--n-embd", int), ("--dropout", float)):
        arch.add_argument(flag, type=kind)
    arch.add_argument("--tie-embeddings", action=argparse.BooleanOptionalAction, default=None)
    arch.add_argument("--pos-emb", choices=("learned", "rope"), help="learned absolute positions, or rotary (RoPE)")
    arch.add_argument("--norm", choices=("layernorm", "rmsnorm"))
    arch.add_argument("--qk-norm", action=argparse.BooleanOptionalAction, default=None, help="RMSNorm of queries and keys")
    arch.add_argument("--mlp", choices=("gelu", "relu2"))
    arch.add_argument("--zero-init-proj", action=argparse.BooleanOptionalAction, default=None,
                      help="start the blocks' output projections at zero")
    arch.add_argument("--logit-softcap", type=float, metavar="CAP", help="logits = CAP * tanh(logits / CAP); 0 = off")
    arch.add_argument("--unet-skips", action=argparse.BooleanOptionalAction, default=None,
                      help="the first half's block outputs feed the second half's inputs, learned weights")
    arch.add_argument("--embed-skips", action=argparse.BooleanOptionalAction, default=None,
                      help="every block's input mixes in the embedding, learned weights")
    opt = p.add_argument_group("optimisation overrides")
    for flag, kind in (("--batch-size", int), ("--lr", float), ("--warmup-steps", int), ("--weight-decay", float),
                       ("--grad-clip", float), ("--eval-interval", int), ("--patience", int),
                       ("--val-fraction", float)):
        opt.add_argument(flag, type=kind)
    opt.add_argument("--schedule", choices=SCHEDULES,
                     help="the learning rate after warmup: cosine, or wsd (held at its peak, then a linear decay over "
                          "the last --decay-fraction of the steps; a wsd run still at its peak resumes exactly with "
                          "a new --max-steps)")
    opt.add_argument("--decay-fraction", type=float, metavar="F", help="wsd: the share of the steps spent decaying")
    opt.add_argument("--seed", type=int, metavar="N", help=f"weights' init and batch order: {SEED_HELP}")
    opt.add_argument("--val-books", metavar="N|NAME,NAME",
                     help="also hold out whole books: N spread over the corpus, or names (file names, .txt optional)")
    opt.add_argument("--dtype", choices=("auto", "fp32", "bf16", "fp16"))
    opt.add_argument("--compile", action="store_true", help="torch.compile the model (slow start, faster steps)")
    opt.add_argument("--optimizer", choices=("adamw", "muon"), help="muon: Muon on the hidden matrices, AdamW on the rest")
    opt.add_argument("--fused", action=argparse.BooleanOptionalAction, default=None, help="AdamW's fused step")
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    p.add_argument("--progress", default="tqdm" if sys.stderr.isatty() else "none", choices=("tqdm", "jsonl", "none"),
                   help="tqdm bar, JSON lines on stdout (for the app), or quiet")
    return p


def spec_from_args(args: argparse.Namespace) -> RunSpec:
    recipe = preset(args.preset)  # an unknown name is refused with the choices
    if args.block_size is not None:
        check_block_size(args.block_size)
    if args.out is not None:
        out = target_path(args.out)  # not resolve(): a link at --out must be seen, and refused
    else:
        name = args.name or default_run_name(args.corpus, args.preset)
        if not paths.is_model_name(name):
            raise SlmError(f"--name {name!r}: use letters, digits, '.', '-' and '_' only")
        out = paths.models_dir() / name
    model = recipe.model
    arch = {k: getattr(args, k) for k in ("block_size", "n_layer", "n_head", "n_embd", "dropout", "tie_embeddings",
                                          "pos_emb", "norm", "qk_norm", "mlp", "zero_init_proj", "logit_softcap",
                                          "unet_skips", "embed_skips")
            if getattr(args, k) is not None}
    init_from = parent = None
    if args.init_from and not args.resume:
        from slmtui.core.model_catalog import resolve_model
        from slmtui.engine.model_io import load_model_dir

        kept = [k for k in arch if k not in ("block_size", "dropout")]
        if kept:
            raise SlmError("--init-from keeps the parent model's architecture: drop " +
                           ", ".join("--" + k.replace("_", "-") for k in kept))
        init_from = resolve_model(args.init_from)
        if target_path(out) == init_from.resolve() or out.resolve() == init_from:
            raise SlmError(f"{out} is the model you start from: a fine-tune always writes a new folder "
                           "(give another --name or --out)")
        parent = load_model_dir(init_from)  # a missing or damaged parent is refused before anything is written
        context = parent.info.config.block_size
        if args.block_size is not None and args.block_size > context:
            raise SlmError(f"--block-size {args.block_size} is longer than the context of {init_from.name} "
                           f"({context} tokens): a fine-tune can only shorten it")
    model = replace(model, **arch)
    overrides = {k: getattr(args, k) for k in ("batch_size", "lr", "warmup_steps", "weight_decay", "grad_clip",
                                               "eval_interval", "patience", "seed", "val_fraction", "dtype",
                                               "max_steps", "epochs", "val_books", "optimizer", "fused",
                                               "schedule", "decay_fraction")
                 if getattr(args, k) is not None}
    if args.time_limit is not None:
        overrides["time_limit_s"] = args.time_limit
    if args.compile:
        overrides["compile"] = True
    base = recipe.train
    if parent is not None:
        _check_corpus_path(args.corpus)
        base = _finetune_defaults(args, parent)
    if "eval_interval" in overrides:
        overrides["evals_per_pass"] = None  # asked for: as given
    cfg = replace(base, **overrides)
    if not args.resume and cfg.max_steps is None and cfg.epochs is None and cfg.time_limit_s is None:
        cfg = replace(cfg, epochs=DEFAULT_EPOCHS)  # with early stopping, the usual end
    if not args.resume:
        _check_corpus_path(args.corpus)
    # A fine-tune's dropout is its own (FINETUNE_DROPOUT unless given); a fresh model's comes with its shape.
    finetune_dropout = config.FINETUNE_DROPOUT if args.dropout is None else args.dropout
    return RunSpec(out=out, corpus=args.corpus.expanduser(), model=model, train=cfg,
                   tokenizer=args.tokenizer or recipe.tokenizer, preset=args.preset,
                   init_from=init_from, device=args.device, resume=args.resume,
                   block_size=args.block_size if init_from is not None else None,
                   dropout=finetune_dropout if init_from is not None else None)


def _finetune_defaults(args: argparse.Namespace, parent: LoadedModel) -> config.TrainConfig:
    """``config.finetune_config`` for this corpus and budget, with the corpus's tokens counted by the parent's
    tokenizer (on up to 1 MB of it: the count only sizes the schedule) and the parent's own speed."""
    corpus = read_corpus(args.corpus.expanduser())
    sample = "".join(d.text for d in corpus.documents)[:1_000_000]
    tokens_per_byte = len(parent.tokenizer.encode(sample)) / max(1, len(sample.encode("utf-8")))
    device = pick_device(args.device).type
    speed = config.measured_tokens_per_s(parent.info.training, device) or config.FALLBACK_TOKENS_PER_S
    block = args.block_size or parent.info.config.block_size
    held_out = args.val_fraction or config.TrainConfig.val_fraction
    return config.finetune_config(train_tokens=int(corpus.n_bytes * tokens_per_byte * (1 - held_out)),
                                  budget_s=args.time_limit, tokens_per_s=speed, block_size=block,
                                  optimizer=config.parent_optimizer(parent.info.training))


def _check_corpus_path(path: Path) -> None:
    try:
        found = path.expanduser().exists()
    except OSError as e:  # in a folder it may not read (chmod 000 on a parent)
        raise SlmError(f"cannot read the corpus {path}: {e.strerror or e}") from e
    if not found:
        raise SlmError(f"corpus not found: {path}")


class _Reporter:
    """Turns events into the chosen progress output."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.bar = None

    def __call__(self, event: Event) -> None:
        if self.mode == "jsonl":
            print(to_json(event), flush=True)
            if isinstance(event, DoneEvent):
                self._done(event)  # stderr gets the closing lines (and how to resume) in every mode
            return
        if self.mode == "none":
            if isinstance(event, DoneEvent):
                self._done(event)
            return
        self._tqdm(event)

    def _tqdm(self, event: Event) -> None:
        from tqdm import tqdm

        if isinstance(event, StartEvent):
            print(f"training {event.name}: {event.n_params / 1e6:.1f}M parameters on {event.train_tokens:,} tokens "
                  f"({event.device}, {event.dtype})", file=sys.stderr)
            self.bar = tqdm(total=event.max_steps or None, initial=event.start_step, unit="step", dynamic_ncols=True)
        elif isinstance(event, StepEvent) and self.bar is not None:
            if event.max_steps and self.bar.total != event.max_steps:
                self.bar.total = event.max_steps
            self.bar.update(event.step - self.bar.n)
            self.bar.set_postfix(loss=f"{event.loss:.3f}", tok_s=f"{event.tokens_per_s:,.0f}", refresh=False)
        elif isinstance(event, EvalEvent) and self.bar is not None and event.before:
            self.bar.write(f"before training: the starting model scores {event.val_bpb:.3f} bits/byte "
                           "on your held-out text")
        elif isinstance(event, EvalEvent) and self.bar is not None:
            held = f", held-out books {event.heldout_bpb:.3f} bits/byte" if event.heldout_bpb is not None else ""
            self.bar.write(f"step {event.step}: val loss {event.val_loss:.4f}, perplexity {event.val_perplexity:.1f}, "
                           f"{event.val_bpb:.3f} bits/byte{held}{' (best)' if event.improved else ''}")
        elif isinstance(event, SampleEvent) and self.bar is not None:
            self.bar.write(f"  sample: {event.prompt}{event.text!r}"[:300])
        elif isinstance(event, DoneEvent):
            if self.bar is not None:
                self.bar.close()
            self._done(event)

    @staticmethod
    def _done(event: DoneEvent) -> None:
        bpb = f", val {event.val_bpb:.3f} bits/byte" if event.val_bpb is not None else ""
        if event.heldout_bpb is not None:
            bpb += f", held-out books {event.heldout_bpb:.3f} bits/byte"
        print(f"{event.reason}: saved {event.path} at step {event.step}{bpb}", file=sys.stderr)
        change = config.before_after(event.parent_val_bpb, event.val_bpb)
        if change:
            print(change, file=sys.stderr)
        if event.resume_command:
            print(f"resume with: {event.resume_command}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    code = _main(argv)
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        # A torchrun worker whose run is saved and whose process group is gone ends here, without the interpreter's
        # teardown: there torch's gloo threads now and then aborted a rank ("terminate called without an active
        # exception", SIGABRT; 1 run in ~15 of tests/trainer/test_ddp.py on a loaded 2-core machine), and torchrun
        # then reported the finished run as failed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(argv: list[str] | None) -> int:
    people_stream(sys.stderr)
    args = build_parser().parse_args(argv)
    report = _Reporter(args.progress)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        if stop.is_set():  # a second Ctrl+C: give up without saving
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping: saving the run (Ctrl+C again to quit without saving)", file=sys.stderr)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        spec = spec_from_args(args)
        if spec.out == paths.models_dir() / DEFAULT_MODEL and not spec.resume and not spec.out.exists():
            print(f"warning: a model named {DEFAULT_MODEL!r} hides the bundled default: it is used wherever no model "
                  "is named (rename or delete it on the models screen, f6, to go back)", file=sys.stderr)
        done = train(spec, report, should_stop=stop.is_set, warn=lambda m: print(f"warning: {m}", file=sys.stderr))
    except SlmError as e:
        if args.progress == "jsonl":
            print(to_json(ErrorEvent(message=str(e))), flush=True)
        print(f"slm-train: error: {' '.join(str(e).split()) or 'unknown error'}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        if e.errno not in ENVIRONMENT_ERRNOS:
            raise  # a bug: keep the traceback
        # The disk or the folder, not the run (the saves say so themselves: this catches a cache, a BPE file).
        where = f" ({e.filename})" if e.filename else ""
        message = f"{e.strerror or e}{where}"
        if args.progress == "jsonl":
            print(to_json(ErrorEvent(message=message)), flush=True)
        print(f"slm-train: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 130 if done.reason == "interrupted" else 0


if __name__ == "__main__":
    raise SystemExit(main())
