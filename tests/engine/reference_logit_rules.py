"""Plain-Python references for slmtui/engine/logit_rules.py, written from the rules' descriptions (the issue,
text-generation-webui's DRYLogitsProcessor and XTCLogitsWarper, llama.cpp's dry and xtc samplers) rather than
from the module: loops over lists, brute force over the whole vocabulary, nothing precomputed.
"""

from __future__ import annotations

import math
from itertools import product

FLOAT32_MAX = 3.4028234663852886e38


def dry_reference(
    context: list[int], breakers: set[int], *, multiplier: float, base: float, allowed_length: int, last_n: int = 0
) -> dict[int, float]:
    """Token -> what DRY subtracts from its logit: text-generation-webui's loop (each earlier occurrence of the
    last token, matched backwards while the tokens agree and the end's token is no breaker), without its cap
    of 50 on the length and with llama.cpp's cap on the exponent instead."""
    ctx = context[-last_n:] if last_n > 0 else list(context)
    n = len(ctx)
    if multiplier == 0.0 or n < 2 or ctx[-1] in breakers:
        return {}
    longest: dict[int, int] = {}
    for i in range(n - 1):
        if ctx[i] != ctx[-1] or ctx[i + 1] in breakers:
            continue
        length = 1
        while i - length >= 0 and ctx[i - length] == ctx[n - 1 - length] and ctx[n - 1 - length] not in breakers:
            length += 1
        longest[ctx[i + 1]] = max(longest.get(ctx[i + 1], 0), length)
    out = {}
    for token, length in longest.items():
        if length >= allowed_length:
            exponent = length - allowed_length
            if base > 1.000001:
                exponent = min(exponent, int(88.7228391 / math.log(base)))
            out[token] = min(multiplier * base**exponent, FLOAT32_MAX)
    return out


def xtc_reference(
    ids: list[int], probs: list[float], *, threshold: float, fires: bool, protect: set[int]
) -> tuple[list[int], list[float]]:
    """Candidates sorted most likely first: if XTC fires and two or more are at least ``threshold`` likely,
    all of those but the least likely go, unless one of the removed is protected; the rest renormalised."""
    if not fires:
        return ids, probs
    top = [i for i, p in enumerate(probs) if p >= threshold]
    if len(top) < 2:
        return ids, probs
    cut = len(top) - 1
    if any(t in protect for t in ids[:cut]):
        return ids, probs
    total = sum(probs[cut:])
    return ids[cut:], [p / total for p in probs[cut:]]


def _is_word(b: int) -> bool:
    return b < 128 and chr(b).isalnum()


def reference_forms(phrase: str) -> set[bytes]:
    """Every spelling of ``phrase`` the bans cover, as ASCII-lowercased bytes: each ASCII letter in either case
    (lowercased), each other character as itself, its lower or its upper form (phrases short enough that every
    combination is listed)."""
    options = [[ch.lower()] if ch.isascii() else sorted({ch, ch.lower(), ch.upper()}) for ch in phrase]
    return {"".join(combo).encode("utf-8").lower() for combo in product(*options)}


def counted_occurrences(text: bytes, form: bytes) -> list[tuple[int, int]]:
    """(start, end) of each occurrence of ``form`` in ``text`` (ASCII-lowercased) that counts as the whole
    words: no ASCII letter or digit just before an ASCII alphanumeric first byte, or just after a last one
    (the text's start and end are boundaries)."""
    out = []
    lowered = text.lower()
    for start in range(len(lowered) - len(form) + 1):
        end = start + len(form)
        if lowered[start:end] != form:
            continue
        if _is_word(form[0]) and start > 0 and _is_word(lowered[start - 1]):
            continue
        if _is_word(form[-1]) and end < len(lowered) and _is_word(lowered[end]):
            continue
        out.append((start, end))
    return out


def banned_reference(vocab: list[bytes], phrases: list[str], text: bytes) -> set[int]:
    """The tokens t for which ``text + t`` holds a counted occurrence of a phrase ending past ``text`` (the
    whole text so far: the page before the passage and what was written)."""
    forms = {f for p in phrases for f in reference_forms(p)}
    out = set()
    for t, token in enumerate(vocab):
        whole = text + token
        if any(end > len(text) for f in forms for _, end in counted_occurrences(whole, f)):
            out.add(t)
    return out


def first_tokens_reference(encode, token_bytes, text: str) -> set[int]:
    """The first token of every way to write ``text`` that a logit bias covers: as given and capitalised (if it
    starts lowercase), each alone and after a space; not a first token that holds one character (or only
    the space) of a text written in more than one token."""
    forms = [text] + ([text[0].upper() + text[1:]] if text[0].islower() else [])
    firsts = set()
    for form in forms:
        for written in [form] + ([] if form[0].isspace() else [" " + form]):
            ids = encode(written)
            shown = token_bytes(ids[0]).decode("utf-8", errors="replace")
            if written is not form:
                shown = shown[1:]
            if len(ids) == 1 or len(shown) > 1:
                firsts.add(ids[0])
    return firsts
