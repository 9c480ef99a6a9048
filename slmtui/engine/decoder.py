"""Decoder: the model's sliding window over a story (and N continuations of it) in one KV cache.

The generator (generate.py) drives it token by token; tests drive it directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from slmtui.engine.model import GPT, KVCache


class Decoder:
    """The model's sliding view of N token sequences that share a beginning, kept in one KV cache.

    ``window`` is what the model sees of every row: the memory tokens, then the row's last story tokens.
    Rows advance in lockstep: each step gives every live row one token, so all rows hold the same number
    of cached positions, fill the window at the same step and slide together (one batched prefill of
    each row's own last tokens). So the cache keeps one position for all rows (what learned and rotary
    position embeddings alike need), and a slide in the middle of a batch is an ordinary step.
    A row that finishes is dropped from the cache (``KVCache.keep_rows``): one copy of the cached
    positions (~1 ms at N=8 for the default model, once) instead of its share of every later step
    (attention over its cache, sampling), so it pays for itself within a few tokens.
    """

    def __init__(self, model: GPT, *, memory: Sequence[int] = (), slide: float = 0.25, n: int = 1) -> None:
        self.model = model
        self.n = n
        self.block_size = model.config.block_size
        self.memory = list(memory)[: self.block_size // 2]
        # After the window fills, keep this many story tokens and re-read them in one prefill.
        self.keep = max(1, int((self.block_size - len(self.memory)) * (1.0 - slide)))
        self.cache: KVCache = model.new_cache(1)
        self.stories: list[list[int]] = [[] for _ in range(n)]
        self.rows: list[int] = list(range(n))
        """The sequences still in the cache, in cache-row order."""
        self.window_length = 0
        self.device = model.transformer.wte.weight.device

    @torch.inference_mode()
    def start(self, story: Sequence[int]) -> torch.Tensor:
        """Read the story so far; returns the logits for the next token (1-D; row 0's when n > 1)."""
        return self.start_rows(story)[0]

    @torch.inference_mode()
    def step(self, token: int) -> torch.Tensor:
        """Append one token to the only row; returns the logits for the one after it (1-D)."""
        return self.step_rows([token])[0]

    @torch.inference_mode()
    def start_rows(self, story: Sequence[int]) -> torch.Tensor:
        """Read the story so far once for all rows; returns the next-token logits (n, V)."""
        self.stories = [list(story) for _ in range(self.n)]
        self.rows = list(range(self.n))
        budget = self.block_size - len(self.memory)
        window = self.memory + self.stories[0][-budget:]
        self.cache = self.model.new_cache(1)
        logits = self._forward([window])
        if self.n > 1:
            self.cache.expand(self.n)
            logits = logits.expand(self.n, -1)
        return logits

    @torch.inference_mode()
    def step_rows(self, tokens: Sequence[int], rows: Sequence[int] | None = None) -> torch.Tensor:
        """Append ``tokens[i]`` to row ``rows[i]`` (default: every live row, in order); the rows not named
        have finished and leave the cache. Returns the next-token logits of the named rows, in that order.
        """
        rows = self.rows if rows is None else list(rows)
        if rows != self.rows:
            position = {r: i for i, r in enumerate(self.rows)}
            self.cache.keep_rows([position[r] for r in rows])
            self.rows = list(rows)
        for r, token in zip(rows, tokens):
            self.stories[r].append(token)
        if self.cache.length >= self.block_size:
            self.cache.reset()
            return self._forward([self.memory + self.stories[r][-self.keep :] for r in rows])
        self.window_length += 1
        idx = torch.tensor([[t] for t in tokens], dtype=torch.long, device=self.device)
        return self._logits(idx)

    @property
    def story(self) -> list[int]:
        """Row 0's story: every token of it, read or written."""
        return self.stories[0]

    @property
    def window(self) -> list[int]:
        """Row 0's window: exactly the tokens the model sees (memory, then the story's last tokens)."""
        return self.window_of(0)

    def window_of(self, row: int) -> list[int]:
        story_tokens = self.window_length - len(self.memory)
        return self.memory + (self.stories[row][-story_tokens:] if story_tokens > 0 else [])

    def _forward(self, windows: list[list[int]]) -> torch.Tensor:
        self.window_length = len(windows[0])
        return self._logits(torch.tensor(windows, dtype=torch.long, device=self.device))

    def _logits(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (rows, V) for the position after each row's last token; idx joins the cache."""
        logits, _ = self.model(idx, cache=self.cache, last_only=True)
        return logits[:, -1]

    @property
    def story_tokens_in_window(self) -> int:
        return self.window_length - len(self.memory)
