"""The optimizers: AdamW with decay on matrices only, or Muon on the hidden matrices and AdamW on the rest.

Muon (Jordan et al. 2024; torch.optim.Muon) orthogonalises each hidden matrix's momentum by a
Newton-Schulz iteration; it is meant for the 2-D weights inside the blocks only, so embeddings, the
LM head, gains and biases stay with AdamW. With ``adjust_lr_fn="match_rms_adamw"`` (Moonshot's
scaling, "Muon is Scalable for LLM Training") its updates have AdamW's RMS, so both follow the same
learning-rate schedule and weight decay: one ``--lr`` for the whole model.
"""

from __future__ import annotations

from typing import Any

import torch

from slmtui.core.errors import SlmError
from slmtui.engine.model import GPT
from trainer.config import OPTIMIZERS


def hidden_matrices(model: GPT) -> list[torch.nn.Parameter]:
    """The 2-D weights inside the transformer blocks (attention and MLP): Muon's share."""
    return [p for p in model.transformer.h.parameters() if p.requires_grad and p.dim() == 2]


def _adamw(groups: list[dict[str, Any]], *, lr: float, betas: tuple[float, float], device: torch.device,
           fused: bool) -> torch.optim.AdamW:
    # fused: one kernel per step for every parameter (CUDA, and CPU since torch 2.4); else the
    # multi-tensor (foreach) path, torch's default.
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused or device.type == "cuda")


class Optimizers:
    """Several optimizers stepped as one: what the loop sees (param_groups, step, zero_grad, state)."""

    def __init__(self, optimizers: list[torch.optim.Optimizer]) -> None:
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [g for o in self.optimizers for g in o.param_groups]

    def step(self) -> None:
        for o in self.optimizers:
            o.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for o, s in zip(self.optimizers, state["optimizers"], strict=True):
            o.load_state_dict(s)


def make_optimizer(model: GPT, *, kind: str = "adamw", lr: float, weight_decay: float, betas: tuple[float, float],
                   device: torch.device, fused: bool = True) -> torch.optim.Optimizer | Optimizers:
    """AdamW with decay on matrices only (biases and norm gains are not shrunk toward zero), or Muon
    on the hidden matrices with that AdamW on everything else."""
    if kind not in OPTIMIZERS:
        raise SlmError(f"unknown optimizer {kind!r}; choose one of: {', '.join(OPTIMIZERS)}")
    params = [p for p in model.parameters() if p.requires_grad]
    muon = {id(p) for p in hidden_matrices(model)} if kind == "muon" else set()
    rest = [p for p in params if id(p) not in muon]
    decay = [p for p in rest if p.dim() >= 2]
    no_decay = [p for p in rest if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    adamw = _adamw(groups, lr=lr, betas=betas, device=device, fused=fused)
    if kind == "adamw":
        return adamw
    matrices = [p for p in params if id(p) in muon]
    m = torch.optim.Muon(matrices, lr=lr, weight_decay=weight_decay, adjust_lr_fn="match_rms_adamw")
    return Optimizers([m, adamw])
