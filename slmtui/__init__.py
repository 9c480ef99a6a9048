"""slmtui: a terminal storytelling app with its own small GPT."""

__version__ = "0.1.0"
