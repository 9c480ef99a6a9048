"""Four rules on the next token that keep a small model's story on track (issue 21): DRY, XTC, banned phrases
and logit bias. Tensors in, tensors out, row for row the same whether a step has one stream or many.

Where each goes in a step (logits sliced to the tokenizer's vocabulary, as ``Generator._choose`` does):

    logits -> + logit bias -> repetition penalty -> DRY -> banned phrases (-inf)
           -> temperature 0: argmax
           -> otherwise: top-k, temperature, top-p, min-p (sampling.filter_logits) -> XTC -> draw

The first three follow llama.cpp's sampler chain (logit bias, then the penalties, then DRY, each over the whole
vocabulary); text-generation-webui also runs DRY after its repetition penalty and before temperature. The bans
come last among the logit edits, so that no bias lifts one. XTC acts on the probabilities of the candidates that
temperature, top-k, top-p and min-p kept, renormalised: text-generation-webui's default order (temperature
first, XTC after min-p, on the softmax of what the filters left); llama.cpp runs XTC before its temperature,
which only changes which probabilities the threshold is compared with. At temperature 0 there is no XTC.

What a stream carries for these rules: a ``TextTail`` (the end of its text, for the bans) and its own
``torch.Generator`` (XTC's chance is drawn from it, before the token's own draw, and only while XTC's probability
is above 0, so a run with XTC off draws what it drew before XTC existed). DRY reads the context window each
step and the bias is a fixed vector: neither keeps state. Everything built from a tokenizer and a setting (the
breaker mask, the bans' tables, the bias vector) is cached per value, so a setting changed mid-stream costs one
build and applies to the next token.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Sequence
from functools import lru_cache
from itertools import product

import numpy as np
import torch

from slmtui.core.errors import SlmError
from slmtui.core.sampling_lists import banned_phrases_problems, logit_bias_problems
from slmtui.engine.tokenizer import Tokenizer


DRY_ON_MULTIPLIER = 0.8
"""The multiplier DRY's authors suggest for "on"."""
XTC_ON_PROBABILITY = 0.5
"""XTC's usual "on" probability."""


@lru_cache(maxsize=4)
def vocabulary_bytes(tokenizer: Tokenizer) -> tuple[bytes, ...]:
    """Every token's bytes, by id (a special token's are its name, as the stream writes it; b"" for an unused id)."""
    out = []
    for i in range(tokenizer.n_vocab):
        try:
            out.append(tokenizer.token_bytes(i))
        except KeyError:
            out.append(b"")
    return tuple(out)


# DRY ------------------------------------------------------------------------------------------------------------

FLOAT32_MAX = float(torch.finfo(torch.float32).max)
_LOG_FLOAT32_MAX = 88.7228391  # llama.cpp's FLOAT_MAX_LOG: ln of the largest float32


def dry_penalty(length: int, *, multiplier: float, base: float, allowed_length: int) -> float:
    """What DRY subtracts from the logit of a token that would extend a repeat of ``length`` tokens.

    ``multiplier * base ** (length - allowed_length)``, the exponent capped as llama.cpp caps it (so that the
    power stays a finite float32) and the result at the largest float32. text-generation-webui caps the length
    at 50 instead; either way such a token is out of reach (0.8 * 1.75 ** 48 is ~4e11).
    """
    exponent = length - allowed_length
    if base > 1.000001:
        exponent = min(exponent, int(_LOG_FLOAT32_MAX / math.log(base)))
    return min(multiplier * base**exponent, FLOAT32_MAX)


def dry_breaker_mask(vocab: Sequence[bytes], breakers: Sequence[str]) -> np.ndarray:
    """(V,) bool: the tokens whose bytes contain one of the breakers' (llama.cpp's rule for a breaker that is
    one token long; a breaker split across tokens is not seen, and the default ones are one byte each)."""
    needles = [b.encode("utf-8") for b in breakers if b]
    return np.fromiter((any(n in t for n in needles) for t in vocab), dtype=bool, count=len(vocab))


@lru_cache(maxsize=8)
def tokenizer_breakers(tokenizer: Tokenizer, breakers: tuple[str, ...]) -> np.ndarray:
    """``dry_breaker_mask`` for a tokenizer's vocabulary, built once per breaker list."""
    return dry_breaker_mask(vocabulary_bytes(tokenizer), breakers)


