"""The writing session's moves along the story tree (undo, redo, siblings, a chosen passage, an edit) and its
notes on the story (memory, author's note, bookmarks).

A mixin of ``WritingSession`` (session.py): each stops a stream first when it must, commits to the store, then
re-reads and tells the listeners, like every operation of the session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slmtui.stories import Bookmark, Passage, Story, StoryStore

if TYPE_CHECKING:
    from slmtui.writing.session import Change


class SessionMoves:
    """Undo, redo, sibling, choose, edit; memory, author's note, bookmarks and jumps."""

    if TYPE_CHECKING:  # WritingSession's state and helpers (session.py)
        store: StoryStore
        story: Story | None
        path: list[Passage]
        candidates: tuple[int, ...]
        bookmarks: list[Bookmark]

        def _stop(self) -> bool: ...

        def _reload(self, *, tree: bool = True) -> None: ...

        def _passage(self, passage_id: int | None) -> Passage | None: ...

        def _count_memory(self) -> None: ...

        def _publish(self, change: Change) -> None: ...

        def siblings(self, passage_id: int) -> list[Passage]: ...

        def ensure_story(self) -> Story: ...

    def undo(self) -> None:
        """Step back a passage; it stays in the tree, and redo brings it back."""
        self._stop()
        self.candidates = ()
        if self.story is not None and self.path:
            self.store.undo(self.story.id)
            self._reload(tree=False)

    def redo(self) -> None:
        self._stop()
        self.candidates = ()
        if self.story is not None:
            self.store.redo(self.story.id)
            self._reload(tree=False)

    def sibling(self, step: int) -> int:
        """Switch to the next (``step`` > 0) or previous alternative of the current passage; returns how many
        alternatives there are at this point (1: nothing to switch to)."""
        self._stop()
        self.candidates = ()
        if self.story is None or not self.path:
            return 1
        moved = self.store.next_sibling(self.story.id) if step > 0 else self.store.prev_sibling(self.story.id)
        self._reload(tree=False)
        return len(self.siblings(moved.id)) if moved else 1

    def choose(self, passage_id: int) -> None:
        """Read the story to ``passage_id`` (a passage picked in the tree)."""
        self._stop()
        self.candidates = ()
        if self.story is not None:
            self.store.set_current(self.story.id, passage_id)
            self._reload(tree=False)

    def edit(self, passage_id: int, text: str) -> Passage | None:
        """The passage rewritten: a new sibling with ``text``, made current; the original (with its tokens and
        what follows it) stays in the tree, one alt+left away. None when the text did not change."""
        self._stop()
        if text == self.store.get_passage(passage_id).text:
            return None
        self.candidates = ()
        edited = self.store.edit_passage(passage_id, text)
        self._reload()
        return edited

    def set_author_note(self, text: str) -> None:
        """The text the model sees a few lines before the end (context.NOTE_DEPTH); saved with the story."""
        if self.story is None and not text:
            return
        story = self.ensure_story()
        self.story = self.store.set_author_note(story.id, text)
        self._count_memory()
        self._publish("memory")

    def set_bookmark(self, name: str, passage_id: int | None = None) -> Bookmark | None:
        """Name a passage (default: the current one) to come back to it."""
        target = self._passage(passage_id)
        if self.story is None or target is None:
            return None
        mark = self.store.set_bookmark(self.story.id, target.id, name)
        self._reload()
        return mark

    def jump(self, name: str) -> bool:
        """Read the story to the passage bookmarked ``name``; False if there is no such bookmark."""
        mark = next((b for b in self.bookmarks if b.name == name), None)
        if mark is None:
            return False
        self.choose(mark.passage_id)
        return True

    def set_memory(self, text: str) -> None:
        """The text the model always sees before the story; saved with the story (made one if needed)."""
        if self.story is None and not text:
            return
        story = self.ensure_story()
        self.story = self.store.set_memory(story.id, text)
        self._count_memory()
        self._publish("memory")
