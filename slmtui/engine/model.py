"""The GPT: token and position embeddings, pre-norm blocks, causal attention, an MLP.

The same module trains (full sequences) and decodes (one token at a time against a KV cache).
Shapes follow nanoGPT: B batch, T time, C channels (n_embd), nh heads, hs head size.

The original blocks (learned positions, LayerNorm, GELU, tied or untied head) are the defaults of
GPTConfig, so every model folder written before the options below existed loads unchanged. The
options are the modern small-GPT recipe (modded-nanogpt): rotary positions, RMSNorm, QK-norm,
ReLU² MLP, zero-initialised output projections, logit soft-capping; model.toml names the ones a model uses.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.nn import functional as F

from slmtui.core.gpt_config import GPTConfig


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


Device = torch.device | str | None
"""Where a module's parameters are made: None is torch's default; "meta" gives shapes without values, for a
model whose weights are about to be loaded (model_io): no initialisation is computed only to be overwritten."""


def make_norm(config: GPTConfig, size: int | None = None, device: Device = None) -> nn.Module:
    """The block's normalisation: LayerNorm (bias as config.bias) or RMSNorm (a gain only)."""
    size = size or config.n_embd
    if config.norm == "rmsnorm":
        return nn.RMSNorm(size, device=device)
    return nn.LayerNorm(size, bias=config.bias, device=device)


Rope = tuple[torch.Tensor, torch.Tensor]
"""cos and sin of the rotary angles for the positions being computed: (T, hs/2), or (B, T, hs/2) per row."""


def rotary_tables(config: GPTConfig) -> Rope:
    """cos and sin for every position 0..block_size-1 (RoFormer, Su et al. 2021): (block_size, hs/2) each."""
    hs = config.n_embd // config.n_head
    inv_freq = 1.0 / (config.rope_base ** (torch.arange(0, hs, 2, dtype=torch.float32) / hs))
    angles = torch.outer(torch.arange(config.block_size, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, rope: Rope) -> torch.Tensor:
    """Rotate pairs (x_i, x_{i+hs/2}) of x (B, nh, T, hs) by each position's angles."""
    cos, sin = rope
    if cos.dim() == 3:  # per-row positions (B, T, hs/2): broadcast over heads
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig, device: Device = None) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias, device=device)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias, device=device)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)
        hs = config.n_embd // config.n_head
        self.q_norm = nn.RMSNorm(hs, device=device) if config.qk_norm else None
        self.k_norm = nn.RMSNorm(hs, device=device) if config.qk_norm else None

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0, rope: Rope | None = None) -> torch.Tensor:
        """rope: the angles of the absolute positions of x's tokens (with a cache: cache.length onward)."""
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        hs = C // self.n_head
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        if self.q_norm is not None and self.k_norm is not None:
            # The gains in the activations' dtype: under bf16 autocast q and k are bf16, and a float32
            # gain would send rms_norm to its slow unfused path.
            q = F.rms_norm(q, (hs,), self.q_norm.weight.to(q.dtype), self.q_norm.eps)
            k = F.rms_norm(k, (hs,), self.k_norm.weight.to(k.dtype), self.k_norm.eps)
        if rope is not None:
            # Keys are rotated before they enter the cache: a cached key keeps its own position's angle.
            q, k = apply_rotary(q, rope), apply_rotary(k, rope)
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


