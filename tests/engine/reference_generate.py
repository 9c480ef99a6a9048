"""The Generator as it was before batched decoding and decoding paths (main at cdfd3a5), kept verbatim below
this note as the reference that one stream must still match token for token (tests/engine/test_generate.py).
Only its docstring was changed; do not "improve" it: its value is that it is the old code.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from slmtui.core.errors import SlmError
from slmtui.engine.device import cpu_has_native_bf16
from slmtui.engine.model import GPT, KVCache
from slmtui.core.sampling import Sampling
from slmtui.engine.sampling import apply_repetition_penalty, draw, filter_candidates, top_candidates
from slmtui.engine.tokenizer import Tokenizer

SamplingSource = Sampling | Callable[[], Sampling]

# Batch-1 decoding of a small model is a chain of tiny ops and one memory-bound matrix-vector product
# per layer: extra threads buy little, and on a busy machine (a training run beside the app) a thread
# that has to wait for a core stalls every op. Measured on 2 cores with a trainer running, the seed
# preset decoded ~10x faster on 1 thread than on 2 (tests/bench/bench_generate.py, --threads).
DECODE_THREADS = 1


@dataclass(frozen=True)
class Alternative:
    token_id: int
    text: str
    prob: float


@dataclass(frozen=True)
class TokenEvent:
    """One generated token, as the UI and the CLI see it."""

    index: int
    """0 for the first new token."""
    token_id: int
    text: str
    """The text this token completes: "" while a multi-byte character is still incomplete."""
    prob: float
    """The model's probability of this token (softmax at temperature 1, before any filtering)."""
    alternatives: tuple[Alternative, ...]
    """The most likely tokens at this step, most likely first (the chosen one may be among them)."""
    window_tokens: int
    """How many of the story's last tokens the model saw for this step (memory not counted)."""
    seed: int
    """The seed in force: replaying with it reproduces the text."""


