"""The optimizers: AdamW with decay on matrices only, or Muon on the hidden matrices and AdamW on the rest.

Muon (Jordan et al. 2024; torch.optim.Muon) orthogonalises each hidden matrix's momentum by a
Newton-Schulz iteration; it is meant for the 2-D weights inside the blocks only, so embeddings, the
LM head, gains and biases stay with AdamW. With ``adjust_lr_fn="match_rms_adamw"`` (Moonshot's
scaling, "Muon is Scalable for LLM Training") its updates have AdamW's RMS, so both follow the same
learning-rate schedule and weight decay: one ``--lr`` for the whole model.

torch runs the Newton-Schulz iteration in bf16, which a CPU without native bf16 (AVX512-BF16 or AMX)
emulates: on a 2-core AMD EPYC with AVX2 only, torch.profiler on one step of the default preset at batch 8 put
12.5 s of its 13.3 s in the optimizer (264 bf16 addmm of 45 ms each), the model's forward and backward 0.8 s.
So ``Muon`` here iterates in the dtype the machine computes fast (``newton_schulz_dtype``): bf16 on CUDA and on
CPUs whose bf16 products are faster than fp32 ones (timed, ``cpu_bf16_matmul_is_faster``), where torch's own
step runs, fp32 elsewhere.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from slmtui.core.errors import SlmError
from slmtui.engine.device import cpu_bf16_matmul_is_faster
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


def newton_schulz_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA and on a CPU where bf16 products are faster (measured), else fp32 (module docstring)."""
    return torch.bfloat16 if device.type == "cuda" or cpu_bf16_matmul_is_faster() else torch.float32


def orthogonalise(update: torch.Tensor, coefficients: tuple[float, float, float], steps: int, eps: float,
                  dtype: torch.dtype) -> torch.Tensor:
    """torch.optim.Muon's quintic Newton-Schulz iteration (torch/optim/_muon.py), in ``dtype``."""
    a, b, c = coefficients
    x = update.to(dtype)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)  # spectral norm at most 1
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


class Muon(torch.optim.Muon):
    """torch.optim.Muon with its Newton-Schulz iteration in ``ns_dtype``: torch's own step for bf16, else the
    same update (momentum, Nesterov, the iteration, the RMS-matched rate, decoupled decay) in that dtype.
    The state (one momentum buffer a matrix) is torch's, so a saved run resumes under either."""

    def __init__(self, params: Any, *, ns_dtype: torch.dtype = torch.bfloat16, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.ns_dtype = ns_dtype

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        if self.ns_dtype == torch.bfloat16:
            return super().step(closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params: list[torch.Tensor] = []
            grads: list[torch.Tensor] = []
            buffers: list[torch.Tensor] = []
            self._init_group(group, params, grads, buffers)
            lr, decay, momentum = group["lr"], group["weight_decay"], group["momentum"]
            for p, grad, buf in zip(params, grads, buffers):
                buf.lerp_(grad, 1 - momentum)
                update = grad.lerp(buf, momentum) if group["nesterov"] else buf
                update = orthogonalise(update, group["ns_coefficients"], group["ns_steps"], group["eps"],
                                       self.ns_dtype)
                p.mul_(1 - lr * decay)
                p.add_(update, alpha=-lr * _rate_ratio(group["adjust_lr_fn"], p.shape))
        return loss


def _rate_ratio(adjust_lr_fn: str | None, shape: torch.Size) -> float:
    """torch.optim.Muon's learning-rate adjustment for a (A, B) matrix (torch/optim/_muon.py's _adjust_lr)."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return math.sqrt(max(1, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return 1.0


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
    m = Muon(matrices, lr=lr, weight_decay=weight_decay, adjust_lr_fn="match_rms_adamw",
             ns_dtype=newton_schulz_dtype(device))
    return Optimizers([m, adamw])
