"""Where a sentence ends, for "finish the sentence": a continuation that reaches its length mid-sentence runs
on (at most ``Sampling.finish_sentence`` tokens more) until its text ends one. Torch-free: the engine asks it
after each token, and tests ask it directly.

A sentence ends at ``.``, ``!``, ``?`` or ``…``, with any closing quotes or brackets after it (GPT-2's BPE
writes ``."`` and ``?”`` as single tokens, so a quoted line closes whole), or at a line break. Abbreviations
("Mr.") count as ends: the rule is meant to keep a passage from stopping mid-word, not to parse English.
"""

from __future__ import annotations

import re

FINISH_SENTENCE_ON = 40
"""The palette's "on" value for ``finish_sentence``: tokens past the length a sentence may take (a long
sentence of a small model is 30-40 tokens of GPT-2's BPE)."""

_END = re.compile(r"(?:[.!?…][\"'”’»)\]]*[ \t]*|\n\s*)$")


def ends_sentence(text: str) -> bool:
    """Whether ``text`` (what a stream has written so far) stops at the end of a sentence."""
    return bool(_END.search(text))
