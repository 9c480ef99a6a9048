"""Streamed generation: one event per token, KV-cached, N continuations at once, cancellable per token.

The generator asks for the current ``Sampling`` before every token, so the UI can change the
temperature mid-sentence. A story longer than the context keeps going: the window slides by a
quarter of the context at a time and is re-read once (prefill), so the cost per token stays flat.

Several continuations of one prompt cost little more than one: decoding a small model at batch 1 is
bound by memory and per-op overhead, so N rows read the same weights for nearly the price of one row.
They share one prefill (the KV cache is copied to N rows), then each draws from its own RNG
(seed, seed + 1, ...) and stops on its own.
"""

from __future__ import annotations

import secrets
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from slmtui.core.errors import SlmError
from slmtui.core.seeds import torch_seed
from slmtui.core.sentences import ends_sentence
from slmtui.engine.calibration_store import CalibrationStore
from slmtui.engine.decode_paths import EXACT, PathChoice, build_path, choose_path
from slmtui.engine.decoder import Decoder
from slmtui.engine.model import GPT
from slmtui.core.sampling import FIELDS
from slmtui.engine.chain import SamplerChain, shapes_logits
from slmtui.engine.logit_rules import TextTail
from slmtui.engine.sampling import top_candidates
from slmtui.engine.threads import AUTO, ThreadChoice, ThreadCount, choose_threads, threads_context
from slmtui.core.token_events import Alternative, TokenEvent
from slmtui.engine.tokenizer import StreamDecoder, Tokenizer, start_ids

if TYPE_CHECKING:  # types only: a Sampling is handed in, never made here
    from slmtui.core.sampling import Sampling

    SamplingSource = Sampling | Callable[[], Sampling]

_CHOICE_FIELDS = tuple(f.name for f in FIELDS if f.name not in ("max_new_tokens", "seed", "stop"))
"""The settings that decide how a token is chosen: streams alike in these are chosen together."""

DECODE_THREADS = 1
"""The thread count decoding paths are calibrated on, and the one the automatic choice starts from: one
stream of a small model on a busy machine decodes fastest on one thread (engine/threads.py has the figure);
more are used only where a calibration measured them clearly faster."""


@dataclass
class _Stream:
    """One continuation's own state while it is written."""

    index: int
    """Its place among the streams: it draws with seed + index."""
    text_decoder: StreamDecoder
    generator: torch.Generator
    tail: TextTail
    """The end of its text, for the banned phrases: the page, then every token it writes."""
    seed: int | None = None
    produced: int = 0
    written: str = ""


