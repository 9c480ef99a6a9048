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
Each name is imported from the module that defines it; this package imports nothing itself.
"""
