"""What can be checked before the first step, so that hours of training never end in a save that cannot be.

A run that fails at its save loses everything it learned since the last one; most such failures can be seen
coming: a model name too long for the file system's temporary names, a folder the run may not write, a disk
without room for one save, a context too short for the evaluation. Each is refused here, in one line, before
any work (tests/trainer/test_preflight.py). What cannot be foreseen (the disk filling during the run) is said
by the save itself (engine/model_io.py) in one line, and the last good save stays.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from slmtui.core.errors import SlmError
from slmtui.core.gpt_config import GPTConfig

MIN_BLOCK_SIZE = 2
"""The shortest context a model can be evaluated and sampled with: one token read, one predicted after it."""
TEMP_SUFFIX = ".old-XXXXXXXX"
"""The longest addition to a model folder's name while it is saved: ``.NAME.tmp-*``/``.NAME.old-*`` beside it
(core/model_folder.py; mkdtemp's 8 random characters)."""
SAVE_MARGIN_BYTES = 16 << 20
"""Room beyond the estimate: the tokenizer's rank file (about 1 MB for GPT-2's), model.toml, metrics, the plot."""


def existing_ancestor(path: Path) -> Path:
    """``path`` or the nearest folder above it that exists: where its folders would be made."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_name(out: Path) -> None:
    """The model folder's name, with the temporary names made beside it, fits the file system (ENAMETOOLONG
    would come at the save, after the training)."""
    try:
        limit = os.pathconf(existing_ancestor(out.parent), "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    longest = len(os.fsencode(f".{out.name}{TEMP_SUFFIX}"))
    if longest > limit:
        room = limit - (longest - len(os.fsencode(out.name)))
        raise SlmError(f"the model name {out.name[:40]}… is {len(os.fsencode(out.name))} bytes long: saving it "
                       f"needs names {longest - len(os.fsencode(out.name))} bytes longer, over this file system's "
                       f"{limit}; use a name of at most {room} bytes")


def check_writable(out: Path) -> None:
    """The run may make and rename folders where its model goes (a read-only disk, a folder of someone else's
    or ``chmod 555`` would fail only at the save)."""
    where = existing_ancestor(out.parent)
    if not where.is_dir():
        return  # a file in the way: check_model_target says that in its own words
    if not os.access(where, os.W_OK | os.X_OK):
        read_only = _read_only_fs(where)
        why = "the file system is read-only" if read_only else "permission denied"
        raise SlmError(f"cannot save the model to {out}: {where} is not writable ({why}); choose another --name "
                       "or --out, or make it writable", exit_code=1)


def _read_only_fs(where: Path) -> bool:
    try:
        return bool(os.statvfs(where).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def save_bytes(config: GPTConfig) -> int:
    """A save's size, over-estimated: the weights in float32 (4 bytes a parameter) and train_state.pt, which
    holds them again with AdamW's two moments (12 more), plus the small files."""
    return 16 * config.param_count + SAVE_MARGIN_BYTES


def check_space(out: Path, config: GPTConfig) -> None:
    """Room for one save beside the folder (the old model stays until the new one is renamed into place)."""
    where = existing_ancestor(out.parent)
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        return
    need = save_bytes(config)
    if free < need:
        raise SlmError(f"not enough space to save the model in {where}: a save takes about {_mb(need)}, "
                       f"{_mb(free)} is free ({os.strerror(errno.ENOSPC)}); free space or choose another --out",
                       exit_code=1)


def check_block_size(block_size: int) -> None:
    if block_size < MIN_BLOCK_SIZE:
        raise SlmError(f"--block-size {block_size} is too short: the model needs a context of at least "
                       f"{MIN_BLOCK_SIZE} tokens (one to read, one to predict after it)")


def _mb(n: int) -> str:
    return f"{n / (1 << 20):,.1f} MiB"
