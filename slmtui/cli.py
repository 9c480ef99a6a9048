"""The ``slmtui`` command: no subcommand opens the TUI; ``generate``, ``eval``, ``models`` and ``stories``
(stories/cli.py) run headless.

Errors a person can fix (a bad option, a missing model, an unreadable file) print one line,
``slmtui: error: <message>``, on stderr and exit 2 (``SlmError.exit_code``); anything else that escapes
is a bug and keeps its traceback. Ctrl+C exits 130 without a word.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from slmtui import __version__
from slmtui.core.errors import encoding_problem, people_stream
from slmtui.stories.cli import add_stories_parser
from slmtui.core.devices import DEVICE_CHOICES
from slmtui.core.errors import SlmError
from slmtui.core.user_input import (MAX_PROMPT_BYTES, MAX_TEXT_FILE_BYTES, check_regular_file, read_file_text,
                                     read_stream_text)
from slmtui.core.sampling import FIELDS, Sampling, SamplingField
from slmtui.format import fine_tuned, params
from slmtui.core import strict_json

if TYPE_CHECKING:
    from slmtui.core.model_folder import ModelInfo
    from slmtui.engine.evaluate import EvalResult
    from slmtui.engine.model_io import LoadedModel
    from slmtui.core.sampling import Sampling

PROG = "slmtui"


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so every error is one line."""

    def error(self, message: str) -> NoReturn:
        raise SlmError(message, exit_code=2)


