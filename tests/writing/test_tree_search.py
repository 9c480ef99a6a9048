"""writing/tree_search.py: a passage's place in the tree, and searching every branch of a story."""

from __future__ import annotations

from slmtui.stories.records import Passage
from slmtui.stories.store import StoryStore
from slmtui.writing.tree_search import Place, place_of, search_tree


def tree_of(store: StoryStore, story_id: int) -> dict[int | None, list[Passage]]:
    tree: dict[int | None, list[Passage]] = {}
    for p in store.passages(story_id):
        tree.setdefault(p.parent_id, []).append(p)
    return tree


def three_branches(store: StoryStore) -> tuple[int, dict[str, int]]:
    """opening -> lamp -> letter -> address (the path read), with a bell beside the lamp and a storm beside
    the letter; the reader is on the letter, so the address is ahead."""
    s = store.create_story().id
    ids: dict[str, int] = {}
    ids["opening"] = store.add_passage(s, parent_id=None, author="user", text="The keeper woke before dawn.").id
    ids["lamp"] = store.add_passage(s, parent_id=ids["opening"], author="model", text=" The lamp had gone out.").id
    ids["bell"] = store.add_passage(s, parent_id=ids["opening"], author="model", text=" A bell rang below.").id
    ids["letter"] = store.add_passage(s, parent_id=ids["lamp"], author="model", text=" He found a LETTER").id
    ids["storm"] = store.add_passage(s, parent_id=ids["lamp"], author="model", text=" A storm came.").id
    ids["address"] = store.add_passage(s, parent_id=ids["letter"], author="model", text=" addressed to him.").id
    store.set_current(s, ids["letter"])
    return s, ids


def test_places_on_the_path_ahead_and_on_branches(store: StoryStore) -> None:
    s, ids = three_branches(store)
    tree, path = tree_of(store, s), [p.id for p in store.current_path(s)]
    assert place_of(tree, path, ids["lamp"]) == Place(2, "path")
    assert place_of(tree, path, ids["address"]) == Place(4, "ahead")
    assert place_of(tree, path, ids["bell"]) == Place(2, "branch", branch_at=1, index=2, count=2)
    assert place_of(tree, path, ids["storm"]) == Place(3, "branch", branch_at=2, index=2, count=2)
    assert place_of(tree, path, ids["storm"]).describe() == "passage 3, branch 2/2 after passage 2"
    assert place_of(tree, path, ids["lamp"]).describe() == "passage 2, on your path"
    assert place_of(tree, path, 9999) is None


def test_search_finds_every_branch_case_and_line_breaks_aside_in_tree_order(store: StoryStore) -> None:
    s, ids = three_branches(store)
    tree, path = tree_of(store, s), [p.id for p in store.current_path(s)]
    hits = search_tree(tree, path, "a")
    assert [h.passage_id for h in hits] == [ids[k] for k in ("opening", "lamp", "letter", "address", "storm", "bell")]
    (letter,) = search_tree(tree, path, "found a letter")
    assert letter.passage_id == ids["letter"] and letter.matches == 1
    text = store.get_passage(ids["letter"]).text
    assert text[letter.start:letter.end] == "found a LETTER"
    a, b = letter.snippet_match
    assert letter.snippet[a:b] == "found a LETTER"
    assert search_tree(tree, path, "FOUND   a\nletter")[0].passage_id == ids["letter"]  # any run of spaces
    assert search_tree(tree, path, "  ") == [] and search_tree(tree, path, "walrus") == []


def test_a_phrase_across_two_passages_belongs_to_the_one_it_ends_in(store: StoryStore) -> None:
    s, ids = three_branches(store)
    tree, path = tree_of(store, s), [p.id for p in store.current_path(s)]
    (hit,) = search_tree(tree, path, "letter addressed")
    assert hit.passage_id == ids["address"] and hit.place.relation == "ahead"
    assert hit.start < 0 < hit.end  # begins in the passage above
    a, b = hit.snippet_match
    assert hit.snippet[a:b] == "LETTER addressed"


def test_search_stops_at_its_limit_and_counts_matches(store: StoryStore) -> None:
    s = store.create_story().id
    parent = None
    for i in range(30):
        parent = store.add_passage(s, parent_id=parent, author="model", text=f" wave {i}, wave again.").id
    tree = tree_of(store, s)
    hits = search_tree(tree, [], "wave", limit=10)
    assert len(hits) == 10 and all(h.matches == 2 for h in hits)
    assert [h.place.depth for h in hits] == list(range(1, 11))
