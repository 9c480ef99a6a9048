"""Bad input, everywhere a user can give it: one line on stderr, exit 2, no traceback, and nothing changed.

One table over the `slmtui` commands, `slm-train`, damaged model folders, stories.db, config.toml and
SLMTUI_HOME. Each case sets up its damage, snapshots every file under SLMTUI_HOME and the test's folder,
runs the command (in-process through ``main(argv)``; the cases in SUBPROCESS again as a real process, to
prove no traceback leaks past ``main``), and checks: exit status 2, exactly one line on stderr that starts
with ``<program>: error: `` and holds the words the case names, no "Traceback", and every file and folder
as it was. The one exclusion is SLMTUI_HOME/cache: tokenised corpora the trainer writes for itself before
some checks can run (deleting it only costs re-tokenising, paths.cache_dir).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import tomli_w
import torch

from slmtui.cli import main as slmtui_main
from slmtui.core import paths
from slmtui.core.model_folder import META, TOKENIZER, TRAIN_STATE, WEIGHTS
from slmtui.stories.store import StoryStore
from tests.fs_snapshot import Snapshot, changes
from tests.fs_snapshot import snapshot as fs_snapshot
from tests.stories_damage import damage_stories_db
from tests.unreadable import unreadable
from trainer import preflight
from trainer.cli import main as train_main

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Env:
    """Where a case's files are: the test's folder, the tiny model's folder, a small corpus."""

    tmp: Path
    model: Path
    corpus: Path
    monkeypatch: pytest.MonkeyPatch
    during: list[Callable[[], AbstractContextManager[object]]] = field(default_factory=list)
    """What holds only while the command runs (a folder unreadable, stdout in ASCII): the snapshots before and
    after are taken without it."""
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def fmt(self, argv: list[str]) -> list[str]:
        return [a.format(tmp=self.tmp, model=self.model, corpus=self.corpus) for a in argv]


Setup = Callable[[Env], None]


@dataclass(frozen=True)
class Case:
    prog: str  # "slmtui" or "slm-train"
    argv: list[str]  # {tmp}, {model} and {corpus} are filled in
    words: str  # what the one line must say (case-insensitive)
    setup: Setup = lambda env: None
    code: int = 2  # 1: not the user's input but the machine's state (a full or read-only disk, an encoding)


# --------------------------------------------------------------------------------------------- kinds of damage


def model_toml(table: str, **values: object) -> Setup:
    def setup(env: Env) -> None:
        meta = tomllib.loads((env.model / META).read_text())
        meta[table].update(values)
        (env.model / META).write_text(tomli_w.dumps(meta))

    return setup


def set_format(env: Env, value: int) -> None:
    meta = tomllib.loads((env.model / META).read_text())
    meta["format"] = value
    (env.model / META).write_text(tomli_w.dumps(meta))


def write(name: str, data: bytes | None) -> Setup:
    """Replace (or with None, delete) one file of the model folder."""

    def setup(env: Env) -> None:
        if data is None:
            (env.model / name).unlink()
        else:
            (env.model / name).write_bytes(data)

    return setup


def truncate_weights(env: Env) -> None:
    w = env.model / WEIGHTS
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])


def stories_db(kind: str) -> Setup:
    def setup(env: Env) -> None:
        db = paths.stories_db()
        if kind == "healthy":
            db.parent.mkdir(parents=True, exist_ok=True)
            with StoryStore(db) as store:
                store.create_story(title="the only one")
        else:
            damage_stories_db(db, kind)

    return setup


def home_is_a_file(env: Env) -> None:
    home = env.tmp / "home-file"
    home.write_text("not a folder")
    env.monkeypatch.setenv("SLMTUI_HOME", str(home))


def a_file_at(sub: str) -> Setup:
    def setup(env: Env) -> None:
        target = Path(os.environ["SLMTUI_HOME"]) / sub
        if target.is_dir():
            for p in sorted(target.rglob("*"), reverse=True):
                p.rmdir() if p.is_dir() else p.unlink()
            target.rmdir()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("a file where a folder belongs")

    return setup


def train_state(content: object) -> Setup:
    """The tiny model's folder with this train_state.pt (bytes as they are, anything else torch.save'd)."""

    def setup(env: Env) -> None:
        path = env.model / TRAIN_STATE
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            torch.save(content, path)

    return setup


