"""`slmtui stories` (slmtui/stories/cli.py): list and export headless; `export ID -o PATH` writes regular files
only, an existing one replaced only with --force.

Each refusal exits 2 with one line on stderr, and the folder around PATH is byte-identical afterwards
(tests/fs_snapshot.py: link targets, file kinds, inodes), so a link, FIFO or device node is never swapped
for a plain file.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from slmtui.cli import main
from slmtui.core import paths
from slmtui.stories.store import StoryStore
from tests.fs_snapshot import assert_unchanged, snapshot


STORY = "# Dorothy walked down the road"


def saved_story() -> int:
    with StoryStore(paths.stories_db()) as store:
        story = store.create_story(model="tiny")
        root = store.add_passage(story.id, parent_id=None, author="user", text="Dorothy walked down the road")
        store.add_passage(story.id, parent_id=root.id, author="model", text=" and met a lion.")
        return story.id


@pytest.fixture
def story_id() -> int:
    return saved_story()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def export(capsys: pytest.CaptureFixture[str], story_id: int, target: Path | str, *extra: str) -> tuple[int, str]:
    code = main(["stories", "export", str(story_id), "-o", str(target), *extra])
    return code, capsys.readouterr().err


def one_error(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code, _, err = run(capsys, *argv)
    return code, err


def assert_refused(code: int, err: str, words: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("slmtui: error: ") and words in lines[0], err


def test_stories_list_and_export(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(capsys, "stories", "list")[1].startswith("no stories yet")
    story_id = saved_story()
    code, out, _ = run(capsys, "stories", "list", "--json")
    assert code == 0 and json.loads(out)[0]["title"] == "Dorothy walked down the road"
    code, out, _ = run(capsys, "stories", "export", str(story_id), "--format", "txt")
    assert (code, out) == (0, "Dorothy walked down the road and met a lion.\n")
    code, out, _ = run(capsys, "stories", "export", str(story_id))
    assert code == 0 and "**Dorothy walked down the road** and met a lion." in out
    target = tmp_path / "story.md"
    assert run(capsys, "stories", "export", str(story_id), "-o", str(target))[0] == 0
    assert target.read_text().startswith("# Dorothy walked down the road")


def test_stories_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert_refused(*one_error(capsys, "stories", "export", "1"), "no stories yet")
    saved_story()
    assert_refused(*one_error(capsys, "stories", "export", "99"), "no story with id 99")
    assert_refused(*one_error(capsys, "stories"), "required")
    assert_refused(*one_error(capsys, "stories", "export", "x"), "invalid int value")


def _link_to_file(t: Path) -> Path:
    (t / "mine.md").write_text("my own notes\n")
    (t / "out.md").symlink_to(t / "mine.md")
    return t / "out.md"


def _dangling_link(t: Path) -> Path:
    (t / "out.md").symlink_to(t / "nowhere.md")
    return t / "out.md"


def _fifo(t: Path) -> Path:
    os.mkfifo(t / "out.md")
    return t / "out.md"


def _folder(t: Path) -> Path:
    (t / "out.md").mkdir()
    (t / "out.md" / "keep.txt").write_text("keep\n")
    return t / "out.md"


def _existing(t: Path) -> Path:
    (t / "out.md").write_text("an earlier draft\n")
    return t / "out.md"


CASES: dict[str, tuple[Callable[[Path], Path], tuple[str, ...], str]] = {
    # case: (make the target in tmp_path, extra flags, words the message must hold)
    "link to a file": (_link_to_file, ("--force",), "is a symbolic link"),
    "link to a file, no force": (_link_to_file, (), "is a symbolic link"),
    "dangling link": (_dangling_link, ("--force",), "is a symbolic link"),
    "FIFO": (_fifo, ("--force",), "is a FIFO"),
    "folder": (_folder, ("--force",), "is a folder"),
    "existing file without --force": (_existing, (), "already exists: add --force"),
    "missing folder": (lambda t: t / "no-such-folder" / "out.md", (), "does not exist"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_export_refuses_and_touches_nothing(case: str, capsys: pytest.CaptureFixture[str], story_id: int,
                                            tmp_path: Path) -> None:
    make, extra, words = CASES[case]
    target = make(tmp_path)
    before = snapshot(tmp_path)
    assert_refused(*export(capsys, story_id, target, *extra), words)
    assert_unchanged(before, snapshot(tmp_path))


def _device(tmp_path: Path) -> Path:
    """A /dev/full-like node: made in tmp_path when this process may (root), else /dev/full itself, which a
    process that may not make device nodes cannot replace either: the test never risks the real one."""
    if os.geteuid() == 0:
        try:
            os.mknod(tmp_path / "full", stat.S_IFCHR | 0o666, os.makedev(1, 7))
            return tmp_path / "full"
        except OSError as e:
            pytest.skip(f"cannot make a device node here ({e.strerror})")  # a root without CAP_MKNOD
    return Path("/dev/full")


def test_export_refuses_a_device(capsys: pytest.CaptureFixture[str], story_id: int, tmp_path: Path) -> None:
    device = _device(tmp_path)
    before = snapshot(device)
    assert_refused(*export(capsys, story_id, device, "--force"), "is a device")
    assert_unchanged(before, snapshot(device))
    assert stat.S_ISCHR(device.lstat().st_mode)


def test_export_writes_a_new_file(capsys: pytest.CaptureFixture[str], story_id: int, tmp_path: Path) -> None:
    code, err = export(capsys, story_id, tmp_path / "story.md")
    assert code == 0, err
    assert (tmp_path / "story.md").read_text().startswith(STORY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["story.md"]  # no temporary file left


def test_export_force_replaces_a_regular_file_keeping_its_permissions(
    capsys: pytest.CaptureFixture[str], story_id: int, tmp_path: Path
) -> None:
    target = _existing(tmp_path)
    target.chmod(0o640)
    code, err = export(capsys, story_id, target, "--force", "--format", "txt")
    assert code == 0, err
    assert target.read_text() == "Dorothy walked down the road and met a lion."
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.md"]
