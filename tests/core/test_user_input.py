"""The guarded reads of user input: bounded, regular files only, UTF-8, one line each."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest

from slmtui.core.errors import SlmError
from slmtui.core.user_input import (check_regular_file, read_file_bytes, read_file_text, read_stream_text)


def test_a_file_at_its_limit_is_read_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "story.json"
    f.write_bytes(b"x" * 100)
    assert read_file_bytes(f, limit=100, what="a story file") == b"x" * 100
    with pytest.raises(SlmError, match=r"story.json is larger than 99 bytes, the most a story file may hold$"):
        read_file_bytes(f, limit=99, what="a story file")
    assert check_regular_file(f, limit=100, what="a text") == f
    with pytest.raises(SlmError, match="is larger than 99 bytes"):
        check_regular_file(f, limit=99, what="a text")


def test_what_is_not_a_regular_file_is_refused_without_waiting(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    result: list[BaseException] = []
    reader = threading.Thread(target=lambda: result.append(pytest.raises(SlmError, read_file_bytes, pipe, limit=10,
                                                                        what="a lore file").value), daemon=True)
    reader.start()
    reader.join(5)
    assert not reader.is_alive(), "opening a FIFO waited for a writer"
    assert "is not a regular file (a FIFO, device or socket): a lore file is read only from a regular file" in str(
        result[0])
    for reading in (read_file_bytes, check_regular_file):
        with pytest.raises(SlmError, match="is not a regular file"):
            reading(Path("/dev/zero"), limit=10, what="a text")
        with pytest.raises(SlmError, match=r"cannot read .*: it is a folder \(give a text\)$"):
            reading(tmp_path, limit=10, what="a text")
        with pytest.raises(SlmError, match="cannot read .*none.txt: No such file or directory$"):
            reading(tmp_path / "none.txt", limit=10, what="a text")


def test_a_link_to_a_regular_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "book.txt").write_text("Once")
    (tmp_path / "link.txt").symlink_to(tmp_path / "book.txt")
    assert read_file_text(tmp_path / "link.txt", limit=10, what="a text") == "Once"


def test_text_is_utf8_as_it_is(tmp_path: Path) -> None:
    f = tmp_path / "book.txt"
    f.write_bytes(b"line\r\ncaf\xc3\xa9")
    assert read_file_text(f, limit=100, what="a text") == "line\r\ncafé"  # no newline translation
    f.write_bytes("café".encode("latin-1"))
    with pytest.raises(SlmError, match=r"book.txt is not UTF-8 text \(byte 3 is not valid UTF-8\)$"):
        read_file_text(f, limit=100, what="a text")


def test_a_stream_is_read_up_to_its_bound() -> None:
    assert read_stream_text(io.BytesIO(b"Once upon"), limit=9, what="a prompt") == "Once upon"
    with pytest.raises(SlmError, match="^standard input holds more than 8 bytes, the most a prompt may be$"):
        read_stream_text(io.BytesIO(b"Once upon"), limit=8, what="a prompt")


class Endless(io.RawIOBase):
    """A stream that never ends (``yes``): how much of it was read is counted."""

    def __init__(self) -> None:
        self.given = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        buffer[:] = b"y" * len(buffer)
        self.given += len(buffer)
        return len(buffer)


def test_an_endless_stream_is_read_one_byte_past_the_bound_at_most() -> None:
    raw = Endless()
    with pytest.raises(SlmError, match="more than 1 MiB"):
        read_stream_text(io.BufferedReader(raw), limit=1 << 20, what="a prompt")
    assert raw.given <= (1 << 20) + io.DEFAULT_BUFFER_SIZE
