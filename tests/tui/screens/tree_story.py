"""A story for the tree dialogs' tests (search, bookmarks, colours): three branches, long enough to scroll."""

from __future__ import annotations

from slmtui.stories.store import StoryStore
from slmtui.stories.tokens import pack_token

OPENING = "The lighthouse keeper woke before dawn and listened to the sea."
LAMP = (" The lamp had gone out in the night, and the water was grey and still. He climbed the stairs, one"
        " hundred and twelve of them, counting as he always did, and at the top he found a letter.")
BELL = " Somewhere below, a bell was ringing, though the chapel had been shut for years."
STORM = " A storm came in from the west before noon, and the letter blew out over the rocks."
ADDRESS = (" It was addressed to him, in his mother's hand, though she had been dead for twenty years. The"
           " envelope was dry, as if the sea had never touched it.")
ROOM = " He read it by the window of the lamp room while the gulls wheeled outside."


PROBS = (0.62, 0.31, 0.008, 0.47, 0.9, 0.15, 0.001, 0.55, 0.04)
"""The probabilities the model passages' words are given, in turn: one in nine warm, one in nine hot."""


def word_tokens(text: str) -> str:
    """``text`` as stored tokens, one a word (with its space), probabilities from ``PROBS`` in turn."""
    packed, start = [], 0
    for i, word in enumerate(text.split(" ")[1:]):
        end = start + 1 + len(word)
        packed.append(pack_token(start, end, 100 + i, PROBS[i % len(PROBS)], [(1, " the", 0.2)]))
        start = end
    return "".join(packed)


def three_branches(store: StoryStore) -> dict[str, int]:
    """opening -> lamp -> address -> room is the path read; bell is lamp's sibling, storm address's; the
    lamp is bookmarked "the stairs", the storm "storm"; the model's passages have their tokens stored. Returns the passages' ids by name."""
    s = store.create_story(title="The keeper", model="tiny").id
    ids: dict[str, int] = {}
    ids["opening"] = store.add_passage(s, parent_id=None, author="user", text=OPENING).id
    for name, parent, text in (("lamp", "opening", LAMP), ("bell", "opening", BELL), ("address", "lamp", ADDRESS),
                               ("storm", "lamp", STORM)):
        ids[name] = store.add_passage(s, parent_id=ids[parent], author="model", text=text, model="tiny",
                                      tokens=word_tokens(text)).id
    ids["room"] = store.add_passage(s, parent_id=ids["address"], author="user", text=ROOM).id
    store.set_current(s, ids["room"])
    store.set_bookmark(s, ids["lamp"], "the stairs")
    store.set_bookmark(s, ids["storm"], "storm")
    ids["story"] = s
    return ids
