"""The one guarded way to read what a user hands us: a file named on the command line, or standard input.

Every read is bounded (at most one byte past its limit is read, so ``/dev/zero`` or ``yes |`` ends in a second
with one clear line instead of growing until the kernel kills it), a file must be a regular file (a FIFO is
refused, not waited on: it is opened without blocking), and text must be UTF-8. Each failure is one SlmError
line naming the file, with exit status 2: the user can fix it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from slmtui.core.errors import SlmError

MiB = 1 << 20

MAX_PROMPT_BYTES = 1 * MiB
"""A prompt (``slmtui generate -`` reads it from standard input): far more than any context holds, since the model
sees only the last block_size tokens of it; a megabyte of opening is a mistake, not a story."""
MAX_TEXT_FILE_BYTES = 256 * MiB
"""A text scored by ``slmtui eval FILE``: the longest book is under 5 MB, the whole 145-book corpus 61 MB."""
MAX_IMPORT_BYTES = 256 * MiB
"""A story JSON (``slmtui stories import``): a tree of a million passages or a 50 MB passage fits."""

_CHUNK = MiB


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB else f"{n:,} bytes"


def read_file_bytes(path: Path, *, limit: int, what: str) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them; ``what`` names it in messages
    ("a story file", "a lore file"). Folders, FIFOs, devices, sockets and larger files are refused."""
    path = Path(path).expanduser()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as e:
        raise SlmError(f"cannot read {path}: No such file or directory") from e
    except IsADirectoryError as e:
        raise SlmError(f"cannot read {path}: it is a folder (give {what})") from e
    except OSError as e:
        raise SlmError(f"cannot read {path}: {e.strerror or e}") from e
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise SlmError(f"cannot read {path}: it is a folder (give {what})")
        if not stat.S_ISREG(mode):
            raise SlmError(f"{path} is not a regular file (a FIFO, device or socket): {what} is read only from a "
                           "regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise SlmError(f"cannot read {path}: {e.strerror or e}") from e
    finally:
        os.close(fd)
    if size > limit:
        raise SlmError(f"{path} is larger than {_size(limit)}, the most {what} may hold")
    return b"".join(chunks)


def decode_utf8(data: bytes, source: str) -> str:
    """``data`` as UTF-8 text; one line naming ``source`` and the first bad byte otherwise."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SlmError(f"{source} is not UTF-8 text (byte {e.start} is not valid UTF-8)") from e


def read_file_text(path: Path, *, limit: int, what: str) -> str:
    """``read_file_bytes`` decoded as UTF-8, the bytes as they are (no newline translation)."""
    return decode_utf8(read_file_bytes(path, limit=limit, what=what), str(Path(path).expanduser()))


def check_regular_file(path: Path, *, limit: int, what: str) -> Path:
    """``path`` when it is a regular file of at most ``limit`` bytes, for a reader that opens it itself."""
    path = Path(path).expanduser()
    try:
        st = path.stat()
    except FileNotFoundError as e:
        raise SlmError(f"cannot read {path}: No such file or directory") from e
    except OSError as e:
        raise SlmError(f"cannot read {path}: {e.strerror or e}") from e
    if stat.S_ISDIR(st.st_mode):
        raise SlmError(f"cannot read {path}: it is a folder (give {what})")
    if not stat.S_ISREG(st.st_mode):
        raise SlmError(f"{path} is not a regular file (a FIFO, device or socket): {what} is read only from a "
                       "regular file")
    if st.st_size > limit:
        raise SlmError(f"{path} is larger than {_size(limit)}, the most {what} may hold")
    return path


def read_stream_text(stream: BinaryIO, *, limit: int, what: str, source: str = "standard input") -> str:
    """At most ``limit`` bytes of ``stream`` (standard input's buffer) as UTF-8; more is refused after reading
    one byte past the limit, so an endless stream ends at once."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise SlmError(f"{source} holds more than {_size(limit)}, the most {what} may be")
    return decode_utf8(data, source)
