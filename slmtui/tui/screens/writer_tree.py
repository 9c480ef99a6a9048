"""The writer's actions on passages of the tree: walk it, bookmark, edit, and the details line of one passage.

A mixin of ``WriterScreen`` (slmtui/tui/screens/writer.py), kept apart so the screen module stays one screenful
of composing, routing and drawing; every operation is the session's, these only ask and notify.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slmtui.core.errors import SlmError
from slmtui.tui.modals import AskScreen, EditTextScreen
from slmtui.tui.widgets.history_panel import HistoryPanel
from slmtui.tui.widgets.prompt_box import PromptBox

if TYPE_CHECKING:
    from textual.screen import Screen

    from slmtui.tui.widgets.story_view import StoryView
    from slmtui.writing.session import WritingSession

    _Base = Screen[None]
else:
    _Base = object


class TreeActions(_Base):
    """Undo, redo, retry, branches, candidates, the token view, bookmarks and edits: on the current passage or any."""

    session: WritingSession

    if TYPE_CHECKING:
        @property
        def story_view(self) -> StoryView: ...

    def action_undo(self) -> None:
        self.session.undo()

    def action_redo(self) -> None:
        self.session.redo()

    def action_retry(self) -> None:
        self.session.retry()

    def action_sibling(self, step: int) -> None:
        if self.session.path and self.session.sibling(step) == 1:
            self.notify("No other branch here: Retry (ctrl+r) writes one.", timeout=3)

    def action_pick(self, index: int) -> None:
        """Pick candidate ``index`` (0-based) from the palette or a test."""
        self.session.pick(index)

    def action_toggle_tokens(self) -> None:
        if not self.story_view.toggle_token_view():
            self.query_one(PromptBox).focus()

    def details(self, passage_id: int) -> str:
        """What the tree's details line says of a passage: who wrote it, with which model and sampling."""
        session = self.session
        p = session.passage(passage_id)
        if p is None:
            return ""
        model = p.model or (session.story.model if session.story else None) or "?"
        parts = ["you" if p.author == "user" else f"model {model}"]
        if p.sampling:
            s = p.sampling
            short = (("temperature", "t"), ("top_k", "k"), ("top_p", "p"), ("seed", "seed"))
            parts.append(" ".join(f"{name} {s[k]}" for k, name in short if s.get(k) is not None))
        prob = session.mean_prob(p.id)
        if prob is not None:
            parts.append(f"{len(session.tokens.get(p.id, []))} tokens, p̄ {prob:.2f}")
        kids = len(session.tree.get(p.id, []))
        if kids:
            parts.append(f"{kids} continuation{'s' if kids > 1 else ''}")
        names = [b.name for b in session.bookmarks if b.passage_id == p.id]
        if names:
            parts.append("★ " + ", ".join(names))
        return " · ".join(parts)

    def action_go_to_tree(self) -> None:
        self.add_class("-show-panels")
        self.remove_class("-hide-panels")
        self.query_one(HistoryPanel).focus()

    def action_bookmark(self) -> None:
        if self.session.path:
            self.ask_bookmark(self.session.path[-1].id)
        else:
            self.notify("Nothing to bookmark yet.", timeout=3)

    def ask_bookmark(self, passage_id: int) -> None:
        def named(name: str | None) -> None:
            if name and name.strip():
                try:
                    self.session.set_bookmark(name, passage_id)
                except SlmError as e:
                    self.notify(e.message, severity="warning")
                    return
                self.notify(f"Bookmarked “{' '.join(name.split())}”: jump back from the palette (ctrl+p).", timeout=4)

        self.app.push_screen(AskScreen("Name this passage (a bookmark):", placeholder="e.g. the door"), named)

    def jump(self, name: str) -> None:
        if self.session.jump(name):
            self.query_one(HistoryPanel).select_passage(self.session.path[-1].id)

    def action_edit_current(self) -> None:
        if self.session.path:
            self.edit_passage(self.session.path[-1].id)
        else:
            self.notify("Nothing to edit yet.", timeout=3)

    def edit_passage(self, passage_id: int) -> None:
        self.session.stop()
        passage = self.session.store.get_passage(passage_id)
        who = "your" if passage.author == "user" else "the model's"

        def save(text: str | None) -> None:
            if text is not None:
                self.session.edit(passage_id, text)

        title = f"Edit {who} passage: saved as a new branch, the original stays (ctrl+s saves, Esc cancels)"
        self.app.push_screen(EditTextScreen(title, passage.text), save)
