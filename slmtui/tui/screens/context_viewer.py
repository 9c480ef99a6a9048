"""The context viewer: exactly what the model reads for its next token, part by part, and what was cut and why.

It draws one ``ModelContext`` (writing/context.py, the one context builder that the continuation itself uses),
so what it shows is what the engine is given: the memory, each lore entry with the key that brought it in, the
story's tail with the author's note where it is woven in; each part in its own colour (context_viewer.tcss)
with its token count. The same parts, as text, are what ``slmtui generate --show-context`` prints.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from slmtui.engine.tokenizer import Tokenizer
from slmtui.format import plural
from slmtui.tui.widgets.text_lines import printable
from slmtui.writing.context import ModelContext

NO_MODEL = "No model is loaded, so there is no context yet: the model's tokenizer and context size decide it."


class ContextViewerScreen(Screen[None]):
    """What the model reads next; Escape goes back. The writer hands in the session's context."""

    CSS_PATH = "context_viewer.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "back", "Back")]

    def __init__(self, ctx: ModelContext | None, tokenizer: Tokenizer | None, *, model: str = "the model",
                 writing: bool = False) -> None:
        super().__init__()
        self.ctx = ctx
        self.tokenizer = tokenizer
        self.model_name = model
        self.writing = writing
        """A continuation is being written: the context shown is the one it began from."""

    def compose(self) -> ComposeResult:
        yield Header(icon="✎")
        yield Static(self.summary(), id="context-summary", markup=False)
        with VerticalScroll(id="context-parts"):
            ctx, tokenizer = self.ctx, self.tokenizer
            if ctx is None or tokenizer is None:
                yield Static(NO_MODEL, classes="context-empty", markup=False)
            else:
                for part in ctx.parts(tokenizer):
                    why = f" · {part.why}" if part.why else ""
                    yield Static(f"{part.label} · {plural(part.n_tokens, 'token')}{why}",
                                 classes=f"part-title -{part.kind}", markup=False)
                    text = printable(part.text).replace("\n", "⏎\n").rstrip("\n") if part.text else "(nothing: "\
                        "the model starts from the beginning of a text)"
                    yield Static(text, classes=f"part-text -{part.kind}", markup=False)
                cuts = ctx.cuts()
                yield Static("left out · " + (plural(len(cuts), 'thing') if cuts else "nothing"),
                             classes="part-title -cut", markup=False)
                for cut in cuts:
                    yield Static(printable(cut), classes="part-text -cut", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "what the model reads next"
        self.query_one("#context-parts").focus()

    def summary(self) -> str:
        """One line: how full the context is, and what fills it, by kind."""
        ctx, tokenizer = self.ctx, self.tokenizer
        if ctx is None or tokenizer is None:
            return "context: no model loaded"
        by_kind: dict[str, int] = {}
        for part in ctx.parts(tokenizer):
            by_kind[part.kind] = by_kind.get(part.kind, 0) + part.n_tokens
        n_lore = len(ctx.lore.inserted)
        said = [f"{name} {by_kind[kind]}" + (f" ({n_lore} entr{'y' if n_lore == 1 else 'ies'})" if kind == "lore"
                                             else "")
                for kind, name in (("memory", "memory"), ("lore", "lore"), ("story", "story"), ("note", "note"))
                if kind in by_kind]
        when = "began its continuation from" if self.writing else "reads for its next token"
        return (f"{self.model_name} {when}: {len(ctx.window)} of {ctx.block_size} tokens"
                + (" · " + " · ".join(said) if said else ""))

    def action_back(self) -> None:
        self.dismiss(None)
