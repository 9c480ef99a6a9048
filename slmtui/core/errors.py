"""The one exception type whose message is meant for a person."""

from __future__ import annotations

import errno

ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM,
                                errno.ENAMETOOLONG, errno.EIO})
"""OSErrors that are the machine's state, not a bug (a full disk or quota, a read-only or foreign folder, a name
too long, a failing device): said in one line, with exit 1."""


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


def people_stream(stream: object) -> None:
    """Messages for people never fail on an encoding (PYTHONIOENCODING=ascii): what it lacks is escaped."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        try:
            reconfigure(errors="backslashreplace")
        except (ValueError, OSError):
            pass


def encoding_problem(e: UnicodeEncodeError, stream: object) -> str:
    """Why the output could not be written, and what to change: the text is the user's, never mangled."""
    encoding = getattr(stream, "encoding", None) or e.encoding
    return (f"the output's encoding ({encoding}) cannot write {e.object[e.start:e.end]!r}: set "
            "PYTHONIOENCODING=utf-8 or a UTF-8 locale (LANG=C.UTF-8), or write to a file")
