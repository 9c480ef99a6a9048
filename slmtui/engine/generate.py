"""Streamed generation: one event per token, KV-cached, cancellable between tokens.

The generator asks for the current ``Sampling`` before every token, so the UI can change the
temperature mid-sentence. A story longer than the context keeps going: the window slides by a
quarter of the context at a time and is re-read once (prefill), so the cost per token stays flat.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from slmtui.engine.errors import SlmError
from slmtui.engine.model import GPT, KVCache
from slmtui.engine.sampling import Sampling, apply_repetition_penalty, sample_next
from slmtui.engine.tokenizer import Tokenizer

SamplingSource = Sampling | Callable[[], Sampling]


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

    def __init__(self, model: GPT, *, memory: Sequence[int] = (), slide: float = 0.25) -> None:
        self.model = model
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
        logits, _ = self.model(idx, cache=self.cache)
        return logits[0, -1]

    def _prefill(self, window: list[int]) -> torch.Tensor:
        self.window = list(window)
        self.cache.reset()
        idx = torch.tensor([self.window], dtype=torch.long, device=self.device)
        logits, _ = self.model(idx, cache=self.cache, last_only=True)
        return logits[0, -1]

    @property
    def story_tokens_in_window(self) -> int:
        return len(self.window) - len(self.memory)


class Generator:
    """Streams continuations of a story from one model."""

    def __init__(self, model: GPT, tokenizer: Tokenizer, *, n_alternatives: int = 5) -> None:
        if tokenizer.n_vocab > model.config.vocab_size:
            raise SlmError(
                f"tokenizer has {tokenizer.n_vocab} tokens but the model only {model.config.vocab_size}"
            )
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.n_alternatives = n_alternatives

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
        decoder = Decoder(self.model, memory=self.tokenizer.encode(memory) if memory else ())
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
            # Rows past the tokenizer's vocabulary (vocab_size may be padded) are never valid tokens.
            logits = logits.float().cpu()[: self.tokenizer.n_vocab]
            recent = torch.tensor(decoder.story[-decoder.block_size :], dtype=torch.long)
            token = sample_next(apply_repetition_penalty(logits, recent, s.repetition_penalty), s, generator)
            probs = torch.softmax(logits, dim=-1)
            top_p, top_ids = torch.topk(probs, self.n_alternatives)
            alternatives = tuple(
                Alternative(int(t), self.tokenizer.token_text(int(t)), float(p))
                for p, t in zip(top_p.tolist(), top_ids.tolist())
            )
            piece = text_decoder.push(token)
            yield TokenEvent(
                index=index,
                token_id=token,
                text=piece,
                prob=float(probs[token]),
                alternatives=alternatives,
                window_tokens=decoder.story_tokens_in_window,
                seed=seed,
            )
            index += 1
            written += piece
            if s.stop and any(stop in written for stop in s.stop):
                break
            logits = decoder.step(token)