def full_state(**changes: object) -> dict[str, object]:
    """Every key --resume reads, of the right type, then ``changes``."""
    state: dict[str, object] = {
        "model": {}, "optimizer": {}, "step": 1, "tokens_seen": 10, "elapsed_s": 1.0, "best_val_loss": None,
        "bad_evals": 0, "max_steps": 5, "rng_cpu": torch.get_rng_state(), "train_config": {}, "corpus": "c",
        "corpus_fingerprint": "f", "tokenizer_arg": "gpt2",
    }
    return {**state, **changes}


def fifo(name: str) -> Setup:
    """A named pipe nobody writes to: a reader that opened it as a file would wait forever."""
    return lambda env: os.mkfifo(env.tmp / name)


def sparse_file(name: str, size: int) -> Setup:
    """A file of ``size`` bytes that takes no disk (a hole): its size alone is over a bound."""

    def setup(env: Env) -> None:
        with open(env.tmp / name, "wb") as f:
            f.truncate(size)

    return setup


def text_file(name: str, data: bytes) -> Setup:
    def setup(env: Env) -> None:
        (env.tmp / name).write_bytes(data)

    return setup


def both(*setups: Setup) -> Setup:
    def setup(env: Env) -> None:
        for s in setups:
            s(env)

    return setup



def story_file(name: str, text: str) -> Setup:
    """A story file (JSON text as given) in the test's folder."""
    return text_file(name, text.encode("utf-8"))


def story_doc(story: str = "{}", passages: str = '[{"id": 1, "parent": null, "author": "user", "text": "x"}]',
              bookmarks: str = "[]") -> str:
    return (f'{{"format": "slmtui-story", "version": 1, "story": {story}, "passages": {passages}, '
            f'"bookmarks": {bookmarks}}}')


def passage(**fields: str) -> str:
    base = {"id": "1", "parent": "null", "author": '"user"', "text": '"hello"'}
    base.update(fields)
    return "[{" + ", ".join(f'"{k}": {v}' for k, v in base.items()) + "}]"


def deep(n: int) -> str:
    return "[" * n + "]" * n


def while_unreadable(*where: str) -> Setup:
    """chmod 000 on these (``model``, ``models``, ``corpus``, ``corpus-folder`` or a name in the test's folder),
    as a user other than root sees it, while the command runs (tests/unreadable.py)."""

    def setup(env: Env) -> None:
        named = {"model": env.model, "models": env.model.parent, "weights": env.model / WEIGHTS,
                 "corpus": env.corpus, "corpus-folder": env.corpus.parent}
        targets = [named.get(w, env.tmp / w) for w in where]
        env.during.append(lambda: unreadable(*targets))

    return setup


@contextmanager
def _ascii_stdout() -> Iterator[None]:
    real = sys.stdout
    sys.stdout = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    try:
        yield
    finally:
        sys.stdout = real


def ascii_output(env: Env) -> None:
    """PYTHONIOENCODING=ascii: for the real process the variable, in-process an ASCII stdout."""
    env.monkeypatch.setenv("PYTHONIOENCODING", "ascii")
    env.during.append(_ascii_stdout)


def a_story(title: str, text: str) -> Setup:
    def setup(env: Env) -> None:
        db = paths.stories_db()
        db.parent.mkdir(parents=True, exist_ok=True)
        with StoryStore(db) as store:
            story = store.create_story(title=title)
            store.add_passage(story.id, parent_id=None, author="user", text=text)

    return setup


def no_write_access(env: Env) -> None:
    """The target's folder refuses writes (chmod 555 as a user other than root; os.access says so)."""
    env.monkeypatch.setattr(preflight.os, "access", lambda path, mode: False)


def disk_nearly_full(env: Env) -> None:
    real = shutil.disk_usage
    env.monkeypatch.setattr(preflight.shutil, "disk_usage", lambda p: real(p)._replace(free=64 << 10))


