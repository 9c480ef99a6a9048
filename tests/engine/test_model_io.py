"""A model folder saved from tensors and loaded back: round trip, bf16, atomic writes, every kind of damage named,
and a save that keeps to where a model may be written."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import tomli_w
import torch
from safetensors.torch import load_file, save_file

from slmtui.core.errors import SlmError
from slmtui.core.gpt_config import GPTConfig
from slmtui.core.model_folder import META, METRICS, TOKENIZER, WEIGHTS, read_model_info
from slmtui.engine.model import GPT
from slmtui.engine.model_io import load_model_dir, save_model_dir
from slmtui.engine.tokenizer import Tokenizer
from tests.fs_snapshot import assert_unchanged, changes, snapshot

IDS = torch.tensor([[1, 72, 101, 108, 108, 111, 32, 200, 255, 0]])


def logits_of(model: GPT) -> torch.Tensor:
    with torch.inference_mode():
        return model.eval()(IDS)[0]


def edit_toml(folder: Path, change) -> None:  # type: ignore[no-untyped-def]
    meta = tomllib.loads((folder / META).read_text())
    change(meta)
    (folder / META).write_text(tomli_w.dumps(meta))


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_round_trip_gives_equal_logits(tiny_model: GPT, tiny_model_dir: Path) -> None:
    loaded = load_model_dir(tiny_model_dir)
    assert torch.equal(logits_of(loaded.model), logits_of(tiny_model))
    assert loaded.info.config == tiny_model.config
    assert loaded.info.training["val_loss"] == 6.25
    assert loaded.tokenizer.encode("héllo") == list("héllo".encode())
    assert not loaded.model.training
    assert sorted(p.name for p in tiny_model_dir.iterdir()) == sorted([META, WEIGHTS, TOKENIZER])


def test_tied_model_round_trips_and_stays_tied(tmp_path: Path, byte_tokenizer: Tokenizer) -> None:
    model = GPT(GPTConfig(vocab_size=257, block_size=16, n_layer=1, n_head=2, n_embd=32, tie_embeddings=True))
    folder = save_model_dir(tmp_path / "tied", model, byte_tokenizer)
    assert "lm_head.weight" not in load_file(str(folder / WEIGHTS)), "a tied matrix is stored once"
    loaded = load_model_dir(folder).model
    assert loaded.lm_head.weight.data_ptr() == loaded.transformer.wte.weight.data_ptr()
    assert torch.equal(logits_of(loaded), logits_of(model))


def test_bf16_save_loads(tiny_model: GPT, byte_tokenizer: Tokenizer, tmp_path: Path) -> None:
    folder = save_model_dir(tmp_path / "half", tiny_model, byte_tokenizer, dtype=torch.bfloat16)
    assert all(t.dtype == torch.bfloat16 for t in load_file(str(folder / WEIGHTS)).values())
    assert read_model_info(folder).path == folder
    loaded = load_model_dir(folder)
    assert loaded.model.lm_head.weight.dtype == torch.float32
    torch.testing.assert_close(logits_of(loaded.model), logits_of(tiny_model), atol=0.05, rtol=0.05)
    assert load_model_dir(folder, dtype=torch.bfloat16).model.lm_head.weight.dtype == torch.bfloat16


def test_saving_leaves_no_temporary_folders(tiny_model: GPT, byte_tokenizer: Tokenizer, tmp_path: Path) -> None:
    target = tmp_path / "m"
    save_model_dir(target, tiny_model, byte_tokenizer, training={"step": 1})
    save_model_dir(target, tiny_model, byte_tokenizer, training={"step": 2}, replace_model=True)  # replaces the first
    assert leftovers(tmp_path) == []
    assert read_model_info(target).training == {"step": 2}


def test_a_failed_save_keeps_the_old_model_and_leaves_nothing(
    tiny_model: GPT, byte_tokenizer: Tokenizer, tmp_path: Path
) -> None:
    target = save_model_dir(tmp_path / "m", tiny_model, byte_tokenizer, training={"step": 1})
    with pytest.raises(FileNotFoundError):
        save_model_dir(target, tiny_model, byte_tokenizer, extra_files={METRICS: tmp_path / "nope"},
                       replace_model=True)
    assert leftovers(tmp_path) == []
    assert read_model_info(target).training == {"step": 1}
    load_model_dir(target)


def test_training_summary_drops_none_and_keeps_paths(tiny_model: GPT, byte_tokenizer: Tokenizer, tmp_path: Path) -> None:
    folder = save_model_dir(
        tmp_path / "m", tiny_model, byte_tokenizer, training={"corpus": tmp_path, "val_loss": None, "steps": [1, None, 3]}
    )
    assert read_model_info(folder).training == {"corpus": str(tmp_path), "steps": [1, 3]}


def test_truncated_weights(tiny_model_dir: Path) -> None:
    weights = tiny_model_dir / WEIGHTS
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(SlmError, match=f"{weights} is damaged or truncated"):
        load_model_dir(tiny_model_dir)


def test_garbage_weights(tiny_model_dir: Path) -> None:
    (tiny_model_dir / WEIGHTS).write_bytes(b"\x00" * 1000)
    with pytest.raises(SlmError, match=f"{tiny_model_dir / WEIGHTS} is damaged or truncated"):
        load_model_dir(tiny_model_dir)


def test_missing_weights(tiny_model_dir: Path) -> None:
    (tiny_model_dir / WEIGHTS).unlink()
    with pytest.raises(SlmError, match=f"{tiny_model_dir / WEIGHTS} is missing"):
        load_model_dir(tiny_model_dir)


def test_missing_tensor(tiny_model_dir: Path) -> None:
    weights = tiny_model_dir / WEIGHTS
    state = load_file(str(weights))
    del state["transformer.h.1.mlp.c_fc.weight"]
    save_file(state, str(weights))
    with pytest.raises(SlmError) as e:
        load_model_dir(tiny_model_dir)
    assert str(weights) in str(e.value)
    assert "does not match model.toml: missing transformer.h.1.mlp.c_fc.weight" in str(e.value)


def test_unexpected_tensor(tiny_model_dir: Path) -> None:
    weights = tiny_model_dir / WEIGHTS
    state = load_file(str(weights))
    state["transformer.h.9.attn.c_attn.weight"] = torch.zeros(3)
    save_file(state, str(weights))
    with pytest.raises(SlmError, match="unexpected transformer.h.9.attn.c_attn.weight"):
        load_model_dir(tiny_model_dir)


def test_wrong_shape(tiny_model_dir: Path) -> None:
    weights = tiny_model_dir / WEIGHTS
    state = load_file(str(weights))
    state["transformer.wpe.weight"] = torch.zeros(32, 64)
    save_file(state, str(weights))
    with pytest.raises(SlmError) as e:
        load_model_dir(tiny_model_dir)
    assert f"{weights}: transformer.wpe.weight has shape (32, 64), model.toml implies (64, 64)" == str(e.value)


def test_nan_weights(tiny_model_dir: Path) -> None:
    weights = tiny_model_dir / WEIGHTS
    state = load_file(str(weights))
    state["lm_head.weight"][0, 0] = float("nan")
    save_file(state, str(weights))
    with pytest.raises(SlmError, match="lm_head.weight holds NaN or infinite values"):
        load_model_dir(tiny_model_dir)


def test_infinite_weights_and_huge_finite_ones(tiny_model_dir: Path) -> None:
    """The quick check sums each tensor: a sum of finite values can overflow, and such a model still loads."""
    weights = tiny_model_dir / WEIGHTS
    state = load_file(str(weights))
    state["lm_head.weight"][:] = 3e38  # finite in float32; the float32 sum of the tensor is inf
    save_file(state, str(weights))
    assert load_model_dir(tiny_model_dir).model.lm_head.weight.max().item() == pytest.approx(3e38)
    state["lm_head.weight"][1, 2] = float("-inf")
    save_file(state, str(weights))
    with pytest.raises(SlmError, match="lm_head.weight holds NaN or infinite values"):
        load_model_dir(tiny_model_dir)


def test_vocab_mismatch_between_tokenizer_and_config(tiny_model_dir: Path) -> None:
    edit_toml(tiny_model_dir, lambda m: m["model"].update(vocab_size=200))
    with pytest.raises(SlmError) as e:
        load_model_dir(tiny_model_dir)
    assert str(tiny_model_dir / META) in str(e.value)
    assert "the tokenizer has 257 tokens but the model's vocab_size is 200" in str(e.value)


def test_tokenizer_file_disagreeing_with_model_toml(tiny_model_dir: Path) -> None:
    lines = (tiny_model_dir / TOKENIZER).read_bytes().splitlines()
    (tiny_model_dir / TOKENIZER).write_bytes(b"\n".join(lines[:200]) + b"\n")
    with pytest.raises(SlmError, match=f"tokenizer file {tiny_model_dir / TOKENIZER}"):
        load_model_dir(tiny_model_dir)


def test_missing_tokenizer_file(tiny_model_dir: Path) -> None:
    (tiny_model_dir / TOKENIZER).unlink()
    with pytest.raises(SlmError, match=f"cannot read tokenizer file {tiny_model_dir / TOKENIZER}"):
        load_model_dir(tiny_model_dir)


def test_missing_model_toml(tiny_model_dir: Path) -> None:
    (tiny_model_dir / META).unlink()
    with pytest.raises(SlmError, match=f"{tiny_model_dir} is not a model folder: model.toml is missing"):
        load_model_dir(tiny_model_dir)


def test_broken_toml(tiny_model_dir: Path) -> None:
    (tiny_model_dir / META).write_text("format = 1\n[model\nvocab_size = ")
    with pytest.raises(SlmError, match=f"{tiny_model_dir / META} is not valid TOML"):
        load_model_dir(tiny_model_dir)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("model"), r"the \[model\] table is missing"),
        (lambda m: m.pop("tokenizer"), r"the \[tokenizer\] table is missing"),
        (lambda m: m["model"].update(n_head=3), r"n_embd \(64\) must be divisible by n_head \(3\)"),
        (lambda m: m["model"].update(n_heads=2), "unknown model config keys: n_heads"),
        (lambda m: m["tokenizer"].pop("n_vocab"), r"\[tokenizer\] is incomplete"),
        (lambda m: m.update(format=99), "unsupported format 99"),
        (lambda m: m.pop("format"), "unsupported format None"),
        # Types are named with the key and what was expected (a TypeError or "'<' not supported" before).
        (lambda m: m["model"].update(n_head=2.0), "n_head must be an integer, got 2.0"),
        (lambda m: m["model"].update(n_layer="six"), "n_layer must be an integer, got 'six'"),
        (lambda m: m["model"].update(bias="yes"), "bias must be true or false, got 'yes'"),
        (lambda m: m["model"].update(tie_embeddings=1), "tie_embeddings must be true or false, got 1"),
        (lambda m: m["model"].update(dropout="0.1"), "dropout must be a number, got '0.1'"),
        (lambda m: m["model"].update(vocab_size=True), "vocab_size must be an integer, got True"),
        (lambda m: m["weights"].update(dtype="int8"), r"\[weights\] dtype must be one of float32, float16, bfloat16"),
        # Too large for any memory: refused before a byte is allocated.
        (lambda m: m["model"].update(vocab_size=10**12), "needs about .* GiB of memory"),
        (lambda m: m["model"].update(block_size=10**9), "needs about .* GiB of memory"),
    ],
)
def test_bad_model_toml_names_the_file(tiny_model_dir: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    edit_toml(tiny_model_dir, change)
    with pytest.raises(SlmError, match=message) as e:
        load_model_dir(tiny_model_dir)
    assert str(tiny_model_dir / META) in str(e.value)


def test_sizes_are_checked_against_free_memory_before_allocating(tiny_model_dir: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A model that fits on paper but not in this machine's free memory is named, not an allocator crash."""
    from slmtui.engine import memory

    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 1000)
    with pytest.raises(SlmError, match=r"model.toml \(.* parameters, context 64\) needs about .* MiB of memory, and cpu has"):
        load_model_dir(tiny_model_dir)
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": None)  # unknown: no check
    assert load_model_dir(tiny_model_dir).info.name == "tiny"


