"""Every continuation of the story as a tree: the branch being read is marked, any passage can be chosen.

Nesting happens only where the story branches: a run of single continuations stays on one level; at a
branch point the alternatives (retries, candidates) hang under the passage they continue, and each holds its
own continuation one level further in. A 50-passage story with two retries is five levels deep, not fifty. Each node shows its first words; a bookmark's name shows beside its passage.

Keys on a node: Enter reads the story to it, ``r`` retries it (a new sibling), ``c`` continues from it (a new
child), ``e`` edits it (a new sibling with the new text), ``b`` bookmarks it. The screen does the work: the
panel posts what was asked, and ``Highlighted`` so the screen can show the node's details.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from slmtui.stories.records import Passage
from slmtui.tui.widgets.text_lines import printable

LABEL_CHARS = 40


def passage_label(p: Passage, index: int, count: int, bookmark: str | None = None) -> Text:
    words = printable(" ".join(p.text.split())) or "(empty)"
    if len(words) > LABEL_CHARS:
        words = words[: LABEL_CHARS - 1] + "…"
    mark = "✎ " if p.author == "user" else "◆ "
    flag = f"★{bookmark} " if bookmark else ""
    return Text(mark + flag + (f"{index + 1}/{count} " if count > 1 else "") + words)


TreeAction = Literal["retry", "continue", "bookmark", "edit"]


class HistoryPanel(Tree[int]):
    """The story's passages; ``data`` of each node is its passage id."""

    COMPONENT_CLASSES = {
        "history-panel--current",
        "history-panel--other",
        "history-panel--user",
        "history-panel--model",
    }

    BINDINGS = [
        Binding("e", "ask('edit')", "Edit (new branch)"),
        Binding("r", "ask('retry')", "Retry here"),
        Binding("c", "ask('continue')", "Continue from here"),
        Binding("b", "ask('bookmark')", "Bookmark"),
    ]

    @dataclass
    class Chosen(Message):
        """The user picked a passage: make it the one the story is read to."""

        passage_id: int

    @dataclass
    class Asked(Message):
        """The user asked for ``action`` on a passage of the tree (any passage, not only the last)."""

        passage_id: int
        action: TreeAction

    @dataclass
    class Highlighted(Message):
        """The cursor is on this passage: the screen shows its details."""

        passage_id: int

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("Story", id=id)
        self.show_root = False
        self.guide_depth = 2
        self._current_path: set[int] = set()
        self._authors: dict[int, str] = {}
        self.nodes_by_passage: dict[int, TreeNode[int]] = {}
        self._version: int | None = None

    def on_mount(self) -> None:
        self.border_title = "History"
        self.border_subtitle = "enter go · r retry · c continue · e edit · b mark"

    def show(self, children: Mapping[int | None, Sequence[Passage]], current_path: Sequence[int],
             bookmarks: Mapping[int, str] | None = None, *, version: int | None = None) -> None:
        """Rebuild from ``children`` (parent id -> its continuations, None for the roots); ``bookmarks``:
        passage id -> the name it was given. With the ``version`` of the last rebuild (the tree did not
        change, only the path moved), only the path's marks and the cursor move: no nodes are rebuilt."""
        if version is not None and version == self._version:
            moved = self._current_path.symmetric_difference(current_path)
            self._current_path = set(current_path)
            for pid in moved:  # repaint only the lines whose mark changed (TreeNode.refresh: one line)
                if (changed := self.nodes_by_passage.get(pid)) is not None:
                    changed.refresh()
            node = self.nodes_by_passage.get(current_path[-1]) if current_path else None
            parent = node.parent if node is not None else None
            while parent is not None:  # the path's branch points open, as a rebuild would leave them
                if not parent.is_expanded:  # expand() re-lays out the whole tree, even when it changes nothing
                    parent.expand()
                parent = parent.parent
            if node is not None and self.cursor_node is not node:
                self.call_after_refresh(self._move_to, node)
            return
        self._version = version
        marks = bookmarks or {}
        self._current_path = set(current_path)
        self._authors = {p.id: p.author for kids in children.values() for p in kids}
        self.nodes_by_passage = {}
        self.clear()
        cursor: TreeNode[int] | None = None
        current = current_path[-1] if current_path else None
        # (container node, the alternatives at this point), done iteratively: a chain can be long.
        stack: list[tuple[TreeNode[int], Sequence[Passage]]] = [(self.root, children.get(None, ()))]
        while stack:
            container, kids = stack.pop()
            parent = container  # where a branch point's alternatives go: under the passage they continue
            while len(kids) == 1:  # a single continuation: same level
                p = kids[0]
                grand = children.get(p.id, ())
                node = container.add(passage_label(p, 0, 1, marks.get(p.id)), data=p.id,
                                     expand=len(grand) > 1 and (p.id in self._current_path or p.id == current),
                                     allow_expand=len(grand) > 1)
                self.nodes_by_passage[p.id] = node
                cursor = node if p.id == current else cursor
                parent, kids = node, grand
            for i, p in enumerate(kids):  # a branch point: each alternative nests its own continuation
                grand = children.get(p.id, ())
                node = parent.add(passage_label(p, i, len(kids), marks.get(p.id)), data=p.id,
                                  expand=p.id in self._current_path, allow_expand=bool(grand))
                self.nodes_by_passage[p.id] = node
                cursor = node if p.id == current else cursor
                if grand:
                    stack.append((node, grand))
        self.root.expand()
        if cursor is not None:
            self.call_after_refresh(self._move_to, cursor)

    def _move_to(self, node: TreeNode[int]) -> None:
        self.move_cursor(node, animate=False)

    def render_label(self, node: TreeNode[int], base_style: Style, style: Style) -> Text:
        text = super().render_label(node, base_style, style)
        if node.data is not None:
            author = self._authors.get(node.data, "model")
            on_path = node.data in self._current_path
            text.stylize(self._foreground(f"history-panel--{author}"))
            text.stylize(self._foreground(f"history-panel--{'current' if on_path else 'other'}"))
        return text

    def _foreground(self, component: str) -> Style:
        """A component's colour and text style, without its background (the cursor line keeps its own).
        Not the partial style: it leaves theme colours such as $text-muted ("auto 60%") unresolved."""
        full = self.get_component_rich_style(component)
        return Style(color=full.color, bold=full.bold, dim=full.dim, italic=full.italic)

    def on_tree_node_selected(self, event: Tree.NodeSelected[int]) -> None:
        event.stop()
        if event.node.data is not None:
            self.post_message(self.Chosen(event.node.data))

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[int]) -> None:
        event.stop()
        if event.node.data is not None:
            self.post_message(self.Highlighted(event.node.data))

    def action_ask(self, action: TreeAction) -> None:
        node = self.cursor_node
        if node is not None and node.data is not None:
            self.post_message(self.Asked(node.data, action))

    def select_passage(self, passage_id: int) -> bool:
        """Put the cursor on a passage (expanding its branch); False if it is not in the tree."""
        node = self.nodes_by_passage.get(passage_id)
        if node is None:
            return False
        parent = node.parent
        while parent is not None:
            if not parent.is_expanded:
                parent.expand()
            parent = parent.parent
        self.call_after_refresh(self._move_to, node)
        return True


class PassageDetails(Widget):
    """One passage's details under the tree: who wrote it, the model and sampling, its tokens' mean probability.

    A fixed-height widget with a reactive text, not a ``Static``: ``Static.update`` re-lays out the whole screen,
    and this line changes with every cursor move in the tree."""

    text: reactive[str] = reactive("")

    def render(self) -> str:
        return self.text