class Generator:
    """Streams continuations of a story from one model."""

    def __init__(
        self,
        model: GPT,
        tokenizer: Tokenizer,
        *,
        n_alternatives: int = 5,
        num_threads: ThreadCount = AUTO,
        path: str | None = None,
        keep_calibration: bool = True,
    ) -> None:
        """``path`` names a decoding path (slmtui.engine.decode_paths.CANDIDATES); None measures which is
        fastest here, at load for one stream and on first use for N; "exact" is the model as trained.
        ``num_threads`` is the intra-op thread count while decoding: AUTO measures it per batch size on
        the path chosen (engine.threads: 1 thread, then more while clearly faster), a number sets it,
        None leaves torch's setting alone. ``keep_calibration``: take both choices from, and keep them in,
        the cache folder (engine.calibration_store), so they are measured once per machine and model shape.
        """
        if tokenizer.n_vocab > model.config.vocab_size:
            raise SlmError(
                f"tokenizer has {tokenizer.n_vocab} tokens but the model only {model.config.vocab_size}"
            )
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.n_alternatives = n_alternatives
        self.num_threads = num_threads
        """Intra-op CPU threads while this generator works (AUTO: measured; None: torch's setting)."""
        self.path = path
        self.store = CalibrationStore.default() if keep_calibration else None
        self.choices: dict[int, PathChoice] = {}
        """The calibrations behind the automatic choice, by batch size (empty when a path was named)."""
        self.thread_choices: dict[int, ThreadChoice] = {}
        """The calibrations behind the automatic thread count, by batch size (empty unless AUTO)."""
        self._texts: dict[int, str] = {}
        self.chain = SamplerChain(tokenizer)
        self._views: dict[str, GPT] = {EXACT: self.model}
        if path is not None:
            with threads_context(self._base_threads()):
                self._views[path] = build_path(self.model, path)
        self.path_for(1)  # one stream's path and thread count are measured at load
        self.threads_for(1)

    def path_for(self, n: int) -> str:
        """The decoding path ``n`` streams run on (measured on first use when none was named)."""
        if self.path is not None:
            return self.path
        # Built and timed on the base thread count: beside a busy core, building the int8 view on 2 threads
        # took 500-700 ms against ~100 on 1 (measured with the app's default of 2).
        with threads_context(self._base_threads()):
            if n not in self.choices:
                self.choices[n] = choose_path(self.model, batch_size=n, store=self.store)
            name = self.choices[n].name
            if name not in self._views:
                self._views[name] = build_path(self.model, name)
        return name

    def threads_for(self, n: int) -> int | None:
        """The intra-op thread count ``n`` streams decode with (measured on first use under AUTO);
        None: torch's own setting (asked for, or not on a CPU)."""
        if self.model.transformer.wte.weight.device.type != "cpu":
            return None
        if self.num_threads != AUTO:
            return self.num_threads  # type: ignore[return-value]
        if n not in self.thread_choices:
            name = self.path_for(n)
            p = next(self.model.parameters())
            key = (name, type(self.model).__qualname__, self.model.config, p.dtype)
            with threads_context(DECODE_THREADS):  # what it does not time runs as the paths were timed
                self.thread_choices[n] = choose_threads(self._views[name], batch_size=n, key=key,
                                                           store=self.store)
        return self.thread_choices[n].threads

    def _base_threads(self) -> int | None:
        """The thread count the decoding paths are timed on."""
        if self.model.transformer.wte.weight.device.type != "cpu":
            return None
        return DECODE_THREADS if self.num_threads == AUTO else self.num_threads  # type: ignore[return-value]

    def stream(
        self,
        prompt: str | Sequence[int],
        sampling: SamplingSource | Sequence[SamplingSource],
        *,
        n: int = 1,
        memory: str | Sequence[int] = "",
        should_stop: Callable[[], bool] | None = None,
        page: str | None = None,
    ) -> Iterator[TokenEvent]:
        """Yield one event per new token of each of ``n`` continuations, tagged with its stream.

        ``sampling`` is one source for every stream, or one per stream (each its own length, stop strings,
        temperature...). Stream i draws with seed + i (the seed of its Sampling, or one drawn for the call),
        so its text replays alone with that seed. A stream ends at its max_new_tokens (or, with finish_sentence,
        at the end of the sentence it is in, a bounded number of tokens later) or a stop string;
        ``should_stop()`` is asked before every token and ends them all. ``memory``: text, or the tokens the
        model reads at the head of every window (the context builder's prefix: memory and lore). Each step reads
        every live stream's settings once, then its events come in stream order; a stream that has ended sends nothing more.

        On an exact path (``exact``, ``fp32-t``) stream i is token for token what a run of its own with
        seed + i writes. On a rounding path a row can differ from its solo run in the last digits (int8
        quantises the activations of all rows of a step together), so the draws can too.

        ``page`` is the text the continuations follow, as the banned phrases see it (a phrase begun on the page
        may not be completed); default: the prompt's text. A caller whose prompt holds more than the page (an
        author's note woven in) passes the page itself.

        From the first token to the end of the call (between its tokens too) torch runs on the decoding
        thread count (``threads_for(n)``); the caller's setting is back when the call ends or is closed.
        """
        threads = threads_context(self.threads_for(n) if n >= 1 else None)
        with threads:  # once per call, not per step: a switch costs (threads_context); restored on close too
            yield from self._stream(prompt, sampling, n=n, memory=memory, should_stop=should_stop, page=page)

    def _stream(
        self,
        prompt: str | Sequence[int],
        sampling: SamplingSource | Sequence[SamplingSource],
        *,
        n: int,
        memory: str | Sequence[int],
        should_stop: Callable[[], bool] | None,
        page: str | None = None,
    ) -> Iterator[TokenEvent]:
        """``stream``'s work, run with the decoding thread count set."""
        if n < 1:
            raise SlmError(f"n must be at least 1, got {n}")
        if isinstance(sampling, Sequence):
            if len(sampling) != n:
                raise SlmError(f"{len(sampling)} sampling settings for {n} streams")
            sources = [s if callable(s) else _constant(s) for s in sampling]
        else:
            shared = sampling if callable(sampling) else _constant(sampling)
            sources = [shared] * n
        ids = start_ids(self.tokenizer, self.tokenizer.encode(prompt) if isinstance(prompt, str) else list(prompt))
        model = self._views[self.path_for(n)]
        prefix = (self.tokenizer.encode(memory) if memory else []) if isinstance(memory, str) else list(memory)
        decoder = Decoder(model, memory=prefix, n=n)
        logits = decoder.start_rows(ids)  # first: a token past the vocabulary fails here, as it always did
        if page is None:
            page = prompt if isinstance(prompt, str) else self.tokenizer.decode(list(prompt))
        streams = [_Stream(i, self.tokenizer.stream_decoder(), torch.Generator(device="cpu"), TextTail(page))
                   for i in range(n)]
        base_seed: int | None = None
        while True:
            # Each live stream's settings, read before its token is drawn; a stream at its length is done.
            rows: list[int] = []
            samplings: list[Sampling] = []
            for row, r in enumerate(decoder.rows):
                s = sources[r]()
                if _wants_more(streams[r], s):
                    rows.append(row)
                    samplings.append(s)
            if not rows:
                return
            if should_stop is not None and should_stop():
                return
            for row, s in zip(rows, samplings):
                st = streams[decoder.rows[row]]
                if s.seed is not None:
                    seed = s.seed + st.index
                else:
                    if base_seed is None:
                        base_seed = secrets.randbelow(2**31)
                    seed = st.seed if st.seed is not None else base_seed + st.index
                if seed != st.seed:
                    st.seed = seed
                    st.generator.manual_seed(torch_seed(seed))
            chosen = self._choose_rows(logits, rows, samplings, decoder, streams)
            going: list[int] = []
            tokens: list[int] = []
            for i, (row, s, (token, prob, alternatives)) in enumerate(zip(rows, samplings, chosen)):
                if i and should_stop is not None and should_stop():  # cancel within one token
                    return
                r = decoder.rows[row]
                st = streams[r]
                piece = st.text_decoder.push(token)
                st.tail.push(self.tokenizer.token_bytes(token))
                yield TokenEvent(
                    index=st.produced,
                    token_id=token,
                    text=piece,
                    prob=prob,
                    alternatives=alternatives,
                    window_tokens=decoder.story_tokens_in_window,
                    seed=st.seed,  # type: ignore[arg-type]
                    stream=r,
                    sampling=s,
                )
                st.produced += 1
                st.written += piece
                # Only the end can hold a stop string this token completed (no rescanning the whole text).
                if s.stop and any(stop in st.written[-(len(stop) + len(piece)) :] for stop in s.stop):
                    continue
                going.append(r)
                tokens.append(token)
            if not going:
                return
            logits = decoder.step_rows(tokens, going)

    def _choose_rows(
        self, logits: torch.Tensor, rows: list[int], samplings: list[Sampling], decoder: Decoder, streams: list[_Stream]
    ) -> list[tuple[int, float, tuple[Alternative, ...]]]:
        """The next token of each row in ``rows`` (indices into ``logits``), each from its own RNG.

        Streams that choose alike (the usual case: one Sampling for all; length, seed and stop strings
        do not matter here) are chosen together; each other set of settings is a group of its own.
        """
        groups: dict[tuple[object, ...], list[int]] = {}
        for i, s in enumerate(samplings):
            groups.setdefault(tuple(getattr(s, name) for name in _CHOICE_FIELDS), []).append(i)
        chosen: list[tuple[int, float, tuple[Alternative, ...]]] = [(0, 0.0, ())] * len(rows)
        for members in groups.values():
            s = samplings[members[0]]
            picked = [rows[i] for i in members]
            ids = [decoder.rows[row] for row in picked]
            group_logits = logits if picked == list(range(logits.size(0))) else logits[picked]
            for i, c in zip(members, self._choose(group_logits, [decoder.stories[r] for r in ids], s,
                                                  [streams[r].generator for r in ids],
                                                  [streams[r].tail for r in ids])):
                chosen[i] = c
        return chosen

    @torch.inference_mode()
    def _choose(
        self, logits: torch.Tensor, stories: list[list[int]], s: Sampling, generators: list[torch.Generator],
        tails: list[TextTail],
    ) -> list[tuple[int, float, tuple[Alternative, ...]]]:
        """The next token of each row of ``logits`` (rows, V) under one Sampling, its probability, and the
        alternatives at this step: row for row what the pre-batching generator computed for one stream.

        Per step this is a handful of passes over the vocabulary (50k for GPT-2), whatever the number of
        rows, so it avoids any it can: the top-k serves both sampling and the alternatives when no penalty
        reorders it, and probabilities come from one logsumexp instead of a full softmax. What is left per
        row is its draw from its own generator (sampling.draw_rows) and the Python objects of its event.
        The rules (bias, penalties, DRY, bans, XTC) are engine/chain.py's, read from ``s`` at this step.
        """
        # Rows past the tokenizer's vocabulary (vocab_size may be padded) are never valid tokens.
        logits = logits.float().cpu()[:, : self.tokenizer.n_vocab]
        penalised = logits
        if shapes_logits(s):
            recent = _recent_tokens(stories, self.model.config.block_size)  # lockstep: same length
            penalised = self.chain.shape(logits, recent, tails, s)
        n_alt = min(self.n_alternatives, logits.size(-1))
        top: tuple[torch.Tensor, torch.Tensor] | None = None
        if s.temperature == 0.0:
            tokens = self.chain.draw(penalised, s, generators)
        else:  # the top-k serves the alternatives too
            top = top_candidates(penalised, s)
            tokens = self.chain.draw(penalised, s, generators, top=top)
        if top is not None and penalised is logits and top[0].size(-1) >= n_alt:
            alt_logits, alt_ids = top[0][:, :n_alt], top[1][:, :n_alt]
        else:
            alt_logits, alt_ids = torch.topk(logits, n_alt)
        # log Z of the raw logits; the alternatives' first logit is their maximum (fewer ops than logsumexp)
        if n_alt:
            top_logit = alt_logits[:, :1]
            lse = torch.sub(logits, top_logit).exp_().sum(dim=-1, keepdim=True).log_().add_(top_logit)
        else:
            lse = torch.logsumexp(logits, dim=-1, keepdim=True)
        index = torch.tensor(tokens, dtype=torch.long).view(-1, 1)
        # Each row: the chosen token's probability, then its alternatives', in one exp.
        rows = torch.cat((logits.gather(1, index), alt_logits), dim=1).sub_(lse).exp_().tolist()
        text = self._token_text
        return [
            (token, row[0], tuple([Alternative(t, text(t), q) for t, q in zip(alt_row, row[1:])]))
            for token, row, alt_row in zip(tokens, rows, alt_ids.tolist())
        ]

    def _token_text(self, token_id: int) -> str:
        """``Tokenizer.token_text``, remembered: the same few hundred tokens come back as alternatives."""
        text = self._texts.get(token_id)
        if text is None:
            text = self._texts[token_id] = self.tokenizer.token_text(token_id)
        return text


def _wants_more(st: _Stream, s: Sampling) -> bool:
    """Whether a stream draws another token: under its length, or past it by less than ``finish_sentence``
    tokens while its text stops mid-sentence (core/sentences.py)."""
    if st.produced < s.max_new_tokens:
        return True
    return st.produced < s.max_new_tokens + s.finish_sentence and not ends_sentence(st.written)


def _recent_tokens(stories: list[list[int]], block_size: int) -> torch.Tensor:
    """Each row's last ``block_size`` tokens as one (rows, T) tensor; the rows are the same length.

    Through an int64 array rather than ``torch.tensor`` of nested lists: ~15 us instead of ~50-100 us for
    4 rows of 256 (measured), and it is built every step.
    """
    flat = array("q")
    for story in stories:
        flat.fromlist(story[-block_size:])
    if not flat:
        return torch.empty(len(stories), 0, dtype=torch.long)
    return torch.frombuffer(flat, dtype=torch.long).view(len(stories), -1)


def _constant(s: Sampling) -> Callable[[], Sampling]:
    return lambda: s