def test_weights_of_an_unsupported_dtype(tiny_model_dir: Path) -> None:
    weights = tiny_model_dir / WEIGHTS
    state = load_file(str(weights))
    state["transformer.wpe.weight"] = state["transformer.wpe.weight"].to(torch.int8)
    save_file(state, str(weights))
    with pytest.raises(SlmError, match="transformer.wpe.weight is I8; weights must be float32, float16 or bfloat16"):
        load_model_dir(tiny_model_dir)


def test_more_layers_in_model_toml_than_in_the_file(tiny_model_dir: Path) -> None:
    """n_layer = 10**8 must not build even a shapes-only model of that depth."""
    edit_toml(tiny_model_dir, lambda m: m["model"].update(n_layer=10**8))
    with pytest.raises(SlmError, match=r"missing transformer.h.2 \(n_layer = 100000000, the file holds 2 layers\)"):
        load_model_dir(tiny_model_dir)


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(SlmError, match="no model folder at"):
        load_model_dir(tmp_path / "nothing")


# --- a save keeps to the guard of where a model may be written (tests/core/test_model_target.py) ------------------


def test_save_refuses_what_the_guard_refuses_and_keeps_the_new_model_beside(
    tiny_model: GPT, byte_tokenizer: Tokenizer, tmp_path: Path
) -> None:
    notes = tmp_path / "out"
    notes.mkdir()
    (notes / "notes.txt").write_text("notes\n")
    before = snapshot(tmp_path)
    with pytest.raises(SlmError, match="not a model folder") as e:
        save_model_dir(notes, tiny_model, byte_tokenizer, replace_model=True)
    kept = Path(str(e.value).rsplit("the new model is kept at ", 1)[1])
    assert kept.parent == tmp_path and f"added {kept.name}" in changes(before, snapshot(tmp_path))
    # Nothing that was there changed: the only changes are the new model's folder and its files.
    assert [c for c in changes(before, snapshot(tmp_path)) if not c.startswith(f"added {kept.name}")] == []
    assert load_model_dir(kept).info.config == tiny_model.config