def read_only_data_folder(env: Env) -> None:
    """The data folder immutable (chattr +i: read-only even for root), stories.db in it healthy."""
    stories_db("healthy")(env)
    data = paths.stories_db().parent
    if subprocess.run(["chattr", "+i", str(data)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    env.cleanups.append(lambda: subprocess.run(["chattr", "-i", str(data)], check=True))


GEN = ["generate", "Once", "--model", "tiny", "--max-new-tokens", "3"]
TRAIN = ["--corpus", "{corpus}", "--preset", "tiny", "--max-steps", "2", "--out", "{tmp}/out", "--progress", "none"]
RESUME = ["--resume", "--out", "{model}", "--progress", "none", "--max-steps", "3"]

CASES: dict[str, Case] = {
    # --- slmtui: options
    "generate: --seed not an integer": Case("slmtui", [*GEN, "--seed", "1.5"], "invalid int value: '1.5'"),
    "generate: --temperature out of range": Case("slmtui", [*GEN, "--temperature", "9"], "--temperature must be a number from 0 to 5"),
    "generate: unknown model": Case("slmtui", ["generate", "x", "--model", "nope"], "no model named 'nope'"),
    "generate: --model a folder that is not one": Case("slmtui", ["generate", "x", "--model", "{tmp}"], "model.toml is missing"),
    "eval: nothing to evaluate": Case("slmtui", ["eval", "--model", "tiny"], "nothing to evaluate"),
    "eval: missing file": Case("slmtui", ["eval", "{tmp}/none.txt", "--model", "tiny"], "cannot read"),
    "eval: not UTF-8": Case("slmtui", ["eval", "{tmp}/latin.txt", "--model", "tiny"], "not UTF-8",
                            text_file("latin.txt", "Caf\u00e9 na\u00efve".encode("latin-1"))),
    "eval: /dev/zero": Case("slmtui", ["eval", "/dev/zero", "--model", "tiny"], "/dev/zero is not a regular file"),
    "eval --raw: /dev/zero": Case("slmtui", ["eval", "/dev/zero", "--raw", "--model", "tiny"],
                                  "/dev/zero is not a regular file"),
    "eval: a FIFO": Case("slmtui", ["eval", "{tmp}/pipe", "--model", "tiny"], "is not a regular file", fifo("pipe")),
    "eval --raw: a FIFO": Case("slmtui", ["eval", "{tmp}/pipe", "--raw", "--model", "tiny"], "is not a regular file",
                               fifo("pipe")),
    "eval: a file over 256 MiB": Case("slmtui", ["eval", "{tmp}/huge.txt", "--model", "tiny"],
                                      "is larger than 256 MiB", sparse_file("huge.txt", (256 << 20) + 1)),
    "eval: a folder as a file": Case("slmtui", ["eval", "{tmp}", "--model", "tiny"], "is a folder"),
    "stories import: /dev/zero": Case("slmtui", ["stories", "import", "/dev/zero"], "/dev/zero is not a regular file"),
    "stories import: a FIFO": Case("slmtui", ["stories", "import", "{tmp}/pipe"], "is not a regular file",
                                   fifo("pipe")),
    "stories import: a folder": Case("slmtui", ["stories", "import", "{tmp}"], "is a folder"),
    "stories import: missing": Case("slmtui", ["stories", "import", "{tmp}/none.json"], "No such file or directory"),
    "stories import: not UTF-8": Case("slmtui", ["stories", "import", "{tmp}/latin.json"], "not UTF-8",
                                      text_file("latin.json", "{\"title\": \"Caf\u00e9\"}".encode("latin-1"))),
    "models: unknown device": Case("slmtui", ["--device", "tpu", "models"], "invalid choice: 'tpu'"),
    # --- model folders, each kind of damage (generate loads the model)
    "model.toml: n_head = 2.0": Case("slmtui", GEN, "n_head must be an integer, got 2.0", model_toml("model", n_head=2.0)),
    "model.toml: n_layer = 'six'": Case("slmtui", GEN, "n_layer must be an integer, got 'six'", model_toml("model", n_layer="six")),
    "model.toml: bias = 'yes'": Case("slmtui", GEN, "bias must be true or false", model_toml("model", bias="yes")),
    "model.toml: tie_embeddings = 1": Case("slmtui", GEN, "tie_embeddings must be true or false",
                                           model_toml("model", tie_embeddings=1)),
    "model.toml: dropout = '0.1'": Case("slmtui", GEN, "dropout must be a number", model_toml("model", dropout="0.1")),
    "model.toml: dtype = 'int8'": Case("slmtui", GEN, "[weights] dtype must be one of", model_toml("weights", dtype="int8")),
    "model.toml: vocab_size too large for memory": Case("slmtui", GEN, "GiB of memory", model_toml("model", vocab_size=10**12)),
    "model.toml: block_size too large for memory": Case("slmtui", GEN, "GiB of memory", model_toml("model", block_size=10**9)),
    "model.toml: n_layer = 10**8": Case("slmtui", GEN, "the file holds 2 layers", model_toml("model", n_layer=10**8)),
    "model.toml: n_embd not divisible": Case("slmtui", GEN, "divisible by n_head", model_toml("model", n_head=3)),
    "model.toml: unknown key": Case("slmtui", GEN, "unknown model config keys: n_heads", model_toml("model", n_heads=2)),
    "model.toml: format from the future": Case("slmtui", GEN, "unsupported format 99", lambda env: set_format(env, 99)),
    "model.toml: not TOML": Case("slmtui", GEN, "not valid TOML", write(META, b"[model\nvocab_size = ")),
    "model.toml: missing": Case("slmtui", GEN, "model.toml is missing", write(META, None)),
    "weights: truncated": Case("slmtui", GEN, "damaged or truncated", truncate_weights),
    "weights: random bytes": Case("slmtui", GEN, "damaged or truncated", write(WEIGHTS, b"\x07" * 999)),
    "weights: missing": Case("slmtui", GEN, "model.safetensors is missing", write(WEIGHTS, None)),
    "tokenizer: missing": Case("slmtui", GEN, "tokenizer", write(TOKENIZER, None)),
    # --- stories.db
    "stories list: random bytes": Case("slmtui", ["stories", "list"], "damaged (file is not a database)",
                                       stories_db("random bytes")),
    "stories list: passages table dropped": Case("slmtui", ["stories", "list"], "the passages table is missing",
                                                 stories_db("passages dropped")),
    "stories list: stories.db is a folder": Case("slmtui", ["stories", "list", "--json"], "it is a folder",
                                                 stories_db("a folder")),
    "stories export: random bytes": Case("slmtui", ["stories", "export", "1"], "damaged", stories_db("random bytes")),
    "stories export: passages table dropped": Case("slmtui", ["stories", "export", "1", "--format", "txt"],
                                                   "passages table is missing", stories_db("passages dropped")),
    "stories export: no such story": Case("slmtui", ["stories", "export", "99"], "no story with id 99",
                                          stories_db("healthy")),
    "stories export: id not a number": Case("slmtui", ["stories", "export", "one"], "invalid int value"),
    # --- SLMTUI_HOME and the folders under it
    "generate: SLMTUI_HOME is a file": Case("slmtui", GEN, "SLMTUI_HOME=", home_is_a_file),
    "models: SLMTUI_HOME is a file": Case("slmtui", ["models"], "is a file", home_is_a_file),
    "stories list: SLMTUI_HOME is a file": Case("slmtui", ["stories", "list"], "is a file", home_is_a_file),
    "models: the data folder is a file": Case("slmtui", ["models", "--json"], "is a file", a_file_at("data")),
    "app: SLMTUI_HOME is a file": Case("slmtui", [], "SLMTUI_HOME=", home_is_a_file),
    "app: the config folder (config.toml's) is a file": Case("slmtui", [], "config is a file", a_file_at("config")),
    # --- slm-train
    "slm-train: --time-limit 0": Case("slm-train", [*TRAIN, "--time-limit", "0"], "no time at all"),
    "slm-train: --time-limit abc": Case("slm-train", [*TRAIN, "--time-limit", "abc"], "not a duration"),
    "slm-train: --seed not an integer": Case("slm-train", [*TRAIN, "--seed", "1.5"], "invalid int value"),
    "slm-train: unknown preset": Case("slm-train", [*TRAIN, "--preset", "enormous"], "unknown preset"),
    "slm-train: negative lr": Case("slm-train", [*TRAIN, "--lr", "-1"], "lr=-1.0"),
    "slm-train: n_head does not divide n_embd": Case("slm-train", [*TRAIN, "--n-head", "3"], "divisible by n_head"),
    "slm-train: too large for memory": Case("slm-train", [*TRAIN, "--n-embd", "65536", "--n-head", "1"], "GiB of memory"),
    "slm-train: missing corpus": Case("slm-train", [*TRAIN[:1], "{tmp}/no-books", *TRAIN[2:]], "not found"),
    "slm-train: unknown tokenizer": Case("slm-train", [*TRAIN, "--tokenizer", "sentencepiece"], "--tokenizer"),
    "slm-train: --init-from unknown": Case("slm-train", [*TRAIN, "--init-from", "nope"], "no model named 'nope'"),
    "slm-train: --init-from n_head = 2.0": Case("slm-train", [*TRAIN, "--init-from", "tiny"], "n_head must be an integer",
                                                model_toml("model", n_head=2.0)),
    "slm-train: --init-from too large for memory": Case("slm-train", [*TRAIN, "--init-from", "tiny"], "GiB of memory",
                                                        model_toml("model", vocab_size=10**12)),
    "slm-train: SLMTUI_HOME is a file": Case("slm-train", ["--corpus", "{corpus}", "--preset", "tiny", "--name", "x",
                                                           "--max-steps", "2", "--progress", "none"], "SLMTUI_HOME=",
                                             home_is_a_file),
    "slm-train: --resume with nothing to resume": Case("slm-train", RESUME, "nothing to resume"),
    "slm-train: --resume on random bytes": Case("slm-train", RESUME, "damaged or not a slmtui training state",
                                                train_state(hashlib.sha256(b"y").digest() * 100)),
    "slm-train: --resume on a torch file without the keys": Case("slm-train", RESUME, "step, tokens_seen",
                                                                 train_state({"a": 1})),
    "slm-train: --resume on a torch file holding a list": Case("slm-train", RESUME, "holds a list",
                                                               train_state([1, 2, 3])),
    "slm-train: --resume with step of the wrong type": Case("slm-train", RESUME, "step should be an integer, got str",
                                                            train_state(full_state(step="1"))),
    "slm-train: --resume with a model of wrong tensors": Case("slm-train", RESUME, "model should map names to tensors",
                                                              train_state(full_state(model={"w": [1.0]}))),

    # --- story imports: the schema is checked before anything is written, no stories.db made (issue 23, item 6)
    "stories import: nested 10,000 deep": Case("slmtui", ["stories", "import", "{tmp}/deep.json"],
                                               "nested deeper than 32 levels", story_file("deep.json", deep(10_000))),
    "stories import: sampling nested 10,000 deep": Case(
        "slmtui", ["stories", "import", "{tmp}/deep.json"], "nested deeper than 32 levels",
        story_file("deep.json", story_doc(passages=passage(sampling='{"a": ' + deep(10_000) + "}")))),
    "stories import: sampling nested 40 deep": Case(
        "slmtui", ["stories", "import", "{tmp}/deep.json"], "nested deeper than 32 levels",
        story_file("deep.json", story_doc(passages=passage(sampling='{"a": ' + deep(40) + "}")))),
    "stories import: a lone surrogate in the title": Case(
        "slmtui", ["stories", "import", "{tmp}/s.json"], "lone surrogate",
        story_file("s.json", story_doc(story='{"title": "a\\ud800b"}'))),
    "stories import: a lone surrogate in a passage": Case(
        "slmtui", ["stories", "import", "{tmp}/s.json"], "lone surrogate",
        story_file("s.json", story_doc(passages=passage(text='"x\\udfffy"')))),
    "stories import: a lone surrogate in a key": Case(
        "slmtui", ["stories", "import", "{tmp}/s.json"], "lone surrogate",
        story_file("s.json", story_doc(passages=passage(sampling='{"\\ud800": 1}')))),
    "stories import: a lone surrogate in the memory": Case(
        "slmtui", ["stories", "import", "{tmp}/s.json"], "lone surrogate",
        story_file("s.json", story_doc(story='{"memory": "\\udbff"}'))),
    "stories import: a passage id of 10**30": Case(
        "slmtui", ["stories", "import", "{tmp}/n.json"], "out of range",
        story_file("n.json", story_doc(passages=passage(id=str(10**30))))),
    "stories import: a position of 10**30": Case(
        "slmtui", ["stories", "import", "{tmp}/n.json"], "out of range",
        story_file("n.json", story_doc(passages=passage(position=str(10**30))))),
    "stories import: a position below 0": Case(
        "slmtui", ["stories", "import", "{tmp}/n.json"], "position -1 is below 0",
        story_file("n.json", story_doc(passages=passage(position="-1")))),
    "stories import: an id of 1.5": Case(
        "slmtui", ["stories", "import", "{tmp}/n.json"], "is not a whole number",
        story_file("n.json", story_doc(passages=passage(id="1.5")))),
    "stories import: NaN": Case("slmtui", ["stories", "import", "{tmp}/n.json"], "not strict JSON",
                                story_file("n.json", story_doc(passages=passage(position="NaN")))),
    "stories import: Infinity": Case("slmtui", ["stories", "import", "{tmp}/n.json"], "not strict JSON",
                                     story_file("n.json", story_doc(passages=passage(sampling='{"t": -Infinity}')))),
    "stories import: 1e400": Case("slmtui", ["stories", "import", "{tmp}/n.json"], "is not a finite number",
                                  story_file("n.json", story_doc(passages=passage(sampling='{"t": 1e400}')))),
    "stories import: a probability of 2": Case(
        "slmtui", ["stories", "import", "{tmp}/t.json"], "probability 2 is not a number from 0 to 1",
        story_file("t.json", story_doc(passages=passage(tokens="[[0, 1, 5, 2, []]]")))),
    "stories import: a token past its text": Case(
        "slmtui", ["stories", "import", "{tmp}/t.json"], "outside the passage's text",
        story_file("t.json", story_doc(passages=passage(tokens="[[0, 99, 5, 0.5, []]]")))),
    "stories import: a token id of 10**30": Case(
        "slmtui", ["stories", "import", "{tmp}/t.json"], "out of range",
        story_file("t.json", story_doc(passages=passage(tokens=f"[[0, 1, {10**30}, 0.5, []]]")))),
    "stories import: a token that is not a list": Case(
        "slmtui", ["stories", "import", "{tmp}/t.json"], "a token is not",
        story_file("t.json", story_doc(passages=passage(tokens='["abc"]')))),
    "stories import: tokens a string": Case(
        "slmtui", ["stories", "import", "{tmp}/t.json"], "tokens is not a list",
        story_file("t.json", story_doc(passages=passage(tokens='"abc"')))),
    "stories import: current passage 10**30": Case(
        "slmtui", ["stories", "import", "{tmp}/c.json"], "out of range",
        story_file("c.json", story_doc(story=f'{{"current": {10**30}}}'))),
    "stories import: a time past the end of time": Case(
        "slmtui", ["stories", "import", "{tmp}/c.json"], "out of range",
        story_file("c.json", story_doc(story='{"created": "9999-12-31T23:59:59-01:00"}'))),
    "stories import: a bookmark on passage 10**30": Case(
        "slmtui", ["stories", "import", "{tmp}/b.json"], "out of range",
        story_file("b.json", story_doc(bookmarks=f'[{{"name": "b", "passage": {10**30}}}]'))),
    "stories import: a parent that is a list": Case(
        "slmtui", ["stories", "import", "{tmp}/p.json"], "not an slmtui story",
        story_file("p.json", story_doc(passages=passage(parent="[1]")))),
    "stories import: the title a number": Case(
        "slmtui", ["stories", "import", "{tmp}/p.json"], "title is not a string",
        story_file("p.json", story_doc(story='{"title": 7}'))),
    # --- ids, names and encodings (item 5)
    "stories export: id 99999999999999999999": Case("slmtui", ["stories", "export", "99999999999999999999"],
                                                    "no story with id 99999999999999999999", stories_db("healthy")),
    "stories export --format json: id 2**63": Case("slmtui", ["stories", "export", str(2**63), "--format", "json"],
                                                   f"no story with id {2**63}", stories_db("healthy")),
    "stories export: PYTHONIOENCODING=ascii": Case("slmtui", ["stories", "export", "1"],
                                                   "the output's encoding (ascii) cannot write",
                                                   both(a_story("Caf\u00e9", "na\u00efve \u2014 text"), ascii_output),
                                                   code=1),
    "stories list: PYTHONIOENCODING=ascii": Case("slmtui", ["stories", "list"], "set PYTHONIOENCODING=utf-8",
                                                 both(a_story("Caf\u00e9", "x"), ascii_output), code=1),
    "generate: --model of 300 characters": Case("slmtui", ["generate", "x", "--model", "m" * 300],
                                                "a name of 300 characters is longer than a folder's name may be"),
    "eval: --model of 300 characters": Case("slmtui", ["eval", "{corpus}", "--model", "m" * 300],
                                            "a name of 300 characters"),
    "slm-train: --init-from of 300 characters": Case("slm-train", [*TRAIN, "--init-from", "m" * 300],
                                                     "a name of 300 characters"),
    # --- unreadable folders and files, chmod 000 as a user other than root (item 5, 8, 9)
    "generate: the model folder unreadable": Case("slmtui", GEN, "Permission denied", while_unreadable("model")),
    "eval: the model folder unreadable": Case("slmtui", ["eval", "{corpus}", "--model", "tiny"], "cannot read",
                                              while_unreadable("model")),
    "generate: the models folder unreadable": Case("slmtui", GEN, "Permission denied", while_unreadable("models")),
    "generate: model.safetensors unreadable": Case("slmtui", GEN, "model.safetensors: Permission denied",
                                                   while_unreadable("weights")),
    "slm-train: --init-from an unreadable model": Case("slm-train", [*TRAIN, "--init-from", "tiny"],
                                                       "Permission denied", while_unreadable("model")),
    "slm-train: --name in an unreadable models folder": Case(
        "slm-train", ["--corpus", "{corpus}", "--preset", "tiny", "--name", "x", "--max-steps", "2", "--progress",
                      "none"], "cannot write a model at", while_unreadable("models")),
    "slm-train: an unreadable corpus folder": Case("slm-train", [*TRAIN[:1], "{tmp}/books", *TRAIN[2:]],
                                                   "unreadable folder (Permission denied)",
                                                   while_unreadable("corpus-folder")),
    "slm-train: a corpus file in an unreadable folder": Case("slm-train", TRAIN,
                                                             "cannot read the corpus", while_unreadable("corpus-folder")),
    "slm-train: an unreadable corpus file": Case("slm-train", [*TRAIN[:1], "{corpus}", *TRAIN[2:]],
                                                 "unreadable (Permission denied)", while_unreadable("corpus")),
    "eval: an unreadable file": Case("slmtui", ["eval", "{corpus}", "--model", "tiny"], "Permission denied",
                                     while_unreadable("corpus")),
    "stories import: an unreadable file": Case("slmtui", ["stories", "import", "{tmp}/s.json"], "Permission denied",
                                               both(story_file("s.json", story_doc()), while_unreadable("s.json"))),
    # --- slm-train's preflight: refused before the first step (item 4)
    "slm-train: --name of 300 characters": Case("slm-train", ["--corpus", "{corpus}", "--preset", "tiny", "--name",
                                                              "n" * 300, "--max-steps", "2", "--progress", "none"],
                                                "300 bytes long"),
    "slm-train: --name of 242 characters": Case("slm-train", ["--corpus", "{corpus}", "--preset", "tiny", "--name",
                                                              "n" * 242, "--max-steps", "2", "--progress", "none"],
                                                "at most 241 bytes"),
    "slm-train: --out named 250 characters": Case("slm-train", [*TRAIN[:-3], "{tmp}/" + "o" * 250, "--progress",
                                                                "none"], "250 bytes long"),
    "slm-train: --block-size 1": Case("slm-train", [*TRAIN, "--block-size", "1"], "--block-size 1 is too short"),
    "slm-train: --block-size 0": Case("slm-train", [*TRAIN, "--block-size", "0"], "at least 2 tokens"),
    "slm-train: a folder it may not write": Case("slm-train", TRAIN, "is not writable", no_write_access, code=1),
    "slm-train: no room for one save": Case("slm-train", TRAIN, "not enough space to save the model",
                                            disk_nearly_full, code=1),
    # --- misleading messages (item 8)
    "stories list: a read-only data folder is not damage": Case("slmtui", ["stories", "list"], "is read-only",
                                                                read_only_data_folder, code=1),
}

# These run again as real processes: what a user sees, with nothing between main() and the terminal.
SUBPROCESS = ["stories import: nested 10,000 deep", "stories export: PYTHONIOENCODING=ascii",
              "stories export: id 99999999999999999999", "eval: a FIFO", "stories import: a FIFO", "model.toml: n_head = 2.0", "model.toml: vocab_size too large for memory", "stories list: random bytes",
              "generate: SLMTUI_HOME is a file", "slm-train: --resume on random bytes", "slm-train: SLMTUI_HOME is a file"]


# --------------------------------------------------------------------------------------------- running a case


def snapshot(root: Path) -> Snapshot:
    """``tests.fs_snapshot.snapshot`` of ``root`` but its cache/, where the trainer may write tokenised corpora
    before a check that refuses the run (the memory check needs the corpus's size)."""
    return {p: e for p, e in fs_snapshot(root).items() if p != "cache" and not p.startswith("cache/")}


@pytest.fixture
def env(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    corpus = tmp_path / "books" / "willows.txt"
    corpus.parent.mkdir()
    text = (paths.BUNDLED_CORPUS_DIR / "grahame-wind-in-the-willows.txt").read_text(encoding="utf-8")
    corpus.write_text(text[20_000:44_000], encoding="utf-8")
    env = Env(tmp=tmp_path, model=tiny_model_dir, corpus=corpus, monkeypatch=monkeypatch)
    yield env
    for cleanup in env.cleanups:
        cleanup()


def roots(env: Env) -> list[Path]:
    return [env.tmp, Path(os.environ["SLMTUI_HOME"]), env.model.parent.parent.parent]


def run_in_process(case: Case, argv: list[str], capsys: pytest.CaptureFixture[str], env: Env) -> tuple[int, str]:
    main = slmtui_main if case.prog == "slmtui" else train_main
    capsys.readouterr()
    with ExitStack() as stack:
        for during in env.during:
            stack.enter_context(during())
        try:
            code = main(argv)
        except SystemExit as e:  # slm-train's argparse errors
            code = e.code if isinstance(e.code, int) else 1
    return code, capsys.readouterr().err


def run_process(case: Case, argv: list[str]) -> tuple[int, str]:
    module = "slmtui" if case.prog == "slmtui" else "trainer"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", module, *argv], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stderr


def check(case: Case, env: Env, run: Callable[[list[str]], tuple[int, str]]) -> None:
    case.setup(env)
    argv = env.fmt(case.argv)
    before = {str(r): snapshot(r) for r in roots(env)}
    code, err = run(argv)
    lines = err.splitlines()
    assert "Traceback" not in err, err
    assert code == case.code, err
    assert len(lines) == 1, f"expected one line on stderr, got {err!r}"
    assert lines[0].startswith(f"{case.prog}: error: "), lines[0]
    assert case.words.lower() in lines[0].lower(), lines[0]
    after = {str(r): snapshot(r) for r in roots(env)}
    changed = [f"{root}: {line}" for root in before for line in changes(before[root], after[root])]
    assert not changed, f"changed: {changed}"


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2_and_changes_nothing(name: str, env: Env,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[name]
    if not case.argv:  # the app: in-process, a regression would open a terminal UI inside the test run
        check(case, env, lambda argv: run_process(case, argv))
    else:
        check(case, env, lambda argv: run_in_process(case, argv, capsys, env))


@pytest.mark.parametrize("name", [n for n in SUBPROCESS if CASES[n].argv])
def test_as_a_real_process_no_traceback_leaks(name: str, env: Env) -> None:
    case = CASES[name]
    env.during.clear()  # a real process gets only what the setup put in its environment
    check(case, env, lambda argv: run_process(case, argv))


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 110  # 69 before issue 23's third round, 50 of its kinds (items 1-9) since
    assert {c.prog for c in CASES.values()} == {"slmtui", "slm-train"}


# --------------------------------------------------------------------------------------------- not bad input, but

def test_models_lists_broken_folders_with_the_reason(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder that fails to read is shown as broken, not hidden (it may be the model the user looks for)."""
    import json

    broken = env.model.parent / "half-copied"
    broken.mkdir()
    (broken / META).write_text("[model\n")
    assert slmtui_main(["models"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out
    assert f"broken: half-copied: {broken / META} is not valid TOML" in out
    assert slmtui_main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["tiny"]["broken"] is False
    assert rows["half-copied"]["broken"] is True and "not valid TOML" in rows["half-copied"]["error"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="/dev/full is Linux's")
def test_a_full_disk_is_one_line_and_exit_1(env: Env) -> None:
    """`slmtui generate Hello > /dev/full`: not the user's input, so exit 1 (README, "Errors and exit codes")."""
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "slmtui", *GEN], cwd=REPO, stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == "slmtui: error: cannot write the output: No space left on device\n"
