"""The GPT: token and position embeddings, pre-LayerNorm blocks, causal attention, GELU MLP.

The same module trains (full sequences) and decodes (one token at a time against a KV cache).
Shapes follow nanoGPT: B batch, T time, C channels (n_embd), nh heads, hs head size.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
from torch.nn import functional as F

from slmtui.engine.errors import SlmError


@dataclass(frozen=True)
class GPTConfig:
    """The architecture. Frozen: a model's shape never changes under it."""

    vocab_size: int = 50257
    """Tokens the embedding and LM head cover (at least the tokenizer's n_vocab)."""
    block_size: int = 128
    """Context length: the most tokens the model sees at once (learned absolute positions)."""
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 256
    dropout: float = 0.1
    bias: bool = True
    """Biases in the linear layers (the original had qkv bias) and LayerNorms."""
    tie_embeddings: bool = False
    """Share the token embedding with the LM head: fewer parameters, better for small vocabularies."""

    def __post_init__(self) -> None:
        # Types first: model.toml is hand-editable, and `n_head = 2.0` must be named, not a TypeError deep in torch.
        problems = []
        for f in fields(self):
            value, kind = getattr(self, f.name), _FIELD_TYPES[f.name]
            if kind is bool and not isinstance(value, bool):
                problems.append(f"{f.name} must be true or false, got {value!r}")
            elif kind is int and (isinstance(value, bool) or not isinstance(value, int)):
                problems.append(f"{f.name} must be an integer, got {value!r}")
            elif kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
                problems.append(f"{f.name} must be a number, got {value!r}")
        if problems:
            raise SlmError("; ".join(problems))
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        if self.n_head >= 1 and self.n_embd % self.n_head:
            problems.append(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if problems:
            raise SlmError("invalid model config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def param_count(self) -> int:
        """The parameters a GPT of this shape has (``GPT.num_params``), without building it: for listings and
        estimates. Per block: attention 4·C² and MLP 8·C² weights; two LayerNorms (2·C gains, 2·C biases) and the
        linear layers' biases (9·C) with ``bias``, the gains alone without."""
        c = self.n_embd
        per_block = 12 * c * c + (13 * c if self.bias else 2 * c)
        emb = self.vocab_size * c + self.block_size * c
        head = 0 if self.tie_embeddings else self.vocab_size * c
        return self.n_layer * per_block + emb + head + (2 if self.bias else 1) * c

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> GPTConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SlmError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**data)  # type: ignore[arg-type]


_FIELD_TYPES: dict[str, type] = {"vocab_size": int, "block_size": int, "n_layer": int, "n_head": int, "n_embd": int,
                                 "dropout": float, "bias": bool, "tie_embeddings": bool}
assert set(_FIELD_TYPES) == {f.name for f in fields(GPTConfig)}


PRESETS: dict[str, GPTConfig] = {
    # The original model, exactly: GPT-2 tokenizer, 128 context, 4x256, 4 heads, qkv bias.
    "seed": GPTConfig(vocab_size=50257, block_size=128, n_layer=4, n_head=4, n_embd=256, dropout=0.1),
    # For tests: trains in seconds on a CPU.
    "tiny": GPTConfig(vocab_size=512, block_size=64, n_layer=2, n_head=2, n_embd=64, dropout=0.0),
    # The bundled default model's shape (chosen by experiment, docs/training-runs.md); vocab comes from
    # its 8k BPE tokenizer.
    "default": GPTConfig(
        vocab_size=8192, block_size=256, n_layer=6, n_head=4, n_embd=256, dropout=0.0, tie_embeddings=True
    ),
}


def preset(name: str) -> GPTConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise SlmError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


class KVCache:
    """Keys and values of every layer for the tokens seen so far, preallocated to block_size.

    Decoding appends one position per step instead of re-running the whole context.
    """

    def __init__(self, config: GPTConfig, *, batch_size: int, device: torch.device, dtype: torch.dtype) -> None:
        hs = config.n_embd // config.n_head
        shape = (batch_size, config.n_head, config.block_size, hs)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.length = 0
        self.capacity = config.block_size

    def reset(self) -> None:
        self.length = 0

    @property
    def batch_size(self) -> int:
        return self.k[0].size(0)

    def expand(self, batch_size: int) -> None:
        """Copy row 0 into ``batch_size`` rows: one prefill of a prompt serves N continuations of it."""
        self.k = [self._rows(k, [0] * batch_size) for k in self.k]
        self.v = [self._rows(v, [0] * batch_size) for v in self.v]

    def keep_rows(self, rows: list[int]) -> None:
        """Keep only these rows, in this order: a sequence that has finished stops costing compute.

        All rows share one length (they advance in lockstep), so a row's positions never need moving.
        """
        self.k = [self._rows(k, rows) for k in self.k]
        self.v = [self._rows(v, rows) for v in self.v]

    def _rows(self, t: torch.Tensor, rows: list[int]) -> torch.Tensor:
        """A new full-capacity buffer holding the cached positions of ``rows`` (only those are copied)."""
        out = t.new_empty((len(rows), *t.shape[1:]))
        index = torch.tensor(rows, dtype=torch.long, device=t.device)
        out[:, :, : self.length] = t[:, :, : self.length].index_select(0, index)
        return out


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        hs = C // self.n_head
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        if cache is None:
            y = F.scaled_dot_product_attention(
                q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
            )
        else:
            start = cache.length
            cache.k[layer][:, :, start : start + T] = k
            cache.v[layer][:, :, start : start + T] = v
            k_all = cache.k[layer][:, :, : start + T]
            v_all = cache.v[layer][:, :, : start + T]
            if T == 1:
                # One new query attends to everything before it: no mask needed.
                y = F.scaled_dot_product_attention(q, k_all, v_all)
            else:
                # Prefill after `start` cached positions: query i sees keys 0..start+i.
                mask = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(diagonal=start)
                y = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            # Weight tying (Press & Wolf 2017): one matrix embeds tokens and scores them.
            self.lm_head.weight = self.transformer.wte.weight
        self.apply(self._init_weights)
        # GPT-2's scaled init of the residual projections keeps the residual stream's variance flat with depth.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, *, non_embedding: bool = False) -> int:
        """Parameters, counting a tied matrix once."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
            n -= self.transformer.wte.weight.numel()
        return n

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        cache: KVCache | None = None,
        last_only: bool = False,
        hidden_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, V) and, with targets, the mean cross-entropy.

        With a cache, idx holds only the new tokens; their positions continue after cache.length.
        last_only computes the LM head for the last position alone (all that sampling needs);
        hidden_only stops before the LM head, for a caller that scores with its own copy of it.
        """
        B, T = idx.size()
        start = cache.length if cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of {start + T} tokens exceeds block_size {self.config.block_size}")
        # Positions start..start+T-1 are consecutive rows of wpe: a slice, not an arange and a gather.
        pos_emb = self.transformer.wpe.weight[start : start + T]  # (T, C)
        x = self.transformer.drop(self.transformer.wte(idx) + pos_emb)  # (B, T, C)
        for i, block in enumerate(self.transformer.h):
            x = block(x, cache, i)
        if cache is not None:
            cache.length += T
        x = self.transformer.ln_f(x)
        if targets is not None:
            logits = self.lm_head(x)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
            return logits, loss
        if last_only:
            x = x[:, -1:, :]
        if hidden_only:
            return x, None
        return self.lm_head(x), None

    def new_cache(self, batch_size: int = 1) -> KVCache:
        # The token embedding, not the head: a decoding path may swap the head for a module without .weight.
        p = self.transformer.wte.weight
        return KVCache(self.config, batch_size=batch_size, device=p.device, dtype=p.dtype)