class ReLU2(nn.Module):
    """relu(x)^2 (So et al. 2021, Primer): sparse like ReLU, smooth at zero, cheaper than GELU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).square()


class MLP(nn.Module):
    def __init__(self, config: GPTConfig, device: Device = None) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias, device=device)
        self.gelu = ReLU2() if config.mlp == "relu2" else nn.GELU()  # the attribute keeps nanoGPT's name
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias, device=device)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: GPTConfig, device: Device = None) -> None:
        super().__init__()
        self.ln_1 = make_norm(config, device=device)
        self.attn = CausalSelfAttention(config, device)
        self.ln_2 = make_norm(config, device=device)
        self.mlp = MLP(config, device)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0, rope: Rope | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer, rope)
        return x + self.mlp(self.ln_2(x))


def _is_meta(device: Device) -> bool:
    return device is not None and torch.device(device).type == "meta"


def _embedding(n: int, dim: int, device: Device) -> nn.Embedding:
    """An embedding table; on the meta device without its random init (see GPT.__init__)."""
    if _is_meta(device):
        return nn.Embedding(n, dim, _weight=torch.empty(n, dim, device=device))
    return nn.Embedding(n, dim, device=device)


class GPT(nn.Module):
    def __init__(self, config: GPTConfig, *, device: Device = None) -> None:
        """``device="meta"``: every parameter a shape without storage (load_model_dir assigns the weights)."""
        super().__init__()
        self.config = config
        # Modules in the original order (wte, wpe, drop, h, ln_f): initialisation draws from the RNG in
        # this order, so a seed gives an old-style model exactly the weights it always did.
        modules: dict[str, nn.Module] = dict(wte=_embedding(config.vocab_size, config.n_embd, device))
        if config.pos_emb == "learned":
            modules["wpe"] = _embedding(config.block_size, config.n_embd, device)
        modules.update(drop=nn.Dropout(config.dropout), h=nn.ModuleList([Block(config, device) for _ in range(config.n_layer)]),
                       ln_f=make_norm(config, device=device))
        self.transformer = nn.ModuleDict(modules)
        if config.pos_emb == "rope":
            # Not persistent: computed from the config, so the weights file holds no copy of them.
            cos, sin = rotary_tables(config)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False, device=device)
        # Scalars outside transformer.h, so Muon leaves them to AdamW (without weight decay: they are 1-D).
        if config.unet_skips:
            self.skip_weights = nn.Parameter(torch.ones(config.n_layer // 2, device=device))
        if config.embed_skips:
            self.stream_lambdas = nn.Parameter(torch.ones(config.n_layer, device=device))  # lambda_0: the stream, as it is
            self.embed_lambdas = nn.Parameter(torch.zeros(config.n_layer, device=device))  # lambda_1: none of the embedding yet
        if config.tie_embeddings:
            # Weight tying (Press & Wolf 2017): one matrix embeds tokens and scores them.
            self.lm_head.weight = self.transformer.wte.weight
        if _is_meta(device):
            return  # shapes only: torch's normal_ on the meta device imports its compiler stack (1.8 s)
        self.apply(self._init_weights)
        # GPT-2's scaled init of the residual projections keeps the residual stream's variance flat with depth.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                if config.zero_init_proj:
                    nn.init.zeros_(p)
                else:
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
            if "wpe" in self.transformer:
                n -= self.transformer.wpe.weight.numel()
            n -= self.transformer.wte.weight.numel()
        return n

    def rotary(self, start: int, T: int) -> Rope | None:
        """The rotary angles of absolute positions start..start+T-1 (None without rope).

        The hook for decoding: a caller that tracks positions itself (a cache whose rows sit at
        different positions) passes ``(self.rope_cos[pos], self.rope_sin[pos])`` for a (B, T) ``pos``
        to each block instead; a token's position must be its absolute index in its own sequence.
        """
        if self.config.pos_emb != "rope":
            return None
        return self.rope_cos[start : start + T], self.rope_sin[start : start + T]

    def soft_cap(self, logits: torch.Tensor) -> torch.Tensor:
        """cap * tanh(logits / cap) when the config caps logits, else logits unchanged.

        Applied to every output of lm_head here; a caller that takes hidden_only and scores with
        its own copy of the head must apply it too.
        """
        cap = self.config.logit_softcap
        return cap * torch.tanh(logits / cap) if cap else logits

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
        x = self.transformer.wte(idx)  # (B, T, C)
        if "wpe" in self.transformer:
            # Positions start..start+T-1 are consecutive rows of wpe: a slice, not an arange and a gather.
            x = x + self.transformer.wpe.weight[start : start + T]  # (T, C)
        x = self.transformer.drop(x)
        rope = self.rotary(start, T)
        x = self.blocks(x, cache, rope)
        if cache is not None:
            cache.length += T
        x = self.transformer.ln_f(x)
        if targets is not None:
            logits = self.soft_cap(self.lm_head(x))
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
            return logits, loss
        if last_only:
            x = x[:, -1:, :]
        if hidden_only:
            return x, None
        return self.soft_cap(self.lm_head(x)), None

    def blocks(self, x: torch.Tensor, cache: KVCache | None, rope: Rope | None) -> torch.Tensor:
        """The residual stream through every block, with the config's skips (none in the original)."""
        c = self.config
        if not (c.unet_skips or c.embed_skips):
            for i, block in enumerate(self.transformer.h):
                x = block(x, cache, i, rope)
            return x
        x0, half, early = x, c.n_layer // 2, []
        for i, block in enumerate(self.transformer.h):
            if c.embed_skips:
                x = self.stream_lambdas[i] * x + self.embed_lambdas[i] * x0
            if c.unet_skips and i >= c.n_layer - half:
                j = c.n_layer - 1 - i  # the early block this one mirrors: the last takes the first's output
                x = x + self.skip_weights[j] * early[j]
            x = block(x, cache, i, rope)
            if c.unet_skips and i < half:
                early.append(x)
        return x

    def new_cache(self, batch_size: int = 1) -> KVCache:
        # The token embedding, not the head: a decoding path may swap the head for a module without .weight.
        p = self.transformer.wte.weight
        return KVCache(self.config, batch_size=batch_size, device=p.device, dtype=p.dtype)
