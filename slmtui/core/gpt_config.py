"""GPTConfig: a model's architecture, as model.toml's [model] table stores it. Torch-free, so listing models, the
estimates and the trainer's settings read it without loading torch; ``slmtui.engine.model.GPT`` builds the module.

The original blocks (learned positions, LayerNorm, GELU, tied or untied head) are the defaults, so every model folder
written before the options existed loads unchanged. The options are the modern small-GPT recipe (modded-nanogpt):
rotary positions, RMSNorm, QK-norm, ReLU² MLP, zero-initialised output projections, logit soft-capping,
U-net skips between blocks and skips from the embedding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from slmtui.core.errors import SlmError
from slmtui.core.tokenizer_spec import GPT2_N_VOCAB


@dataclass(frozen=True)
class GPTConfig:
    """The architecture. Frozen: a model's shape never changes under it."""

    vocab_size: int = GPT2_N_VOCAB
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
    pos_emb: str = "learned"
    """learned: absolute position embeddings (wpe); rope: rotary embeddings of q and k (no wpe)."""
    rope_base: float = 10000.0
    norm: str = "layernorm"
    """layernorm (the original), or rmsnorm (no mean, no bias: cheaper, as in Llama and modded-nanogpt)."""
    qk_norm: bool = False
    """RMSNorm of each head's queries and keys before attention: bounded logits, stabler at high lr."""
    mlp: str = "gelu"
    """gelu (the original), or relu2: relu(x)^2 (Primer; modded-nanogpt)."""
    zero_init_proj: bool = False
    """Start every residual output projection (attention's and the MLP's c_proj) at zero: each block starts as identity."""
    logit_softcap: float = 0.0
    """Logits become cap * tanh(logits / cap) (Gemma 2, modded-nanogpt); 0 is off."""
    unet_skips: bool = False
    """U-net skips (modded-nanogpt): the outputs of the first n_layer // 2 blocks are added, each with a learned
    weight, to the inputs of the last n_layer // 2 blocks, the first to the last; deep blocks see early features."""
    embed_skips: bool = False
    """Each block's input mixes the residual stream with the embedding: lambda_0 * x + lambda_1 * x0, both learned
    (starting at 1 and 0, the plain stream) (modded-nanogpt's "value residual" of the embedding)."""

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
            elif kind is str and not isinstance(value, str):
                problems.append(f"{f.name} must be a string, got {value!r}")
        if problems:
            raise SlmError("; ".join(problems))
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        if self.n_head >= 1 and self.n_embd % self.n_head:
            problems.append(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        for name, allowed in (("pos_emb", ("learned", "rope")), ("norm", ("layernorm", "rmsnorm")), ("mlp", ("gelu", "relu2"))):
            if getattr(self, name) not in allowed:
                problems.append(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.pos_emb == "rope" and self.n_head >= 1 and (self.n_embd // self.n_head) % 2:
            problems.append("rope needs an even head size (n_embd / n_head)")
        if self.logit_softcap < 0:
            problems.append(f"logit_softcap must be 0 (off) or positive, got {self.logit_softcap}")
        if problems:
            raise SlmError("invalid model config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def param_count(self) -> int:
        """The parameters a GPT of this shape has (``GPT.num_params``), without building it: for listings and
        estimates. Per block: attention 4·C² and MLP 8·C² weights, the linear layers' biases (9·C) with ``bias``,
        two norms (a gain each, and a bias for a LayerNorm with ``bias``), and QK-norm's two gains of a head's size."""
        c = self.n_embd
        norm = c * (2 if self.norm == "layernorm" and self.bias else 1)
        per_block = 12 * c * c + (9 * c if self.bias else 0) + 2 * norm + (2 * (c // self.n_head) if self.qk_norm else 0)
        emb = self.vocab_size * c + (self.block_size * c if self.pos_emb == "learned" else 0)
        head = 0 if self.tie_embeddings else self.vocab_size * c
        return self.n_layer * per_block + emb + head + norm

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> GPTConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SlmError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**data)  # type: ignore[arg-type]


_FIELD_TYPES: dict[str, type] = {"vocab_size": int, "block_size": int, "n_layer": int, "n_head": int, "n_embd": int,
                                 "dropout": float, "bias": bool, "tie_embeddings": bool, "pos_emb": str,
                                 "rope_base": float, "norm": str, "qk_norm": bool, "mlp": str, "zero_init_proj": bool,
                                 "logit_softcap": float, "unet_skips": bool, "embed_skips": bool}
assert set(_FIELD_TYPES) == {f.name for f in fields(GPTConfig)}


OLD_DEFAULT = GPTConfig(vocab_size=8192, block_size=256, n_layer=6, n_head=4, n_embd=256, dropout=0.0, tie_embeddings=True)
"""The first bundled model's shape (learned positions, GELU, tied head): what a model.toml of that time reads as."""
