"""The model folders that earlier releases shipped still load, generate, evaluate and fine-tune.

``tests/earlier_models/<name>/`` keeps what made each earlier bundled default what it was: its model.toml as it
shipped, and the layout of its model.safetensors (every tensor's name, dtype and shape, read from the file's
header at the commit named in weights.json). A folder is rebuilt from them with random weights of exactly that
layout and a stand-in tokenizer of the same size, then used as a user would: ``slmtui generate``, ``slmtui eval``
and ``slm-train --init-from``. A change to the folder format, the key names or the config's reading that the
shipped folders would not survive fails here.
"""

from __future__ import annotations

import json
from base64 import b64encode
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from slmtui.cli import main as slmtui_main
from slmtui.engine.model_io import load_model_dir
from tests.trainer.excerpts import book_excerpt
from trainer.cli import main as train_main

EARLIER = Path(__file__).parent / "earlier_models"
NAMES = sorted(p.name for p in EARLIER.iterdir() if (p / "model.toml").is_file())
DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}


def test_both_earlier_defaults_are_kept() -> None:
    assert NAMES == ["default-v1", "default-v2"]


def stand_in_ranks(path: Path, n_ranks: int) -> None:
    """A .tiktoken file of ``n_ranks`` tokens: the 256 bytes, then pairs of printable characters (all reachable)."""
    printable = [bytes([c]) for c in range(32, 127)]
    tokens = [bytes([i]) for i in range(256)] + [a + b for a in printable for b in printable][: n_ranks - 256]
    assert len(tokens) == n_ranks
    path.write_bytes(b"".join(b64encode(t) + b" %d\n" % i for i, t in enumerate(tokens)))


def rebuild(name: str, dest: Path) -> Path:
    """The earlier release's folder: its model.toml, random weights of its file's layout, a stand-in tokenizer."""
    import tomllib

    src = EARLIER / name
    dest.mkdir()
    meta = (src / "model.toml").read_text(encoding="utf-8")
    (dest / "model.toml").write_text(meta, encoding="utf-8")
    toml = tomllib.loads(meta)
    stand_in_ranks(dest / toml["tokenizer"]["file"], toml["tokenizer"]["n_vocab"] - len(toml["tokenizer"]["special_tokens"]))
    layout = json.loads((src / "weights.json").read_text())["tensors"]
    gen = torch.Generator().manual_seed(0)
    state = {key: (torch.randn(shape, generator=gen) * 0.02).to(DTYPES[dtype]) for key, (dtype, shape) in layout.items()}
    save_file(state, str(dest / toml["weights"]["file"]), metadata={"format": "pt"})
    return dest


@pytest.fixture(params=NAMES)
def earlier(request: pytest.FixtureRequest, tmp_path: Path, slmtui_home: Path) -> Path:
    return rebuild(request.param, tmp_path / request.param)


@pytest.fixture
def book(tmp_path: Path) -> Path:
    path = tmp_path / "willows.txt"
    path.write_text(book_excerpt("grahame-wind-in-the-willows.txt", 6_000), encoding="utf-8")
    return path


def test_it_loads_as_it_shipped(earlier: Path) -> None:
    loaded = load_model_dir(earlier)
    layout = json.loads((EARLIER / earlier.name / "weights.json").read_text())["tensors"]
    assert loaded.info.n_params == sum(torch.Size(shape).numel() for _, shape in layout.values())
    assert loaded.info.training["heldout_bpb" if earlier.name == "default-v2" else "val_bpb"] > 1


def test_it_generates_and_evaluates(earlier: Path, book: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path in ("exact", "fused"):
        assert slmtui_main(["generate", "The mole said", "--model", str(earlier), "--max-new-tokens", "8",
                            "--seed", "1", "--path", path]) == 0
        out, _ = capsys.readouterr()
        assert out.strip(), "no continuation"
    assert slmtui_main(["eval", str(book), "--model", str(earlier), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["tokens"] > 1000 and 1 < scores["bits_per_byte"] < 20


def test_it_fine_tunes(earlier: Path, book: Path, tmp_path: Path) -> None:
    out = tmp_path / "tuned"
    assert train_main(["--init-from", str(earlier), "--corpus", str(book), "--out", str(out), "--max-steps", "2",
                       "--batch-size", "2", "--block-size", "32", "--progress", "none"]) == 0
    tuned = load_model_dir(out)
    assert tuned.info.config.block_size == 32 and tuned.info.training["parent"] == str(earlier)
    assert tuned.info.config.n_embd == load_model_dir(earlier).info.config.n_embd
