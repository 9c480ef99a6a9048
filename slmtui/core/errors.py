"""The one exception type whose message is meant for a person."""

from __future__ import annotations


class SlmError(Exception):
    """An error the user can fix: a bad file, a missing corpus, an impossible option.

    The command line prints ``error: <message>`` and exits with ``exit_code`` (1 failure,
    2 usage/input); anything else that escapes is a bug and keeps its traceback.
    """

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


def gist(e: BaseException, limit: int = 160) -> str:
    """An exception's message on one line, cut to ``limit`` characters (torch's run to pages)."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