def test_save_checks_again_at_the_rename_and_keeps_the_new_model(
    tiny_model: GPT, byte_tokenizer: Tokenizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder was empty when the save began and holds someone's file by the rename: it is refused,
    the file survives, and the model just written is kept beside it, under the name the error gives."""
    from slmtui.engine import model_io

    out = tmp_path / "out"
    out.mkdir()
    real_save_ranks = Tokenizer.save_ranks

    def meanwhile(self: Tokenizer, path: Path) -> None:  # runs while the new folder is being written
        real_save_ranks(self, path)
        (out / "notes.txt").write_text("written while the model was saved\n")

    monkeypatch.setattr(Tokenizer, "save_ranks", meanwhile)
    with pytest.raises(SlmError) as e:
        model_io.save_model_dir(out, tiny_model, byte_tokenizer)
    assert "is not empty and is not a model folder" in str(e.value)
    assert (out / "notes.txt").read_text() == "written while the model was saved\n"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    kept = Path(str(e.value).rsplit("the new model is kept at ", 1)[1])
    # visible, and never a name remove_leftovers could take for a killed save's (issue 23, item 9)
    assert kept == tmp_path / "out-kept-1"
    assert load_model_dir(kept).info.config == tiny_model.config


def test_an_asked_for_replacement_still_works(tiny_model: GPT, byte_tokenizer: Tokenizer, tiny_model_dir: Path) -> None:
    save_model_dir(tiny_model_dir, tiny_model, byte_tokenizer, training={"step": 7}, replace_model=True)
    assert read_model_info(tiny_model_dir).training == {"step": 7}
    assert [p.name for p in tiny_model_dir.parent.iterdir()] == [tiny_model_dir.name]  # nothing left beside it
    before = snapshot(tiny_model_dir)
    with pytest.raises(SlmError, match="already holds a model"):
        save_model_dir(tiny_model_dir, tiny_model, byte_tokenizer, training={"step": 8})
    assert_unchanged(before, snapshot(tiny_model_dir))
    assert read_model_info(tiny_model_dir).training == {"step": 7}


def test_unreadable_weights_are_said_as_unreadable_not_damaged(tiny_model_dir: Path) -> None:
    """Before: safetensors' own open said "damaged or truncated: No such file or directory" (issue 23, item 8)."""
    import builtins
    import errno

    real = builtins.open

    def chmod_000(file, *a, **k):  # type: ignore[no-untyped-def]
        if str(file).endswith(WEIGHTS):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real(file, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(builtins, "open", chmod_000)
        with pytest.raises(SlmError) as caught:
            load_model_dir(tiny_model_dir)
    assert str(caught.value) == f"cannot read {tiny_model_dir / WEIGHTS}: Permission denied"


def test_loading_computes_no_random_initialisation_and_leaves_no_meta_tensor(tiny_model_dir: Path) -> None:
    """The model is built on the meta device and the file's tensors assigned: the global RNG is not drawn
    from (a random init of weights about to be overwritten draws from it), and every tensor is real."""
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    model = load_model_dir(tiny_model_dir).model
    assert torch.equal(torch.rand(3), expected), "the load drew random numbers: a full initialisation ran"
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    assert all(p.dtype == torch.float32 and p.requires_grad for p in model.parameters())


def test_loading_runs_on_one_thread_and_gives_the_callers_setting_back(tiny_model_dir: Path) -> None:
    saved = torch.get_num_threads()
    seen: list[int] = []
    real_sum = torch.Tensor.sum
    try:
        torch.set_num_threads(2)

        def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(torch.get_num_threads())
            return real_sum(self, *args, **kwargs)

        torch.Tensor.sum = spy  # type: ignore[method-assign]
        try:
            load_model_dir(tiny_model_dir)
        finally:
            torch.Tensor.sum = real_sum  # type: ignore[method-assign]
        assert seen and set(seen) == {1}, "the finiteness sums ran on one thread"
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(saved)


def test_loading_does_not_import_torchs_compiler_stack(tiny_model_dir: Path) -> None:
    """torch._dynamo costs ~2 s of start-up; a meta-device init (normal_, or nn.Embedding's own) imports it."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from slmtui.engine.model_io import load_model_dir; "
            f"load_model_dir(Path({str(tiny_model_dir)!r})); print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"
