"""core/sentences.py: where "finish the sentence" stops."""

from __future__ import annotations

import pytest

from slmtui.core.sentences import ends_sentence


@pytest.mark.parametrize("text", ["He left.", 'He said "no."', "Why?” ", "Wait…", "(so.)", "a line\n", "two\n\n",
                                  "Stop!'"])
def test_a_sentence_ends(text: str) -> None:
    assert ends_sentence(text)


@pytest.mark.parametrize("text", ["", "and then", "x. y", "the end of", "said:", "3.5 m", "“Why"])
def test_mid_sentence(text: str) -> None:
    assert not ends_sentence(text)