def build_parser() -> argparse.ArgumentParser:
    # --model and --device may stand before or after the subcommand. In the subcommands they default
    # to SUPPRESS so that leaving them out there keeps what was given before the subcommand.
    common = _Parser(add_help=False)
    common.add_argument("--model", default=argparse.SUPPRESS, metavar="NAME|PATH",
                        help="a model name (see `slmtui models`) or a model folder (default: default)")
    common.add_argument("--device", default=argparse.SUPPRESS, choices=DEVICE_CHOICES,
                        help="where the model runs (default: auto = CUDA, then MPS, then CPU)")

    parser = _Parser(prog=PROG, description="A terminal storytelling app with its own small GPT. "
                     "With no command, opens the writing app.", parents=[common])
    # Not set_defaults(model=..., device=...): that would change the actions shared with `common`.
    parser.set_defaults(func=_cmd_tui)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    gen = sub.add_parser("generate", parents=[common], help="continue a prompt and stream the text to stdout",
                         description="Continue PROMPT with the model, streaming the text as it is written.")
    gen.add_argument("prompt", metavar="PROMPT", help="the text to continue; - reads it from standard input")
    for field in FIELDS:
        if field.many:
            gen.add_argument(field.flag, action="append", default=[], metavar=field.metavar, dest=field.name,
                             help=field.help + r" (repeatable; \n and \t are understood)")
        else:
            gen.add_argument(field.flag, type=field.kind, metavar=field.metavar, dest=field.name,
                             help=_option_help(field))
    gen.add_argument("--memory", default="", metavar="TEXT",
                     help="text the model always sees before the story's last tokens (names, setting)")
    gen.add_argument("--note", default="", metavar="TEXT",
                     help="an author's note: the model reads it a few lines before the end of the story")
    gen.add_argument("--lore", type=Path, metavar="FILE.json",
                     help="a lorebook (the lore JSON of README's \"Lorebook\"): entries whose keys occur in the "
                          "story's last tokens, the memory or the note are read between the memory and the story")
    gen.add_argument("--show-context", action="store_true",
                     help="print what the model reads, part by part with token counts, to stderr before writing "
                          "(with --max-new-tokens 0: only that)")
    gen.add_argument("--path", metavar="NAME",
                     help="decoding path: auto (the fastest here, measured), exact, fp32-t, bf16, bf16-mv or int8 "
                          "(default: exact with --seed, so the text replays on any machine; else auto)")
    gen.set_defaults(func=_cmd_generate)

    ev = sub.add_parser("eval", parents=[common], help="loss, perplexity and bits per byte of a model on some text",
                        description="Score how well a model predicts text files, or a corpus's held-out split.")
    ev.add_argument("files", nargs="*", metavar="FILE",
                    help="UTF-8 text files, read as the trainer reads a corpus (cleaned, hard wraps joined)")
    ev.add_argument("--raw", action="store_true", help="score the files' bytes as they are, not as the trainer reads them")
    ev.add_argument("--corpus", metavar="DIR", help="a corpus folder, split as the trainer splits it; 'bundled' is the shipped novels")
    ev.add_argument("--split", choices=("val", "train", "heldout", "all"),
                    help="which part of --corpus: val (the tail of each training book, the default), train, "
                         "heldout (whole books the model never trained on: model.toml's, or --val-books), all (every book whole)")
    ev.add_argument("--val-books", metavar="N|NAME,NAME",
                    help="the held-out books, chosen as slm-train --val-books chooses them (implies --split heldout)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(func=_cmd_eval)

    models = sub.add_parser("models", parents=[common], help="list the installed models",
                            description="List your models and the bundled ones.")
    models.add_argument("--json", action="store_true", help="print a JSON list")
    models.set_defaults(func=_cmd_models)

    add_stories_parser(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (``python -m slmtui`` and the script exit with it)."""
    people_stream(sys.stderr)
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:  # --help and --version print and exit 0
            return e.code if isinstance(e.code, int) else 0
        args.model = getattr(args, "model", None)
        args.device = getattr(args, "device", "auto")
        return int(args.func(args) or 0)
    except SlmError as e:
        print(f"{PROG}: error: {_one_line(str(e))}", file=sys.stderr)
        return e.exit_code
    except UnicodeEncodeError as e:  # PYTHONIOENCODING=ascii, a C locale: the user's to change, said so
        print(f"{PROG}: error: {encoding_problem(e, sys.stdout)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if sys.stdout.isatty():
            print(file=sys.stdout)  # end the half-written line before the shell prompt
        return 130
    except BrokenPipeError:
        # The reader went away (`slmtui generate ... | head`): stop quietly, and keep Python from
        # complaining when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as e:
        if e.errno not in _WRITE_FAILURES:
            raise
        # `slmtui generate ... > /dev/full`: a failure, not bad input, so exit 1 (README, "Errors and exit
        # codes"). What is left in stdout's buffer would fail again at exit: send it nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"{PROG}: error: cannot write the output: {e.strerror or e}", file=sys.stderr)
        return 1


_WRITE_FAILURES = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}
"""The errors of a write that cannot be completed: a full disk, a quota, a file too large, a failing device."""


def _one_line(message: str) -> str:
    return " ".join(message.split()) or "unknown error"


# --------------------------------------------------------------------------- commands


def _cmd_tui(args: argparse.Namespace) -> int:
    try:
        from slmtui.tui.app import run_app
    except ModuleNotFoundError as e:
        if e.name and not e.name.startswith("slmtui"):
            raise SlmError(f"the TUI is not available: {e.name} is not installed", exit_code=1) from e
        raise SlmError("the TUI is not available", exit_code=1) from e
    except ImportError as e:
        raise SlmError("the TUI is not available", exit_code=1) from e
    rc = run_app(model=args.model, device=args.device)
    return rc if isinstance(rc, int) else 0


def _cmd_generate(args: argparse.Namespace) -> int:
    prompt = _read_prompt(args.prompt)
    context_only = args.max_new_tokens == 0
    if context_only:
        if not args.show_context:
            raise SlmError("--max-new-tokens 0 writes nothing: it goes with --show-context, to see the context alone")
        args.max_new_tokens = None
    sampling = _sampling_from_args(args)  # checked before the (slow) model load
    path = _decoding_path(args)
    from slmtui.stories.lore_json import read_lore_file
    from slmtui.stories.lorebook import Lorebook

    book = read_lore_file(args.lore) if args.lore is not None else Lorebook()  # bad lore: one line, exit 2
    loaded = _load(args)
    from slmtui.engine.generate import Generator
    from slmtui.writing.context import build_context, context_report

    ctx = build_context(loaded.tokenizer, story=prompt, block_size=loaded.model.config.block_size,
                        memory=args.memory, note=args.note, lore=book.entries)
    if args.show_context:
        sys.stderr.write(context_report(ctx, loaded.tokenizer, model=loaded.info.name))
        sys.stderr.flush()
    if context_only:
        return 0
    out = sys.stdout
    last = ""
    generator = Generator(loaded.model, loaded.tokenizer, path=path)
    for event in generator.stream(ctx.prompt, sampling, memory=ctx.prefix):
        if event.text:
            out.write(event.text)
            out.flush()
            last = event.text
    if last and not last.endswith("\n"):
        out.write("\n")
    out.flush()
    return 0


def _decoding_path(args: argparse.Namespace) -> str | None:
    """The decoding path ``generate`` uses: None measures the fastest. A seed is a promise that the text
    replays, and only the exact path gives the same numbers whichever path this machine would pick."""
    from slmtui.engine.decode_paths import CANDIDATES, EXACT

    if args.path is None:
        return EXACT if args.seed is not None else None
    if args.path == "auto":
        return None
    if args.path not in CANDIDATES:
        raise SlmError(f"--path {args.path!r}: choose auto or one of {', '.join(CANDIDATES)}")
    return args.path


def _cmd_eval(args: argparse.Namespace) -> int:
    if args.files and args.corpus is not None:
        raise SlmError("give text files or --corpus, not both")
    if not args.files and args.corpus is None:
        raise SlmError("nothing to evaluate: give text files, or --corpus DIR")
    if args.split is not None and args.corpus is None:
        raise SlmError("--split needs --corpus")
    if args.raw and args.corpus is not None:
        raise SlmError("--raw is for FILE arguments: a corpus is always read as the trainer reads it")
    if args.val_books is not None and args.corpus is None:
        raise SlmError("--val-books needs --corpus")
    if args.val_books is not None and args.split not in (None, "heldout", "val", "train"):
        raise SlmError(f"--val-books chooses held-out books; --split {args.split} does not use them")
    if args.files:
        # As the trainer reads a corpus by default, so a file's figure is comparable with training's.
        read = _read_text if args.raw else _read_as_trainer
        texts = [read(Path(f)) for f in args.files]
        source: dict[str, object] = {"source": "files", "files": [str(f) for f in args.files],
                                     "reading": "raw" if args.raw else "as-trainer"}
    loaded = _load(args)
    if args.corpus is not None:
        split = args.split or ("heldout" if args.val_books is not None else "val")
        texts, val_fraction, books, absent = _corpus_split(args.corpus, split, loaded.info, args.val_books)
        source = {"source": "corpus", "corpus": str(args.corpus), "split": split, "val_fraction": val_fraction,
                  "heldout_books": list(books), "heldout_books_absent": list(absent), "reading": "as-trainer"}
    from slmtui.engine.evaluate import evaluate_texts

    result = evaluate_texts(loaded.model, loaded.tokenizer, texts)
    if result.tokens == 0:
        raise SlmError("nothing to evaluate: the text is shorter than two tokens")
    report = {"model": loaded.info.name, "path": str(loaded.info.path), **source, "texts": len(texts), **result.to_dict()}
    if args.json:
        print(strict_json.dumps(report))
    else:
        _print_eval(report, result)
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from slmtui.core.model_catalog import scan_models

    infos, broken = scan_models()
    rows = [_model_row(info) for info in infos]
    if args.json:
        print(strict_json.dumps(rows + [{"name": b.name, "path": str(b.path), "bundled": b.bundled, "broken": True,
                                  "error": b.reason} for b in broken]))
        return 0
    if not rows:
        print("no models yet: train one with slm-train")
    else:
        _print_models_table(rows)
    for info in infos:
        if lineage := fine_tuned(info):
            print(f"{info.name}: {lineage}")
    for b in broken:  # a folder that fails to read is listed, not hidden: it may be the model the user wants
        print(f"broken: {b.name}: {b.reason}")
    return 0


def _print_models_table(rows: list[dict[str, Any]]) -> None:
    header = ("NAME", "PARAMETERS", "VOCAB", "CONTEXT", "VAL LOSS", "VAL BPB", "CREATED", "SOURCE")
    table = [header] + [
        (
            r["name"],
            params(r["parameters"]),
            str(r["vocab_size"]),
            str(r["block_size"]),
            "-" if r["val_loss"] is None else f"{r['val_loss']:.3f}",
            "-" if r["val_bpb"] is None else f"{r['val_bpb']:.3f}",
            "-" if r["created"] is None else str(r["created"])[:16].replace("T", " "),
            "bundled" if r["bundled"] else "user",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


# --------------------------------------------------------------------------- helpers


def _option_help(field: SamplingField) -> str:
    """``generate --help``'s line for a sampling option: what it does, its bounds and its default."""
    default = f"default: {field.none}" if field.default is None else f"default {field.default}"
    bounded = field.lo is not None or field.hi is not None
    return f"{field.help} ({field.bounds}, {default})" if bounded else f"{field.help} ({default})"


def _sampling_from_args(args: argparse.Namespace) -> Sampling:
    """The options given, checked by the table and named as they were typed ("--top-p must be ...")."""
    given: dict[str, object] = {}
    problems: list[str] = []
    for field in FIELDS:
        value = getattr(args, field.name)
        if field.many:
            value = tuple(s.replace("\\n", "\n").replace("\\t", "\t") for s in value) or None
        if value is not None:
            given[field.name] = value
            if problem := field.problem(value, name=field.flag):
                problems.append(problem)
    if problems:
        raise SlmError("; ".join(problems))
    return Sampling(**given)


def _read_prompt(prompt: str) -> str:
    if prompt != "-":
        return prompt  # "" is allowed: the story starts from nothing
    text = read_stream_text(sys.stdin.buffer, limit=MAX_PROMPT_BYTES, what="a prompt")
    if not text.strip():
        raise SlmError("the prompt on standard input is empty (pass '' to start from nothing)")
    return text


def _read_text(path: Path) -> str:
    """The file's bytes as they are, decoded: read_text() would turn CRLF into LF, which is not --raw."""
    return read_file_text(path, limit=MAX_TEXT_FILE_BYTES, what="a text to score")


def _read_as_trainer(path: Path) -> str:
    try:
        from trainer.corpus import read_text_file
    except ImportError as e:
        raise SlmError("reading text as the trainer does needs the trainer package, which is not installed "
                       "here: add --raw to score the bytes as they are", exit_code=1) from e
    return read_text_file(check_regular_file(path, limit=MAX_TEXT_FILE_BYTES, what="a text to score"))


def _load(args: argparse.Namespace) -> LoadedModel:
    from slmtui.core.model_catalog import resolve_model
    from slmtui.engine.device import pick_device
    from slmtui.engine.model_io import load_model_dir

    device = pick_device(args.device)
    return load_model_dir(resolve_model(args.model), device=device)


def _corpus_split(corpus_path: str, split: str, info: ModelInfo,
                  val_books: str | None) -> tuple[list[str], float, tuple[str, ...], tuple[str, ...]]:
    """The texts of one split of a corpus, cut as the model's trainer cut them (trainer.corpus.model_split:
    its val_fraction, its held-out books where this corpus holds them, or those of --val-books); the val_fraction,
    the books held out, and the model's held-out books this corpus lacks (another folder than it trained on)."""
    try:
        from trainer.corpus import choose_books, model_split, read_corpus
        from trainer.corpus import corpus_path as resolve_corpus
    except ImportError as e:
        raise SlmError("--corpus needs the trainer package, which is not installed here", exit_code=1) from e
    corpus = read_corpus(resolve_corpus(corpus_path))
    for skipped in corpus.skipped:
        print(f"{PROG}: skipped {skipped.name}: {skipped.reason}", file=sys.stderr)
    if not corpus.documents:
        raise SlmError(f"{corpus_path} holds no readable text")
    if split == "all":
        return [d.text for d in corpus.documents], 0.0, (), ()
    held = choose_books(corpus, val_books) if val_books is not None else None
    parts = model_split(corpus, info.training, heldout_books=held)
    if split == "heldout" and not parts.heldout:
        if parts.not_here:
            raise SlmError(f"{corpus_path} holds none of the books {info.name} held out ({', '.join(parts.not_here)}): "
                           "name books of this corpus with --val-books, or use --split all")
        raise SlmError("this model holds out no whole books: name them with --val-books, or use --split all")
    texts = {"val": parts.val, "train": parts.train, "heldout": parts.heldout}[split]
    return texts, parts.val_fraction, parts.heldout_books, parts.not_here


def _print_eval(report: dict[str, Any], result: EvalResult) -> None:
    if report["source"] == "files":
        what = f"{report['texts']} file{'s' if report['texts'] != 1 else ''}"
    else:
        what = f"{report['corpus']} ({report['split']} split, val_fraction {report['val_fraction']:g})"
        if report["split"] == "heldout":
            what = f"{report['corpus']} (held-out books: {', '.join(report['heldout_books'])})"
        elif report["split"] == "all":
            what = f"{report['corpus']} (every book whole)"
    print(f"model        {report['model']}  ({report['path']})")
    print(f"text         {what}: {result.tokens:,} tokens, {result.bytes:,} bytes")
    if report["source"] == "corpus" and report["split"] in ("val", "train"):
        print(f"held out     {_held_out(report)}")
    if report["reading"] == "raw":
        reading = "raw: the files' bytes as they are"
    else:
        reading = "as the trainer reads a corpus: cleaned, hard wraps joined"
        reading += " (--raw: the bytes as they are)" if report["source"] == "files" else ""
    print(f"reading      {reading}")
    print(f"loss         {result.loss:.4f} nats/token")
    print(f"perplexity   {result.perplexity:.2f}")
    print(f"bits/byte    {result.bits_per_byte:.4f}")


def _held_out(report: dict[str, Any]) -> str:
    """Which whole books the val or train split leaves out, and the model's held-out books that are not here."""
    books, absent = report["heldout_books"], report["heldout_books_absent"]
    said = (f"{', '.join(books)} (whole books it never trained on: --split heldout scores them)" if books
            else "no whole books")
    if absent:
        said += f"; not in this corpus: {', '.join(absent)}, held out of the corpus {report['model']} trained on"
    return said


def _model_row(info: ModelInfo) -> dict[str, Any]:
    c = info.config
    t = info.training

    def number(key: str) -> float | None:
        value = t.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    return {
        "name": info.name,
        "path": str(info.path),
        "parameters": info.n_params,
        "vocab_size": c.vocab_size,
        "n_vocab": info.tokenizer.n_vocab,
        "block_size": c.block_size,
        "n_layer": c.n_layer,
        "n_head": c.n_head,
        "n_embd": c.n_embd,
        "val_loss": number("val_loss"),
        "val_bpb": number("val_bpb"),
        "parent": str(t["parent"]) if t.get("parent") else None,
        "parent_val_bpb": number("parent_val_bpb"),
        "created": str(t["created"]) if "created" in t else None,
        "bundled": info.bundled,
        "broken": False,
    }
