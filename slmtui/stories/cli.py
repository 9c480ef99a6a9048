"""``slmtui stories``: list the saved stories, export one (Markdown, text or the whole tree as JSON), import a tree.

Part of the ``slmtui`` command (slmtui/cli.py adds this parser and reports its errors the same way).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from slmtui.core.errors import SlmError
from slmtui.core.user_input import MAX_IMPORT_BYTES, read_file_text
from slmtui.core import strict_json


def add_stories_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """`slmtui stories list` and `slmtui stories export ID --format md|txt`: the saved stories, headless."""
    stories = sub.add_parser("stories", help="list saved stories, or export one as Markdown or text",
                             description="The stories the app saved (stories.db in the user data folder).")
    actions = stories.add_subparsers(title="actions", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="id, title, passages' model, last change")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(func=_cmd_stories_list)
    export = actions.add_parser("export", help="print one story (the branch last chosen) to stdout or a file")
    export.add_argument("id", type=int, metavar="ID", help="the story's id (see `slmtui stories list`)")
    export.add_argument("--format", choices=("md", "txt", "json"), default="md",
                        help="Markdown (default) or plain text of the branch last chosen; json: the whole tree")
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE instead of stdout")
    export.add_argument("--force", action="store_true", help="replace FILE if it exists (only ever a regular file)")
    export.set_defaults(func=_cmd_stories_export)
    imp = actions.add_parser("import", help="add a story tree exported with --format json, as a new story")
    imp.add_argument("file", type=Path, metavar="FILE", help="a file written by `slmtui stories export ID --format json`")
    imp.set_defaults(func=_cmd_stories_import)


def _open_stories() -> Any:
    from slmtui.core import paths
    from slmtui.stories.store import StoryStore

    if not paths.stories_db().exists():
        return None
    return StoryStore(paths.stories_db())  # a folder or a damaged file is an error (exit 2), not "no stories"


def _cmd_stories_list(args: argparse.Namespace) -> int:
    store = _open_stories()
    found = store.list_stories() if store is not None else []
    if args.json:
        print(strict_json.dumps([{"id": s.id, "title": s.title, "model": s.model, "created": s.created.isoformat(),
                           "updated": s.updated.isoformat()} for s in found], indent=2))
    elif not found:
        print("no stories yet: open the app with `slmtui` and start writing")
    else:
        print(f"{'id':>4}  {'updated':<16}  {'model':<14}  title")
        for s in found:
            print(f"{s.id:>4}  {s.updated.strftime('%Y-%m-%d %H:%M'):<16}  {(s.model or '-')[:14]:<14}  {s.title}")
    return 0


def _cmd_stories_export(args: argparse.Namespace) -> int:
    store = _open_stories()
    if store is None:
        raise SlmError("no stories yet: open the app with `slmtui` and start writing")
    if args.format == "json":
        from slmtui.stories.json_io import export_json

        text = export_json(store, args.id)
    else:
        from slmtui.stories.export import export_as

        text = export_as(store, args.id, args.format)
    if args.output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return 0
    from slmtui.core.atomic import write_regular_file

    written = write_regular_file(args.output, text.encode("utf-8"), replace=args.force)
    print(f"wrote {written}", file=sys.stderr)
    return 0


def _cmd_stories_import(args: argparse.Namespace) -> int:
    from slmtui.core import paths
    from slmtui.stories.store import StoryStore
    from slmtui.stories.json_io import read_json

    # Check the whole file against the schema before the database is made or opened: a bad file writes nothing.
    tree = read_json(read_file_text(args.file, limit=MAX_IMPORT_BYTES, what="a story file"), str(args.file))
    db = paths.stories_db()
    made = not db.exists()
    with StoryStore(db) as store:
        try:
            story = store.insert_tree(*tree)
        except BaseException:
            if made and not store.list_stories():
                store.close()  # the database this command made, still empty: not left behind
                for leftover in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
                    leftover.unlink(missing_ok=True)
            raise
    print(f"imported story {story.id}: {story.title}")
    return 0