class Decoder:
    """The model's sliding view of one token sequence, kept in a KV cache.

    ``window`` is exactly what the model sees: the memory tokens, then the story's last tokens.
    """

    def __init__(
        self, model: GPT, *, memory: Sequence[int] = (), slide: float = 0.25, head: torch.Tensor | None = None
    ) -> None:
        self.model = model
        self._head = head
        """A bf16 copy of the LM head to score with (see Generator), or None for the model's own (exact)."""
        self.block_size = model.config.block_size
        self.memory = list(memory)[: self.block_size // 2]
        # After the window fills, keep this many story tokens and re-read them in one prefill.
        self.keep = max(1, int((self.block_size - len(self.memory)) * (1.0 - slide)))
        self.cache: KVCache = model.new_cache()
        self.story: list[int] = []
        self.window: list[int] = []
        self.device = model.lm_head.weight.device

    @torch.inference_mode()
    def start(self, story: Sequence[int]) -> torch.Tensor:
        """Read the story so far; returns the logits for the next token (1-D)."""
        self.story = list(story)
        budget = self.block_size - len(self.memory)
        return self._prefill(self.memory + self.story[-budget:] if budget else self.memory)

    @torch.inference_mode()
    def step(self, token: int) -> torch.Tensor:
        """Append one token; returns the logits for the one after it."""
        self.story.append(token)
        if self.cache.length >= self.block_size:
            return self._prefill(self.memory + self.story[-self.keep :])
        self.window.append(token)
        idx = torch.tensor([[token]], dtype=torch.long, device=self.device)
        return self._logits(idx)

    def _prefill(self, window: list[int]) -> torch.Tensor:
        self.window = list(window)
        self.cache.reset()
        idx = torch.tensor([self.window], dtype=torch.long, device=self.device)
        return self._logits(idx)

    def _logits(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (V,) for the position after idx's last token, which joins the cache."""
        if self._head is None:
            logits, _ = self.model(idx, cache=self.cache, last_only=True)
            return logits[0, -1]
        h, _ = self.model(idx, cache=self.cache, last_only=True, hidden_only=True)
        return torch.mv(self._head, h[0, -1].to(torch.bfloat16)).float()

    @property
    def story_tokens_in_window(self) -> int:
        return len(self.window) - len(self.memory)


class Generator:
    """Streams continuations of a story from one model."""

    def __init__(
        self,
        model: GPT,
        tokenizer: Tokenizer,
        *,
        n_alternatives: int = 5,
        num_threads: int | None = DECODE_THREADS,
        fast_head: bool | None = None,
    ) -> None:
        if tokenizer.n_vocab > model.config.vocab_size:
            raise SlmError(
                f"tokenizer has {tokenizer.n_vocab} tokens but the model only {model.config.vocab_size}"
            )
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.n_alternatives = n_alternatives
        self.num_threads = num_threads
        """Intra-op CPU threads while this generator works (None: leave torch's setting alone)."""
        if fast_head is None:
            fast_head = model.lm_head.weight.device.type == "cpu" and cpu_has_native_bf16()
        # The LM head is most of a decoding step (50257x256 for the seed preset). A bf16 copy read with a
        # matrix-vector product is ~3x faster on CPUs with native bf16 (tests/bench/bench_generate.py) and
        # moves logits by ~1e-2: nothing for sampling, and shipped weights are bf16 already.
        self.head = model.lm_head.weight.detach().to(torch.bfloat16) if fast_head else None

    def stream(
        self,
        prompt: str | Sequence[int],
        sampling: SamplingSource,
        *,
        memory: str = "",
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[TokenEvent]:
        """Yield one event per new token until max_new_tokens, a stop string, or should_stop()."""
        current = sampling if callable(sampling) else (lambda: sampling)
        ids = self.tokenizer.encode(prompt) if isinstance(prompt, str) else list(prompt)
        if not ids:
            # An empty page: start from the document separator, as the model saw between books.
            eot = self.tokenizer.eot_token
            ids = [eot] if eot is not None else self.tokenizer.encode("\n")
        decoder = Decoder(self.model, memory=self.tokenizer.encode(memory) if memory else (), head=self.head)
        threads = _threads(self.num_threads if decoder.device.type == "cpu" else None)
        with threads:
            logits = decoder.start(ids)
        text_decoder = self.tokenizer.stream_decoder()
        seed: int | None = None
        generator = torch.Generator(device="cpu")
        written = ""
        index = 0
        while True:
            s = current()
            if index >= s.max_new_tokens or (should_stop is not None and should_stop()):
                break
            if seed is None or (s.seed is not None and s.seed != seed):
                seed = s.seed if s.seed is not None else secrets.randbelow(2**31)
                generator.manual_seed(seed)
            with threads:
                token, prob, alternatives = self._choose(logits, decoder.story, s, generator)
            piece = text_decoder.push(token)
            yield TokenEvent(
                index=index,
                token_id=token,
                text=piece,
                prob=prob,
                alternatives=alternatives,
                window_tokens=decoder.story_tokens_in_window,
                seed=seed,
            )
            index += 1
            written += piece
            # Only the end can hold a stop string this token completed (no rescanning the whole text).
            if s.stop and any(stop in written[-(len(stop) + len(piece)) :] for stop in s.stop):
                break
            with threads:
                logits = decoder.step(token)

    @torch.inference_mode()
    def _choose(
        self, logits: torch.Tensor, story: list[int], s: Sampling, generator: torch.Generator
    ) -> tuple[int, float, tuple[Alternative, ...]]:
        """The next token, its probability, and the alternatives at this step.

        Per token this is a handful of passes over the vocabulary (50k for GPT-2), so it avoids
        any it can: the top-k serves both sampling and the alternatives when no penalty reorders it,
        and probabilities come from one logsumexp instead of a full softmax.
        """
        # Rows past the tokenizer's vocabulary (vocab_size may be padded) are never valid tokens.
        logits = logits.float().cpu()[: self.tokenizer.n_vocab]
        penalised = logits
        if s.repetition_penalty != 1.0:
            recent = torch.tensor(story[-self.model.config.block_size :], dtype=torch.long)
            penalised = apply_repetition_penalty(logits, recent, s.repetition_penalty)
        n_alt = min(self.n_alternatives, logits.numel())
        top: tuple[torch.Tensor, torch.Tensor] | None = None
        if s.temperature == 0.0:
            token = int(torch.argmax(penalised))
        else:
            top = top_candidates(penalised, s)
            token = draw(*filter_candidates(*top, s), generator)
        if top is not None and penalised is logits and top[0].numel() >= n_alt:
            alt_logits, alt_ids = top[0][:n_alt], top[1][:n_alt]  # the same ranking: no second pass
        else:
            alt_logits, alt_ids = torch.topk(logits, n_alt)
        # Softmax at temperature 1, before any filtering: p_i = exp(l_i - logsumexp(l)).
        lse = torch.logsumexp(logits, dim=-1)
        prob = float(torch.exp(logits[token] - lse))
        alternatives = tuple(
            Alternative(t, self.tokenizer.token_text(t), p)
            for t, p in zip(alt_ids.tolist(), torch.exp(alt_logits - lse).tolist())
        )
        return token, prob, alternatives


class _threads:
    """A reusable ``with``: run the block with n intra-op threads, then give the caller back its setting.

    Entered around each step rather than once per stream: between tokens the caller's code runs as it chose.
    """

    def __init__(self, n: int | None) -> None:
        self.n = n
        self.saved = 0

    def __enter__(self) -> None:
        self.saved = torch.get_num_threads()
        if self.n is not None and self.n != self.saved:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        if self.n is not None and self.n != self.saved:
            torch.set_num_threads(self.saved)
