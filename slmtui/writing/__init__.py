"""The writing session, without Textual: the open story, the path shown, streams in progress, and every
operation on them. Services sit between the TUI and the engine; they never import Textual or a widget."""
