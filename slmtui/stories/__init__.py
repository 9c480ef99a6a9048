"""Stories as trees of passages, kept in one SQLite database (``stories.db``); no UI here.

Every passage (the user's text or the model's continuation) has a parent, and the story's text at a passage is
the concatenation of the texts from the root down to it. Undo walks up the tree, retry adds a sibling, so
nothing anyone wrote is ever deleted; ``current_passage_id`` marks the branch the user is reading.

Every public mutating method is one transaction, committed before it returns: the app can be killed at any
moment and the database holds everything up to the last call. WAL with ``synchronous=NORMAL`` keeps those
commits cheap (no fsync per commit) so ``append_text`` can run for each streamed chunk; an app crash loses
nothing, a power cut at worst the last few commits.

The package's modules, each with one job: records.py (Story, Passage, Bookmark, default titles, read from rows),
schema.py (the migrations), tokens.py (a passage's tokens packed as JSON lines), store.py (StoryStore: opening,
transactions, stories, passages, the moves along the tree, bookmarks, whole-tree imports), export.py (Markdown and
text, the export file), json_io.py (the whole tree as JSON, and its checked import), cli.py (``slmtui stories``).
The names below are the package's face to the app and the writing session.
"""

from slmtui.stories.export import export_story, exports_dir, slug
from slmtui.stories.records import (AUTHORS, EXPORT_FORMATS, TITLE_MAX_CHARS, TITLE_WORDS, UNTITLED, Author, Bookmark,
                                    Passage, Story, default_title)
from slmtui.stories.schema import MIGRATIONS, SCHEMA_VERSION
from slmtui.stories.store import DamagedStoreError, StoryStore, fresh_path_beside
from slmtui.stories.tokens import TokenTuple, pack_token, unpack_tokens

__all__ = ["AUTHORS", "EXPORT_FORMATS", "MIGRATIONS", "SCHEMA_VERSION", "TITLE_MAX_CHARS", "TITLE_WORDS", "UNTITLED",
           "Author", "Bookmark", "DamagedStoreError", "Passage", "Story", "StoryStore", "TokenTuple", "default_title",
           "export_story", "exports_dir", "fresh_path_beside", "pack_token", "slug", "unpack_tokens"]
