"""The stories' records (slmtui/stories/records.py): the title a story gets when it is given none."""

from __future__ import annotations

from slmtui.stories.records import default_title


def test_default_title_trims_to_a_word() -> None:
    assert default_title("Short one.") == "Short one."
    assert default_title("One, two, three, four, five, six, seven") == "One, two, three, four, five, six…"
    long = default_title(" ".join(["abcdefghijklmnop"] * 6))
    assert len(long) <= 61 and long.endswith("p…")
    assert default_title("   \n ") == "Untitled"
