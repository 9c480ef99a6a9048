"""Finding things in a story's tree: where a passage sits (on the reader's path, ahead of it, or on another
branch, and where that branch leaves the path), and a text search over every passage of every branch.

Both read the tree the writing session already holds (parent id -> its continuations, in sibling order), so
a search of a 300-passage tree is a few milliseconds of Python and no query; no Textual here: the bookmarks
and search screens draw these answers, tests/writing/test_tree_search.py checks them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from slmtui.stories.records import Passage

Tree = Mapping[int | None, Sequence[Passage]]
"""Parent id (None for the roots) -> its continuations, in sibling order: ``WritingSession.tree``."""
Relation = Literal["path", "ahead", "branch"]

MAX_HITS = 500
"""Passages a search lists at most: a one-letter search of a long story would otherwise list them all."""
SPAN_CHARS = 200
"""How much of the text before a passage a match may begin in: a phrase that runs across two passages (the
user's line and the model's words after it) is found, and belongs to the passage it ends in."""
CONTEXT_BEFORE = 24
"""Characters of the story shown before a match in a hit's snippet."""
SNIPPET_CHARS = 90


@dataclass(frozen=True)
class Place:
    """Where a passage is in the tree, as the reader sees it from the passage they are on."""

    depth: int
    """Its number along its own path from the story's start (1 for an opening passage)."""
    relation: Relation
    """``path``: on the story as it reads now; ``ahead``: below the current passage (redo goes there);
    ``branch``: on another branch."""
    branch_at: int = 0
    """For ``branch``: the number of the passage the branch continues (0: the story's start)."""
    index: int = 0
    """For ``branch``: which alternative at that point (1-based) ..."""
    count: int = 0
    """... of how many."""

    def describe(self) -> str:
        """The place in words: "passage 14, on your path", "passage 9, branch 2/3 after passage 5"."""
        here = f"passage {self.depth}"
        if self.relation == "path":
            return f"{here}, on your path"
        if self.relation == "ahead":
            return f"{here}, ahead on this branch"
        after = f"after passage {self.branch_at}" if self.branch_at else "at the start"
        return f"{here}, branch {self.index}/{self.count} {after}"


def path_of(tree: Tree, passage_id: int) -> list[Passage]:
    """Root to ``passage_id`` in ``tree``; empty if the passage is not in it."""
    by_id = {p.id: p for kids in tree.values() for p in kids}
    path: list[Passage] = []
    pid: int | None = passage_id
    while pid is not None and pid in by_id:
        path.append(by_id[pid])
        pid = by_id[pid].parent_id
    return path[::-1] if pid is None else []


def place_of(tree: Tree, current_path: Sequence[int], passage_id: int) -> Place | None:
    """Where ``passage_id`` is, seen from the path ``current_path`` (root to current passage ids); None if
    the passage is not in the tree."""
    path = path_of(tree, passage_id)
    if not path:
        return None
    return _place(tree, current_path, [p.id for p in path], path[-1])


def _place(tree: Tree, current: Sequence[int], ids: Sequence[int], passage: Passage) -> Place:
    split = next((i for i, (a, b) in enumerate(zip(ids, current)) if a != b), min(len(ids), len(current)))
    if split == len(ids):
        return Place(len(ids), "path")
    if split == len(current):
        return Place(len(ids), "ahead")
    parent = ids[split - 1] if split else None
    siblings = [p.id for p in tree.get(parent, ())]
    return Place(len(ids), "branch", branch_at=split, index=siblings.index(ids[split]) + 1, count=len(siblings))


@dataclass(frozen=True)
class Hit:
    """A passage the searched text was found in (the first match in it; ``matches`` counts them all)."""

    passage_id: int
    place: Place
    start: int
    """Where the first match begins in the passage's text (negative: that many characters before it, in the
    passages above)."""
    end: int
    """Where it ends in the passage's text."""
    matches: int
    snippet: str
    """The match with some of the story around it, on one line."""
    snippet_match: tuple[int, int]
    """Where the match is in ``snippet``."""


def query_pattern(query: str) -> re.Pattern[str] | None:
    """The search as a pattern: case-insensitive, any run of spaces or line breaks matching any other; None
    for a blank query."""
    words = query.split()
    if not words:
        return None
    return re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE)


def search_tree(tree: Tree, current_path: Sequence[int], query: str, *, limit: int = MAX_HITS) -> list[Hit]:
    """Every passage of the tree whose text holds ``query`` (case-insensitive; a match may begin in the text
    above the passage), in the History tree's order: depth first, alternatives in their order."""
    pattern = query_pattern(query)
    if pattern is None:
        return []
    hits: list[Hit] = []
    # (passage, ids root..it, the last SPAN_CHARS of the text above it), depth first: a chain can be long.
    stack: list[tuple[Passage, tuple[int, ...], str]] = [(p, (p.id,), "") for p in reversed(tree.get(None, ()))]
    while stack and len(hits) < limit:
        p, ids, before = stack.pop()
        text = before + p.text
        found = [m for m in pattern.finditer(text) if m.end() > len(before)]
        if found:
            hits.append(_hit(tree, current_path, ids, p, text, len(before), found))
        above = text[-SPAN_CHARS:]
        stack.extend((kid, (*ids, kid.id), above) for kid in reversed(tree.get(p.id, ())))
    return hits


def _hit(tree: Tree, current: Sequence[int], ids: Sequence[int], p: Passage, text: str, offset: int,
         found: list[re.Match[str]]) -> Hit:
    first = found[0]
    a = max(0, first.start() - CONTEXT_BEFORE)
    if a > 0:  # begin the snippet at a word
        space = text.find(" ", a, first.start())
        a = space + 1 if space >= 0 else a
    b = max(first.end(), a + SNIPPET_CHARS)
    before, match, after = (_one_line(text[a:first.start()]), _one_line(text[first.start():first.end()]),
                            _one_line(text[first.end():b]))
    if a > 0:
        before = "…" + before.lstrip()
    if b < len(text):
        after = after.rstrip() + "…"
    return Hit(p.id, _place(tree, current, ids, p), first.start() - offset, first.end() - offset, len(found),
               before + match + after, (len(before), len(before) + len(match)))


def _one_line(text: str) -> str:
    return re.sub(r"\s", " ", text)
