"""The writing session, without Textual: the open story, the path shown, streams in progress, and every
operation on them. Services sit between the TUI and the engine; they never import Textual or a widget."""

MAX_CHOICES = 8
"""The most continuations one generation writes side by side (the "choices" setting runs 1..MAX_CHOICES)."""
