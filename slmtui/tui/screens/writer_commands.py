"""The writer's story-wide actions: the panels, the Stories screen, export, new story, and the command palette.

A mixin of ``WriterScreen`` (slmtui/tui/screens/writer.py), kept apart so the screen module stays one screenful
of composing, routing and drawing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from slmtui.engine.errors import SlmError
from slmtui.stories import EXPORT_FORMATS, export_story
from slmtui.stories.json_io import export_tree_file
from slmtui.tui.commands import Command, binding_commands
from slmtui.tui.messages import ChoicesChosen
from slmtui.tui.screens.stories import StoriesScreen
from slmtui.tui.widgets.prompt_box import PromptBox
from slmtui.tui.widgets.sampling_panel import SamplingPanel

if TYPE_CHECKING:
    from textual.screen import Screen

    from slmtui.writing.session import WritingSession

    _Base = Screen[None]
else:
    _Base = object


class StoryCommands(_Base):
    """Actions on the whole story and the palette's list of them; the screen supplies the session and the drawing."""

    session: WritingSession

    if TYPE_CHECKING:  # the screen's and TreeActions' methods these call
        def _draw_notes(self) -> None: ...

        def send(self, text: str) -> None: ...

        def jump(self, name: str) -> None: ...

        def action_pick(self, index: int) -> None: ...

        def set_choices(self, n: int) -> None: ...

    def action_toggle_panels(self) -> None:
        if self.has_class("-wide"):
            self.toggle_class("-hide-panels")
        else:
            self.toggle_class("-show-panels")

    def action_stories(self) -> None:
        session = self.session
        session.stop()
        current = session.story.id if session.story else None

        def chosen(choice: StoriesScreen.Choice | None) -> None:
            try:  # back (None): the story shown may have been renamed or deleted meanwhile
                session.open(current if choice is None else choice.story_id)
            except SlmError:
                session.open(None)
            self._draw_notes()

        self.app.push_screen(StoriesScreen(session.store, current=current), chosen)

    def action_export(self, fmt: str) -> None:
        if self.session.story is None:
            self.notify("Nothing to export yet.", timeout=3)
            return
        try:
            path = export_story(self.session.store, self.session.story.id, fmt)
        except SlmError as e:
            self.notify(str(e), title="Export failed", severity="error", timeout=10)
            return
        self.notify(f"Exported to {path}", title="Export", timeout=8)

    def action_copy_story(self) -> None:
        self.app.copy_to_clipboard(self.session.text)
        self.notify("The story is on the clipboard.", timeout=3)

    def action_export_tree(self) -> None:
        if self.session.story is None:
            self.notify("Nothing to export yet.", timeout=3)
            return
        try:
            path = export_tree_file(self.session.store, self.session.story.id)
        except SlmError as e:
            self.notify(str(e), title="Export failed", severity="error", timeout=10)
            return
        self.notify(f"The whole tree is in {path}", title="Export", timeout=8)

    def action_new_story(self) -> None:
        self.session.open(None)
        self._draw_notes()
        self.query_one(PromptBox).focus()

    def action_edit_memory(self) -> None:
        self.add_class("-show-panels")
        self.remove_class("-hide-panels")
        self.query_one("#memory-text").focus()

    def action_edit_note(self) -> None:
        self.add_class("-show-panels")
        self.remove_class("-hide-panels")
        self.query_one("#note-text").focus()

    def _choose_choices(self, n: int) -> None:
        self.set_choices(n)
        self.post_message(ChoicesChosen(n))  # kept in config.toml, as a change in the panel is

    def commands(self) -> Iterator[Command]:
        """Every binding of this screen, and the actions that have no key, for the command palette."""
        yield from binding_commands(self)
        yield Command("Continue the story", "enter on an empty prompt", lambda: self.send(""))
        yield Command("New story", "start on an empty page", self.action_new_story)
        for fmt, name in EXPORT_FORMATS.items():
            yield Command(f"Export story as {name}", f"writes a .{fmt} file and says where",
                          lambda f=fmt: self.action_export(f))
        yield Command("Export story tree as JSON", "every branch; `slmtui stories import` reads it back",
                      self.action_export_tree)
        yield Command("Copy story", "the whole story to the clipboard", self.action_copy_story)
        yield Command("Edit memory", "text the model always sees", self.action_edit_memory)
        yield Command("Edit author's note", "text the model sees a few lines before the end", self.action_edit_note)
        for mark in self.session.bookmarks:
            yield Command(f"Bookmark: {mark.name}", "jump back to this passage", lambda n=mark.name: self.jump(n))
        for n in (1, 2, 3, 4):
            yield Command(f"Choices: {n}", f"Enter, continue and retry write {n} candidate{'s' * (n > 1)} at once"
                          " (the sampling panel goes to 8)", lambda n=n: self._choose_choices(n))
        for i in range(len(self.session.candidates)):
            yield Command(f"Pick candidate {i + 1}", "it joins the story; the others stay as branches",
                          lambda i=i: self.action_pick(i))
        for name in self.query_one(SamplingPanel).all_presets():
            yield Command(f"Preset: {name}", "sampling preset", lambda n=name: self.query_one(SamplingPanel).use_preset(n))
        yield Command("Save sampling as preset", "kept in config.toml", self.query_one(SamplingPanel).ask_preset_name)
