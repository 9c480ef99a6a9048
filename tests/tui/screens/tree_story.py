"""A story for the tree dialogs' tests (search, bookmarks, colours): three branches, long enough to scroll."""

from __future__ import annotations

from slmtui.stories.store import StoryStore

OPENING = "The lighthouse keeper woke before dawn and listened to the sea."
LAMP = (" The lamp had gone out in the night, and the water was grey and still. He climbed the stairs, one"
        " hundred and twelve of them, counting as he always did, and at the top he found a letter.")
BELL = " Somewhere below, a bell was ringing, though the chapel had been shut for years."
STORM = " A storm came in from the west before noon, and the letter blew out over the rocks."
ADDRESS = (" It was addressed to him, in his mother's hand, though she had been dead for twenty years. The"
           " envelope was dry, as if the sea had never touched it.")
ROOM = " He read it by the window of the lamp room while the gulls wheeled outside."


def three_branches(store: StoryStore) -> dict[str, int]:
    """opening -> lamp -> address -> room is the path read; bell is lamp's sibling, storm address's; the
    lamp is bookmarked "the stairs", the storm "storm". Returns the passages' ids by name."""
    s = store.create_story(title="The keeper", model="tiny").id
    ids: dict[str, int] = {}
    ids["opening"] = store.add_passage(s, parent_id=None, author="user", text=OPENING).id
    ids["lamp"] = store.add_passage(s, parent_id=ids["opening"], author="model", text=LAMP).id
    ids["bell"] = store.add_passage(s, parent_id=ids["opening"], author="model", text=BELL).id
    ids["address"] = store.add_passage(s, parent_id=ids["lamp"], author="model", text=ADDRESS).id
    ids["storm"] = store.add_passage(s, parent_id=ids["lamp"], author="model", text=STORM).id
    ids["room"] = store.add_passage(s, parent_id=ids["address"], author="user", text=ROOM).id
    store.set_current(s, ids["room"])
    store.set_bookmark(s, ids["lamp"], "the stairs")
    store.set_bookmark(s, ids["storm"], "storm")
    ids["story"] = s
    return ids
