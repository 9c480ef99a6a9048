"""A story's current branch as Markdown or text, and the export file the app writes: functions over the store's
public reads (the whole tree as JSON is json_io.py's)."""

from __future__ import annotations

import re
from pathlib import Path

from slmtui.core import paths
from slmtui.core.atomic import write_regular_file
from slmtui.core.errors import SlmError
from slmtui.core.sampling_record import describe_record
from slmtui.stories.records import EXPORT_FORMATS
from slmtui.stories.store import StoryStore


def export_as(store: StoryStore, story_id: int, fmt: str) -> str:
    """The story's current branch in ``fmt``: "md" (``export_markdown``) or "txt" (``export_text``)."""
    if fmt not in EXPORT_FORMATS:
        raise SlmError(f"unknown export format {fmt!r}; choose one of: {', '.join(EXPORT_FORMATS)}")
    return export_markdown(store, story_id) if fmt == "md" else export_text(store, story_id)


def export_text(store: StoryStore, story_id: int) -> str:
    """The current path's text, exactly as the reader sees it."""
    return store.story_text(story_id)


def export_markdown(store: StoryStore, story_id: int) -> str:
    """Markdown of the current path: the title as a heading, an italic note naming the model and the
    sampling used, then the text. The user's passages are **bold**, the model's plain, so who wrote what
    survives the export; Markdown characters in the text are escaped so it renders as written."""
    story = store.get_story(story_id)
    # The path to the passage read with the story: a passage's ancestors never change, so this is that branch.
    path = store.path_to(story.current_passage_id) if story.current_passage_id is not None else []
    samplings: list[str] = []
    for p in path:
        if p.author == "model" and p.sampling:
            note = describe_record(p.sampling)
            if note not in samplings:
                samplings.append(note)
    note = f"model `{story.model}`" if story.model else "model unknown"
    if samplings:
        note += "; sampling: " + "; ".join(samplings)
    body = "".join(_bold(p.text) if p.author == "user" else _escape(p.text) for p in path)
    return f"# {_escape(story.title)}\n\n_Written with slmtui, {note}. User text in bold._\n\n{body}\n"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")
_MD_LINE_START = re.compile(r"^(\s*\d*)([-+=.)])", re.MULTILINE)  # "- x", "+ x", "===", "1. x", "2) x"


def _escape(text: str) -> str:
    """Backslash-escape what Markdown would read as markup (emphasis, links, headings, list markers)."""
    return _MD_LINE_START.sub(r"\1\\\2", _MD_SPECIAL.sub(r"\\\1", text))


def _bold(text: str) -> str:
    """Bold each line separately (``**`` cannot span paragraphs) and keep whitespace outside the markers."""
    out = []
    for line in text.split("\n"):
        m = re.fullmatch(r"(\s*)(.*?)(\s*)", line, re.DOTALL)
        assert m is not None
        lead, content, trail = m.groups()
        out.append(f"{lead}**{_escape(content)}**{trail}" if content else line)
    return "\n".join(out)


def exports_dir() -> Path:
    """Where the app writes exported stories (the CLI writes where it is told)."""
    return paths.data_dir() / "exports"


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "story"


def export_story(store: StoryStore, story_id: int, fmt: str) -> Path:
    """Write the story's current branch to ``<data dir>/exports/<title>-<id>.<fmt>``; returns the file.

    Exporting again replaces that file (the app named it), but never a link, FIFO or folder found in its
    place: that raises SlmError, which the screens show.
    """
    story = store.get_story(story_id)
    text = export_as(store, story_id, fmt)
    path = exports_dir() / f"{slug(story.title)}-{story.id}.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_regular_file(path, text.encode("utf-8"), replace=True)