def dry_repeats(context: np.ndarray, breaker: np.ndarray, allowed_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The repeats DRY punishes in each row of ``context`` (rows, n): (rows, tokens, lengths), one entry per row
    and token that would extend a repeat of at least ``allowed_length`` tokens, with the longest such repeat.

    For the row c[0..n-1] and each earlier position p < n-1, the repeat ending at p is the longest L such
    that c[p-L+1..p] == c[n-L..n-1] and none of c[n-L..n-1] is a breaker (they equal the tokens they match, so
    those are none either). If L >= allowed_length and c[p+1] is not a breaker, emitting c[p+1] would extend
    the repeat to L+1 tokens: text-generation-webui's DRYLogitsProcessor and llama.cpp's dry sampler both.

    Vectorised over all rows: the positions p where c[p] == c[n-1] are compared backwards with the end in one
    (pairs, longest possible) array, so the cost follows the number of such pairs, not the length of a repeat.
    """
    rows, n = context.shape
    none = np.empty(0, dtype=np.int64)
    if n < 2:
        return none, none, none
    brk = breaker[context]  # (R, n)
    rev = brk[:, ::-1]
    free = np.where(rev.any(axis=1), rev.argmax(axis=1), n)  # tokens after the last breaker
    pairs = (context[:, :-1] == context[:, -1:]) & ~brk[:, 1:] & (free >= allowed_length)[:, None]
    r, p = np.nonzero(pairs)
    if r.size == 0:
        return none, none, none
    cap = np.minimum(free[r], p + 1)  # a repeat stops at the last breaker and at the start of the window
    m = np.arange(int(cap.max()))
    back = p[:, None] - m  # (pairs, M): the positions compared with n-1-m
    same = (context[r[:, None], np.maximum(back, 0)] == context[r[:, None], n - 1 - m]) & (m < cap[:, None])
    lengths = np.where(same.all(axis=1), m.size, same.argmin(axis=1))
    keep = lengths >= allowed_length
    r, tokens, lengths = r[keep], context[r[keep], p[keep] + 1], lengths[keep]
    # One entry per (row, token), its longest repeat: sorted by (row, token, length), the last of each run.
    order = np.lexsort((lengths, tokens, r))
    r, tokens, lengths = r[order], tokens[order], lengths[order]
    last = np.ones(r.size, dtype=bool)
    last[:-1] = (r[1:] != r[:-1]) | (tokens[1:] != tokens[:-1])
    return r[last], tokens[last], lengths[last]


def apply_dry_rows(
    logits: torch.Tensor,
    context: torch.Tensor,
    breaker: np.ndarray,
    *,
    multiplier: float,
    base: float,
    allowed_length: int,
    last_n: int = 0,
) -> torch.Tensor:
    """DRY on each row of ``logits`` (rows, V) with its own row of ``context`` (rows, T): the story's last tokens,
    as the repetition penalty gets them; only the last ``last_n`` count (0: all). ``breaker`` is
    ``tokenizer_breakers(...)``. Returns new logits (the same tensor when nothing is penalised)."""
    if allowed_length < 1:
        raise ValueError(f"allowed_length must be at least 1, got {allowed_length}")
    if multiplier == 0.0 or context.numel() == 0:
        return logits
    window = context[:, -last_n:] if last_n > 0 else context
    rows, tokens, lengths = dry_repeats(np.ascontiguousarray(window.cpu().numpy()), breaker, allowed_length)
    if rows.size == 0:
        return logits
    # Python's ** per distinct length, as dry_penalty: the same float whatever the batch.
    table = {int(L): dry_penalty(int(L), multiplier=multiplier, base=base, allowed_length=allowed_length)
             for L in np.unique(lengths)}
    penalty = torch.tensor([table[int(L)] for L in lengths], dtype=logits.dtype)
    index = torch.from_numpy(rows * logits.size(-1) + tokens)
    out = logits.clone()
    flat = out.view(-1)
    flat[index] = flat[index] - penalty
    return out


def apply_dry(logits: torch.Tensor, context: torch.Tensor, breaker: np.ndarray, *, multiplier: float, base: float,
              allowed_length: int, last_n: int = 0) -> torch.Tensor:
    """``apply_dry_rows`` for one stream: ``logits`` (V,), ``context`` (T,)."""
    return apply_dry_rows(logits.unsqueeze(0), context.unsqueeze(0), breaker, multiplier=multiplier, base=base,
                          allowed_length=allowed_length, last_n=last_n)[0]


# XTC ------------------------------------------------------------------------------------------------------------

def xtc_protected(tokenizer: Tokenizer) -> tuple[int, ...]:
    """The tokens XTC never removes: the newline token and ``<|endoftext|>``. As text-generation-webui's XTC
    (its authors' own): a step where XTC would remove one of them is left alone, so that XTC does not make
    paragraphs and passages run on."""
    out = []
    newline = tokenizer.encode("\n")
    if newline:
        out.append(newline[-1])
    if tokenizer.eot_token is not None:
        out.append(tokenizer.eot_token)
    return tuple(out)


def xtc_fires(generator: torch.Generator | None, probability: float) -> bool:
    """Whether XTC acts at this step: one uniform draw from the stream's generator when ``probability`` > 0
    (none at 0, so the stream's other draws stay where they were), True when it is below ``probability``."""
    if probability <= 0.0:
        return False
    return float(torch.rand(1, generator=generator)) < probability


def xtc_cut(ids: torch.Tensor, probs: torch.Tensor, threshold: float, protect: Collection[int] = ()) -> int:
    """How many of the most likely candidates XTC removes (0: none). ``probs`` sorted most likely first, as
    ``filter_candidates`` returns them: every token at least ``threshold`` likely (>=, as both references)
    except the least likely of them, when there are two or more and none of the removed is protected."""
    above = int((probs >= threshold).sum())
    if above < 2:
        return 0
    if protect and any(t in protect for t in ids[: above - 1].tolist()):
        return 0
    return above - 1


def apply_xtc(ids: torch.Tensor, probs: torch.Tensor, *, threshold: float, fires: bool,
              protect: Collection[int] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """XTC on one stream's candidates (``filter_logits``' output): the kept ones, renormalised, most likely first.
    ``fires`` is ``xtc_fires(generator, probability)``, asked once per step before the token is drawn."""
    cut = xtc_cut(ids, probs, threshold, protect) if fires else 0
    if cut == 0:
        return ids, probs
    kept = probs[cut:]
    return ids[cut:], kept / kept.sum()


def apply_xtc_rows(
    ids: torch.Tensor, probs: torch.Tensor, lengths: Sequence[int], *, threshold: float, fires: Sequence[bool],
    protect: Collection[int] = (),
) -> tuple[torch.Tensor, list[int]]:
    """XTC on the candidates of several rows: ``ids`` and ``probs`` (rows, k) sorted most likely first, row i's
    probabilities normalised over its first ``lengths[i]`` (what ``filter_candidates`` keeps; beyond is ignored).

    Returns probabilities in which row i's candidates are its [start_i, lengths[i]), renormalised, the rest 0,
    and the starts: ``probs[i, start_i:lengths[i]]`` is bit for bit ``apply_xtc(ids[i, :lengths[i]],
    probs[i, :lengths[i]], ...)`` (the same values summed over the same length, as ``draw_rows`` relies on).
    """
    k = probs.size(-1)
    live = torch.arange(k) < torch.tensor(list(lengths)).unsqueeze(1)
    above = ((probs >= threshold) & live).sum(dim=-1)
    cuts = torch.where((above >= 2) & torch.tensor(list(fires), dtype=torch.bool), above - 1, 0)
    if protect and bool(cuts.any()):
        removed = torch.arange(k) < cuts.unsqueeze(1)
        hit = (torch.isin(ids, torch.tensor(sorted(protect), dtype=ids.dtype)) & removed).any(dim=-1)
        cuts = torch.where(hit, 0, cuts)
    out = torch.where(live, probs, 0.0)
    starts = cuts.tolist()
    for i, (start, length) in enumerate(zip(starts, lengths)):
        if start:
            kept = probs[i, start:length]
            out[i, :start] = 0.0
            out[i, start:length] = kept / kept.sum()
    return out, starts


# Banned phrases --------------------------------------------------------------------------------------------------

_IS_WORD = tuple(b < 128 and bytes([b]).isalnum() for b in range(256))
"""The bytes of a word: ASCII letters and digits. Any other byte, every byte of a non-ASCII character among
them, is a boundary."""
TAIL_BYTES = 1024
"""How much of a stream's text its ``TextTail`` keeps: more than the longest banned phrase's longest form."""
_START = b"\xff"  # marks the start of the text in a tail; never in a phrase (0xFF is no UTF-8 byte)
_MAX_FORMS = 64
_NO_IDS = np.empty(0, dtype=np.int64)


def phrase_forms(phrase: str) -> tuple[bytes, ...]:
    """The byte strings a banned phrase stands for, ASCII-lowercased (the bans compare ASCII-lowercased bytes).

    Each ASCII letter matches either case; each other character matches itself, its ``lower()`` and its
    ``upper()`` (so "Über" bans "ÜBER" and "über", and "straße" bans "STRASSE"), in every combination up to
    64 forms; a phrase with more mixed-case characters than that bans its written, lower, upper, capitalised
    and title forms.
    """
    options = [(ch,) if ch.isascii() else tuple(dict.fromkeys((ch, ch.lower(), ch.upper()))) for ch in phrase]
    if math.prod(len(o) for o in options) <= _MAX_FORMS:
        forms = {"".join(chars) for chars in product(*options)}
    else:
        forms = {phrase, phrase.lower(), phrase.upper(), phrase.capitalize(), phrase.title()}
    return tuple(sorted({f.encode("utf-8").lower() for f in forms}))


class TextTail:
    """The end of a stream's text as the bans see it: its last ``TAIL_BYTES`` bytes, ASCII-lowercased, after a
    start mark while it holds the whole text. Start it with the text the new passage follows (the page so far,
    not the memory or notes); push every token the stream writes, whether any ban is on or not (one may be
    switched on mid-stream)."""

    __slots__ = ("data",)

    def __init__(self, preceding: str | bytes = "") -> None:
        raw = preceding.encode("utf-8", errors="replace") if isinstance(preceding, str) else preceding
        self.data = (_START + raw.lower())[-TAIL_BYTES:]

    def push(self, token_bytes: bytes) -> None:
        data = self.data + token_bytes.lower()
        self.data = data[-TAIL_BYTES:] if len(data) > TAIL_BYTES else data


class VocabIndex:
    """A vocabulary's tokens ASCII-lowercased, sorted (for "which tokens start with S": two bisections) and
    joined (for "which tokens contain S": bytes.find). Built once per tokenizer, shared by every phrase list."""

    def __init__(self, vocab: Sequence[bytes]) -> None:
        self.folded = [t.lower() for t in vocab]
        self.order = sorted(range(len(self.folded)), key=self.folded.__getitem__)
        self.keys = [self.folded[i] for i in self.order]
        self.blob = _START.join(self.folded)  # a phrase never holds 0xFF, so no match spans two tokens
        self.starts = []
        offset = 0
        for t in self.folded:
            self.starts.append(offset)
            offset += len(t) + 1

    def starting_with(self, s: bytes) -> list[int]:
        """The ids of the tokens whose (folded) bytes start with ``s`` (non-empty, no 0xFF byte)."""
        lo = bisect_left(self.keys, s)
        hi = bisect_left(self.keys, s[:-1] + bytes([s[-1] + 1]), lo)
        return self.order[lo:hi]

    def occurrences(self, s: bytes) -> list[tuple[int, int]]:
        """Every (token id, offset) where ``s`` occurs inside a token."""
        out = []
        pos = self.blob.find(s)
        while pos != -1:
            t = bisect_right(self.starts, pos) - 1
            out.append((t, pos - self.starts[t]))
            pos = self.blob.find(s, pos + 1)
        return out


class PhraseBan:
    """Bans a list of phrases for one vocabulary: before each token, every token that would complete one.

    **What counts.** The text is the stream's bytes (the page before the passage, then the tokens written),
    compared ASCII-lowercased with each of ``phrase_forms(phrase)``. A phrase is a whole word or words: where
    its first character is an ASCII letter or digit, an occurrence counts only if no ASCII letter or digit comes
    just before it (the start of the text is a boundary); likewise after its last one, where the end of the text
    counts as a boundary. So banning "cat" leaves "category", "concatenate" and "cats" alone but catches "Cat",
    "cat." and "cat's"; any non-ASCII character beside it is a boundary too ("cat—", and also "catégorie").
    A phrase with a non-alphanumeric edge ("cat-", " the") has no boundary rule at that edge; a part of a
    word between letters cannot be banned.

    **The rule.** Token t is banned when the text T + t holds a counted occurrence that ends inside t: (a) one
    that lies inside t, after its first byte (its counting depends on t alone: banned whatever T is); (b) one
    that starts at t's first byte (t starts with the phrase; counted if T ends at a boundary); (c) one that
    starts inside T: for each split 0 < i < len(P), T ends with P[:i], the byte before that is a boundary
    (where P's first byte is a word byte) and t starts with P[i:]. In (b) and (c) t must also have a boundary
    right after the phrase, or end there. Precomputed per phrase list: the tokens of (a) and (b), and per
    prefix P[:i] the tokens of (c) (sorted tokens, bisected); a step checks only the prefixes ending in T's last
    byte.

    **Completeness.** Every occurrence in T + t either ends inside t, and then it is one of (a)-(c), or lies in
    T. An occurrence in T that did not count in T cannot count in T + t: its start boundary is the same, and if
    it ended at T's end, that end counted as a boundary, so it failed at its start. Hence, if T holds no
    counted occurrence that ends in the model's text, neither does T + t for any t not banned; by induction, at
    every stop (the end of a passage, or the writer's stop) the model's text holds none, the end of the text
    counted as a boundary. Working on bytes makes this exact for tokens that are part of a character: an
    occurrence in the decoded text is one in the bytes and back (UTF-8 resynchronises at every character's
    first byte), and lowercasing ASCII bytes maps T + t to fold(T) + fold(t), so tokens are folded once.

    **The prompt.** Occurrences that lie in the page before the passage are the writer's and stay; one that
    starts there and ends in the model's text counts (the model may not complete what the page began).

    **The price of no backtracking.** The rule decides at the token that would complete a phrase, so a word
    that starts with a banned one is only reachable in a token that carries both ("category" in one token, not
    "cat" + "egory"), and the model writes another word or another split instead.

    **Never every token.** A step that would ban every token of the vocabulary bans none (the text may then
    hold a phrase): only a list that matches everything (every single byte a banned word) gets there.
    """

    def __init__(self, index: VocabIndex, phrases: Sequence[str]) -> None:
        problems = banned_phrases_problems(phrases)
        if problems:
            raise SlmError("; ".join(problems))
        self.phrases = tuple(phrases)
        self.n_vocab = len(index.folded)
        anywhere: set[int] = set()  # (a), and (b) for a phrase whose first byte is no word byte
        after_boundary: set[int] = set()  # (b) for a phrase whose first byte is a word byte
        splits: dict[tuple[bytes, bool], set[int]] = {}  # (c): (P[:i], needs a boundary before it) -> tokens
        for pattern in sorted({f for p in self.phrases for f in phrase_forms(p)}):
            assert len(pattern) < TAIL_BYTES, "MAX_PHRASE_CHARS keeps every form inside a tail"
            lead, trail = _IS_WORD[pattern[0]], _IS_WORD[pattern[-1]]
            for t, offset in index.occurrences(pattern):
                token = index.folded[t]
                if offset and not (lead and _IS_WORD[token[offset - 1]]) and _ends(token, offset + len(pattern), trail):
                    anywhere.add(t)
            for i in range(len(pattern)):
                rest = pattern[i:]
                ids = {t for t in index.starting_with(rest) if _ends(index.folded[t], len(rest), trail)}
                if not ids:
                    continue
                if i == 0:
                    (after_boundary if lead else anywhere).update(ids)
                else:
                    splits.setdefault((pattern[:i], lead), set()).update(ids)
        self._anywhere = np.array(sorted(anywhere), dtype=np.int64)
        self._after_boundary = np.array(sorted(after_boundary - anywhere), dtype=np.int64)
        self._by_last: dict[int, list[tuple[bytes, bool, np.ndarray]]] = {}
        for (prefix, lead), ids in sorted(splits.items()):
            ids -= anywhere
            if ids:
                self._by_last.setdefault(prefix[-1], []).append((prefix, lead, np.array(sorted(ids), dtype=np.int64)))

    def banned(self, tail: TextTail) -> np.ndarray:
        """The ids banned after ``tail`` (possibly repeated), before the never-every-token rule."""
        data = tail.data
        parts = [self._anywhere] if self._anywhere.size else []
        last = data[-1]
        if self._after_boundary.size and not _IS_WORD[last]:
            parts.append(self._after_boundary)
        for prefix, lead, ids in self._by_last.get(last, ()):
            # A tail that ends with a prefix is longer than it: it starts with the start mark or is TAIL_BYTES long.
            if data.endswith(prefix) and not (lead and _IS_WORD[data[-len(prefix) - 1]]):
                parts.append(ids)
        if not parts:
            return _NO_IDS
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def step_ids(self, tail: TextTail) -> np.ndarray:
        """``banned(tail)``, or none if that is every token."""
        ids = self.banned(tail)
        if ids.size >= self.n_vocab and np.unique(ids).size >= self.n_vocab:
            return _NO_IDS
        return ids

    def apply(self, logits: torch.Tensor, tail: TextTail) -> torch.Tensor:
        """One stream's logits (V,) with this step's banned tokens at -inf (the same tensor if none is)."""
        return self.apply_rows(logits.unsqueeze(0), [tail])[0]

    def apply_rows(self, logits: torch.Tensor, tails: Sequence[TextTail]) -> torch.Tensor:
        """``apply`` on each row of ``logits`` (rows, V) with that row's stream's tail."""
        width = logits.size(-1)
        parts = [ids + row * width for row, tail in enumerate(tails) if (ids := self.step_ids(tail)).size]
        if not parts:
            return logits
        out = logits.clone()
        out.view(-1).index_fill_(0, torch.from_numpy(np.concatenate(parts)), -math.inf)
        return out


def _ends(token: bytes, end: int, trail: bool) -> bool:
    """Whether an occurrence ending at ``end`` in ``token`` has its end boundary (the token's end counts)."""
    return not trail or end == len(token) or not _IS_WORD[token[end]]


@lru_cache(maxsize=4)
def vocab_index(tokenizer: Tokenizer) -> VocabIndex:
    return VocabIndex(vocabulary_bytes(tokenizer))


@lru_cache(maxsize=16)
def phrase_ban(tokenizer: Tokenizer, phrases: tuple[str, ...]) -> PhraseBan | None:
    """The compiled bans for a tokenizer and a phrase list (None for no phrases), built once per list."""
    return PhraseBan(vocab_index(tokenizer), phrases) if phrases else None


# Logit bias ------------------------------------------------------------------------------------------------------

def bias_tokens(tokenizer: Tokenizer, text: str) -> tuple[int, ...]:
    """The tokens a logit bias on ``text`` moves: the first token of each way the story may write it.

    Those ways are the text as given and, if it starts with a lowercase letter, capitalised (a sentence may
    start with it), each alone (at the start of a line) and after a space (mid-sentence). A way whose first
    token is a single character of a longer text adds nothing: " c" starts " category" but also every other
    word in c, and moving it would move them all (the shipped vocabulary writes "dragon" alone as "d" "r"
    "agon" but " dragon" as one token). The same goes for a space that stays a token of its own. Only the
    first token moves, so a phrase pushes its first word wherever it comes (bias distinctive words), and a
    text none of whose ways has a fitting first token moves nothing (an empty tuple: tell the writer).
    """
    forms = [text]
    if text[:1].islower():
        forms.append(text[0].upper() + text[1:])
    out: list[int] = []
    for form in forms:
        for spaced in (False, True):
            if spaced and form[:1].isspace():
                continue
            ids = tokenizer.encode(" " + form if spaced else form)
            if not ids:
                continue
            first = tokenizer.token_bytes(ids[0])
            word = first[1:] if spaced else first
            if len(ids) > 1 and len(word.decode("utf-8", errors="replace")) <= 1:
                continue
            out.append(ids[0])
    return tuple(dict.fromkeys(out))


@lru_cache(maxsize=16)
def logit_bias_vector(tokenizer: Tokenizer, entries: tuple[tuple[str, float], ...]) -> torch.Tensor | None:
    """(V,) float32: the sum of the biases whose ``bias_tokens`` hold each token; None for no entries. Shared
    between calls: never change it in place."""
    problems = logit_bias_problems(entries)
    if problems:
        raise SlmError("; ".join(problems))
    if not entries:
        return None
    bias = torch.zeros(tokenizer.n_vocab)
    for text, value in entries:
        for t in bias_tokens(tokenizer, text):
            bias[t] += value
    return bias


def apply_logit_bias(logits: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``logits`` (V,) or (rows, V) plus the bias (a new tensor; the same one for no bias)."""
    return logits if bias is None else logits + bias
