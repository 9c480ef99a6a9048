"""Decoding paths: the same GPT with its linear layers laid out for speed, chosen by measurement.

A decoding step of a small model at batch 1 is bound by memory and per-op overhead, not arithmetic, and
which layout wins depends on the CPU (AMX or not, cache sizes) and the model's shape. So nothing here is
decided by CPU flag: ``choose_path`` times a few decoding steps of each candidate when a model is first
used at a batch size, and remembers the winner for the process (keyed by the model's shape).

Every path is a *view* of the model: a shallow copy that shares every parameter and replaces only its
``nn.Linear`` modules (found generically, so any block internals work), so the exact model stays
untouched for evaluation, training and tests.

What the choice rests on, measured on a 2-core AMD EPYC with AVX512-BF16 and no AMX, shared with other
jobs (load average 8-10), torch 2.13, 1 thread: the calibration's best decode step in ms, one run of
tests/bench/bench_generate.py (it prints these every run; int8 was fastest at every N in all three):

    default model (6x256, 8k head)   batch 1   batch 4   batch 8      seed preset (4x256, 50k head), batch 1
    int8                              1.01      1.33      1.60        1.04
    bf16                              2.01      2.47      2.84        7.50
    fp32-t                            1.82      12.1      8.68        7.48
    exact                             2.76      12.0      8.49        9.84
    bf16-mv (the old path)            2.67      13.2      9.65        10.7

fp32 at batch > 1 is slow here, most likely because sgemm packs the weights on every call; int8 weights
are packed once. Held-out bits per byte of the default model through each path (tests/bench/bench_decode_bpb.py:
stevenson-treasure-island, lang-violet-fairy-book, verne-around-the-world-in-eighty-days, none of them
in its training books, 16k tokens each after the first 1000, decoded at batch 1 with the sliding window):
exact 2.1543, fp32-t 2.1543, bf16-mv 2.1543, bf16 2.1543 (-0.00004), int8 2.1562 (+0.0019): every
rounding path is well within the 0.01 allowed. On a CPU with AMX the bf16 paths may win instead; the
calibration finds out.

The ``*-fused`` paths (FusedStepGPT) run the same linears with a one-token step of fewer ops, bit for bit
the numbers of the path they extend. Measured beside a training run (load average ~10, 2-core AMD EPYC,
process CPU time per step, best of 9 x 20): batch 1 int8 3.84 -> int8-fused 3.02 ms, exact 5.56 -> fused
5.11; batch 4 int8 5.05 -> 4.10. ``torch.compile`` (inductor, CPU) of the whole step with a static cache
and fixed shapes did not pay here: 5.31 -> 5.21 ms eager vs compiled (5.76 -> 5.60 with freezing and
weight prepacking) for 72-92 s of compilation on first use, so it is not a candidate on this CPU.

Tried again on a 2-core AMD EPYC with AVX2 only (no AVX-512, no AMX), quiet, 1 thread, the default model at
batch 1, best step, against 1.80 ms for int8-fused eager (before the plain-callables step, now 1.54):
torch.compile of a static-cache step (the whole cache attended under a mask, no recompiles) in fp32 3.52 ms,
with inductor's C++ wrapper 3.38, with freezing 2.88, with both 2.54 (15-27 s to compile); the int8 step
compiled breaks its graph at every quantized op (3.06-3.17 ms); int8 weights dequantised inside the
compiled graph 2.6-13.5 ms. Per linear at batch 1: ``torch._weight_int8pack_mm`` (int8 weight-only, bf16
activations) beats fbgemm's dynamic int8 on the blocks' small matrices (256x256: 6.8 against 22.3 us) but
not on the 8k head, and in a whole step its casts eat the gain (1.51 against 1.53 ms, slower at batch 2 and
up, prefill of 250 tokens 70.7 against 28.6 ms); fbgemm fp16 and oneDNN's packed fp32 linears were slower
than both. Rotating q and k by one matmul with a per-position matrix saved 0.03 ms a step and would round
differently from GPT's rotation, so it was left out. None of these is a candidate.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F

from slmtui.engine.calibration_store import (
    CalibrationStore,
    machine_key,
    model_key,
    usable,
    when,
)
from slmtui.engine.model import GPT, KVCache, ReLU2

EXACT = "exact"


class TransposedLinear(nn.Module):
    """``x @ W.T + b`` with ``W.T`` stored contiguous: fp32, bit-for-bit the same maths, another memory walk.

    On a CPU without AMX, MKL's matrix-vector kernel over the row-major weight reads it at ~8 GB/s where
    the transposed product runs ~3x faster for a 50257x256 head (issue 12's figures).
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.weight_t = linear.weight.detach().t().contiguous()  # (in, out)
        self.bias = None if linear.bias is None else linear.bias.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x.reshape(-1, x.size(-1))
        y = x2 @ self.weight_t if self.bias is None else torch.addmm(self.bias, x2, self.weight_t)
        return y.view(*x.shape[:-1], y.size(-1))


class BF16Linear(nn.Module):
    """A bf16 copy of the weight; activations are rounded to bf16 on the way in and widened on the way out."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.weight = linear.weight.detach().to(torch.bfloat16)
        self.bias = None if linear.bias is None else linear.bias.detach().to(torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(torch.bfloat16), self.weight, self.bias).float()


class BF16MatVecHead(nn.Module):
    """The engine's LM head before issue 12: a bf16 copy read with ``torch.mv`` one row at a time.

    Kept as a candidate (it wins on CPUs with AMX) and as the bench's baseline; one row gives exactly the
    numbers the old Generator gave, so a seed replays the same text.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.weight = linear.weight.detach().to(torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.size(-1)).to(torch.bfloat16)
        out = torch.stack([torch.mv(self.weight, r) for r in rows]).float()
        return out.view(*x.shape[:-1], out.size(-1))


class Int8Linear(nn.Module):
    """Dynamic int8 quantisation through fbgemm/oneDNN: int8 weights per output channel (symmetric, as
    ``quantize_dynamic`` with ``per_channel_dynamic_qconfig`` makes them), activations quantised per call.

    The same kernel as ``torch.ao.nn.quantized.dynamic.Linear``, called without its Python layers (the op
    packet's TorchScript-object check, attribute hops, a no-op ``.to``): measured ~46 -> ~25 us a call at
    batch 1, and a step has 25 of them.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        w = linear.weight.detach().float()
        scale = (w.abs().amax(dim=1) / 127.5).clamp(min=torch.finfo(torch.float32).eps).double()
        zero = torch.zeros(w.size(0), dtype=torch.long)
        with warnings.catch_warnings():  # quantized tensors are slated to move to torchao one day
            warnings.simplefilter("ignore")
            q = torch.quantize_per_channel(w, scale, zero, 0, torch.qint8)
            self.packed = torch.ops.quantized.linear_prepack(q, None if linear.bias is None else linear.bias.detach().float())
        overload = torch.ops.quantized.linear_dynamic.default
        self._op = getattr(overload, "_op", overload)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._op(x, self.packed, True)  # reduce_range: fbgemm's 7-bit activations, as quantize_dynamic


Op = Callable[[torch.Tensor], torch.Tensor]


def _direct(module: nn.Module) -> Op:
    """``module(x)`` without nn.Module's call machinery (hooks, which a decoding view never has): the
    kernel itself where the module is one call, else its forward."""
    if type(module) is Int8Linear:
        op, packed = module._op, module.packed
        return lambda x: op(x, packed, True)
    if type(module) is nn.Linear:
        weight, bias = module.weight, module.bias
        return lambda x: F.linear(x, weight, bias)
    if type(module) is nn.LayerNorm:
        shape, weight, bias, eps = module.normalized_shape, module.weight, module.bias, module.eps
        return lambda x: F.layer_norm(x, shape, weight, bias, eps)
    return module.forward


@dataclass(frozen=True)
class _Layer:
    """One block's step, resolved once: its norms, linears and activation as plain callables."""

    norm_1: Op
    qkv: Op
    proj: Op
    norm_2: Op
    fc: Op
    fc_proj: Op
    act: Op
    """The MLP's activation; ReLU² in place on the fresh fc output (``_relu2_``)."""


def _relu2_(h: torch.Tensor) -> torch.Tensor:
    """ReLU2's relu(h)^2 in place: h is the fc output, made for this step only."""
    return h.relu_().mul_(h)


class FusedStepGPT(GPT):
    """A decoding view whose one-token cached step runs fewer tensor ops; everything else is GPT's forward.

    At batch B and one new token a step of the default model is ~150 small ops besides its 25 linears, each
    a few microseconds of dispatch, and the Python between them costs as much again (torch.profiler on the
    int8 path: the ops' own time was 1.14 ms of a 1.80 ms step). This step computes the same numbers with
    fewer of both: every block's modules are resolved once into plain callables (``_Layer``; no nn.Module
    calls or attribute look-ups per token), queries, keys and values are views of the QKV output in
    (B, nh, 1, hs) order (no transposes, and the attention output needs no copy back), q and k are rotated
    as one tensor by ``x * cos + roll(x) * sin`` with tables of the signed angles per position (the same
    products and sums as GPT's rotation, so the same bits), the cache is written with one copy per tensor,
    and the residual adds are in place. Configs with QK-norm or skips between blocks take GPT's own forward
    (``fusable``). Measured on the default model, 2-core AMD EPYC (AVX2 only), 1 thread, best of 200 steps
    at position 16: int8 linears 1.72 -> 1.47 ms at batch 1 and 2.16 -> 1.81 ms at batch 4 against the
    previous fused step (module calls, the rotation by halves and cat), bit for bit the same logits.
    """

    @staticmethod
    def fusable(model: GPT) -> bool:
        c = model.config
        return not (c.qk_norm or c.unet_skips or c.embed_skips)

    def resolve(self) -> None:
        """Resolve the blocks into ``_Layer``s (again after any module of this view is replaced)."""
        t = self.transformer
        self._layers = [
            _Layer(_direct(b.ln_1), _direct(b.attn.c_attn), _direct(b.attn.c_proj), _direct(b.ln_2),
                   _direct(b.mlp.c_fc), _direct(b.mlp.c_proj),
                   _relu2_ if isinstance(b.mlp.gelu, ReLU2) else _direct(b.mlp.gelu))
            for b in t.h
        ]
        self._norm_f, self._head = _direct(t.ln_f), _direct(self.lm_head)
        if self.config.pos_emb == "rope":
            cos, sin = self.rope_cos, self.rope_sin  # (T, hs/2)
            self._rope_cos = torch.cat((cos, cos), dim=-1)  # x1 * cos | x2 * cos
            self._rope_sin = torch.cat((-sin, sin), dim=-1)  # x2 * -sin | x1 * sin, with x rolled to (x2, x1)

    def forward(  # type: ignore[override]
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        cache: KVCache | None = None,
        last_only: bool = False,
        hidden_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if cache is None or targets is not None or hidden_only or idx.size(1) != 1 or not self.fusable(self):
            return super().forward(idx, targets, cache=cache, last_only=last_only, hidden_only=hidden_only)
        c = self.config
        B, C, nh = idx.size(0), c.n_embd, c.n_head
        hs = C // nh
        pos = cache.length
        if pos + 1 > c.block_size:
            raise ValueError(f"sequence of {pos + 1} tokens exceeds block_size {c.block_size}")
        t = self.transformer
        x = F.embedding(idx, t.wte.weight)  # (B, 1, C)
        if "wpe" in t:
            x = x + t.wpe.weight[pos]
        rope = c.pos_emb == "rope"
        if rope:
            cos, sin, half = self._rope_cos[pos], self._rope_sin[pos], hs // 2
        sdpa, ks, vs = F.scaled_dot_product_attention, cache.k, cache.v
        for i, layer in enumerate(self._layers):
            qkv = layer.qkv(layer.norm_1(x))  # (B, 1, 3C)
            v = qkv[..., 2 * C :].view(B, nh, 1, hs)
            qk = qkv[..., : 2 * C].view(B, 2 * nh, 1, hs)
            if rope:
                qk = qk * cos + torch.roll(qk, half, -1) * sin
            k_cache, v_cache = ks[i], vs[i]
            k_cache.select(2, pos).copy_(qk.select(2, 0).narrow(1, nh, nh))  # one view op a dimension, not three
            v_cache.select(2, pos).copy_(v.select(2, 0))
            y = sdpa(qk.narrow(1, 0, nh), k_cache.narrow(2, 0, pos + 1), v_cache.narrow(2, 0, pos + 1))
            x.add_(layer.proj(y.view(B, 1, C)))  # (B, nh, 1, hs) is (B, 1, C) in memory: no copy
            x.add_(layer.fc_proj(layer.act(layer.fc(layer.norm_2(x)))))
        cache.length = pos + 1
        return self.soft_cap(self._head(self._norm_f(x))), None


def _fused(view: GPT) -> GPT:
    """``view`` (a shallow copy of the model) with the fused one-token step."""
    view.__class__ = FusedStepGPT
    view.resolve()  # type: ignore[attr-defined]
    return view


def _view(model: GPT) -> GPT:
    """A copy of the module tree that shares every parameter and buffer with ``model``."""
    memo: dict[int, object] = {id(t): t for t in model.parameters()}
    memo.update({id(t): t for t in model.buffers()})
    return copy.deepcopy(model, memo)


def _replace_linears(model: nn.Module, make: Callable[[str, nn.Linear], nn.Module | None]) -> None:
    """Swap every ``nn.Linear`` (by its qualified name) for ``make(name, linear)``; None keeps it."""
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                name = f"{parent_name}.{child_name}" if parent_name else child_name
                new = make(name, child)
                if new is not None:
                    setattr(parent, child_name, new)


def _is_head(name: str) -> bool:
    return name == "lm_head"


def _build_bf16_mv(model: GPT) -> GPT:
    view = _view(model)
    _replace_linears(view, lambda name, lin: BF16MatVecHead(lin) if _is_head(name) else None)
    return view


def _build_fp32_t(model: GPT) -> GPT:
    view = _view(model)
    _replace_linears(view, lambda _name, lin: TransposedLinear(lin))
    return view


def _build_bf16(model: GPT) -> GPT:
    view = _view(model)
    _replace_linears(view, lambda _name, lin: BF16Linear(lin))
    return view


def _build_int8(model: GPT) -> GPT:
    view = _view(model)
    _replace_linears(view, lambda _name, lin: Int8Linear(lin))
    return view


def _build_fused(model: GPT) -> GPT:
    return _fused(_view(model))


def _build_fp32_t_fused(model: GPT) -> GPT:
    return _fused(_build_fp32_t(model))


def _build_int8_fused(model: GPT) -> GPT:
    return _fused(_build_int8(model))


@dataclass(frozen=True)
class Candidate:
    name: str
    build: Callable[[GPT], GPT]
    exact: bool
    """Whether the logits are the exact path's up to float reassociation (else: rounded weights)."""
    note: str


CANDIDATES: dict[str, Candidate] = {
    c.name: c
    for c in (
        Candidate(EXACT, lambda m: m, True, "the model as trained: fp32 nn.Linear"),
        Candidate("fp32-t", _build_fp32_t, True, "fp32, every weight stored transposed (x @ W.T)"),
        Candidate("bf16-mv", _build_bf16_mv, False, "fp32 body, bf16 head read by torch.mv (the pre-issue-12 path)"),
        Candidate("bf16", _build_bf16, False, "every linear in bf16"),
        Candidate("int8", _build_int8, False, "every linear int8 (dynamic quantisation, per-channel weights)"),
        Candidate("fused", _build_fused, True, "fp32 nn.Linear, the one-token step in fewer ops (FusedStepGPT)"),
        Candidate("fp32-t-fused", _build_fp32_t_fused, True, "fp32-t's linears and the fused one-token step"),
        Candidate("int8-fused", _build_int8_fused, False, "int8 linears and the fused one-token step"),
    )
}
"""Every decoding path, in the order a tie goes to (the exact path first)."""


def build_path(model: GPT, name: str) -> GPT:
    """The model laid out for ``name``; ``exact`` is the model itself."""
    try:
        candidate = CANDIDATES[name]
    except KeyError:
        raise ValueError(f"unknown decoding path {name!r}; choose one of: {', '.join(CANDIDATES)}") from None
    return candidate.build(model).eval()


@dataclass(frozen=True)
class PathChoice:
    """Which path won for one model shape and batch size, and the timings it was chosen on."""

    name: str
    batch_size: int
    ms_per_step: dict[str, float]
    """Best observed decode step, per candidate that built and ran."""
    measured_at: float | None = None
    """When the calibration ran, for one kept on disk (calibration_store); None: in this process."""

    @property
    def reason(self) -> str:
        ranked = sorted(self.ms_per_step.items(), key=lambda kv: kv[1])
        figures = ", ".join(f"{n} {ms:.2f} ms" for n, ms in ranked)
        source = "at load" if self.measured_at is None else f"kept from {when(self.measured_at)}"
        return f"fastest decode step at batch {self.batch_size} in a calibration {source}: {figures}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ms_per_step": {n: ms for n, ms in self.ms_per_step.items() if usable(ms)}}

    @classmethod
    def from_json(cls, value: dict[str, Any], batch_size: int, measured_at: float,
                  names: tuple[str, ...]) -> PathChoice | None:
        """The choice kept on disk, or None when it names a path not among ``names`` or is malformed."""
        name, ms = value.get("name"), value.get("ms_per_step")
        if name not in names or not isinstance(ms, dict):
            return None
        if not all(isinstance(k, str) and isinstance(v, (int, float)) for k, v in ms.items()):
            return None
        return cls(name, batch_size, {k: float(v) for k, v in ms.items()}, measured_at)


_CHOICES: dict[tuple[object, ...], PathChoice] = {}


def _shape_key(model: GPT, batch_size: int) -> tuple[object, ...]:
    p = next(model.parameters())
    return (type(model).__qualname__, model.config, p.device.type, p.dtype, torch.get_num_threads(), batch_size)


class StepTimer:
    """Times cached decoding steps of one model at one batch size, the cache filled once up front."""

    @torch.inference_mode()
    def __init__(self, model: GPT, *, batch_size: int, position: int | None = None) -> None:
        block = model.config.block_size
        self.model = model
        self.position = max(1, min(block // 2 if position is None else position, block - 1))
        device = next(model.parameters()).device
        self.cache = model.new_cache(batch_size)
        model(torch.zeros(batch_size, self.position, dtype=torch.long, device=device), cache=self.cache, last_only=True)
        self.idx = torch.zeros(batch_size, 1, dtype=torch.long, device=device)

    @torch.inference_mode()
    def best(self, steps: int) -> float:
        """The fastest of ``steps`` steps, in seconds (each at the same position: the cache is rewound)."""
        sync = torch.cuda.synchronize if self.idx.device.type == "cuda" else (lambda: None)
        best = float("inf")
        for _ in range(steps):
            self.cache.length = self.position
            sync()
            start = time.perf_counter()
            self.model(self.idx, cache=self.cache, last_only=True)
            sync()  # a GPU step is asynchronous: time it to the end
            best = min(best, time.perf_counter() - start)
        return best


LOSSY_MARGIN = 0.9
"""A path that rounds the weights must be at least 10% faster than the best exact one to be chosen:
numbers that change for less are not worth it, and a clear margin keeps the choice (and so which text a
seed gives) from flipping between two near-equal paths from one calibration to the next."""


def choose_path(
    model: GPT, *, batch_size: int = 1, candidates: tuple[str, ...] | None = None, rounds: int = 3, steps: int = 3,
    store: CalibrationStore | None = None,
) -> PathChoice:
    """The fastest candidate for this model's shape at ``batch_size``, measured once per process, and once
    per machine with a ``store`` (the choice kept there is taken without timing anything).

    Candidates are timed in interleaved rounds (a busy spell on a shared machine hurts all alike), the
    best step of each counts, and after the first round any candidate slower than twice the best leaves.
    The cost is building the candidates and a dozen steps each: 0.45-0.8 s for the default model, 1.3-3.2 s
    for the seed preset's 50k head, on the loaded 2-core machine (bench_generate prints it).
    Lossy candidates (bf16, int8) stay within 0.01 bits per byte of the exact path on held-out books
    (tests/bench/bench_decode_bpb.py; the figures are in this module's docstring).
    """
    key = _shape_key(model, batch_size) + (candidates,)
    if key in _CHOICES:
        return _CHOICES[key]
    names = candidates or tuple(CANDIDATES)
    if next(model.parameters()).device.type != "cpu":
        names = tuple(n for n in names if n in (EXACT, "bf16"))  # the CPU kernels (fbgemm, mv) stay on CPUs
    stored = None if store is None else _store_key(model, batch_size, names)
    if store is not None and stored is not None:
        kept = store.get(stored)
        choice = None if kept is None else PathChoice.from_json(kept[0], batch_size, kept[1], names)
        if choice is not None:
            _CHOICES[key] = choice
            return choice
    timers: dict[str, StepTimer] = {}
    for name in names:
        try:
            timers[name] = StepTimer(build_path(model, name), batch_size=batch_size, position=16)
            timers[name].best(1)  # warm-up: allocator, kernel selection
        except (RuntimeError, ImportError, AttributeError):  # a backend this torch build lacks
            timers.pop(name, None)
    best: dict[str, float] = {name: float("inf") for name in timers}
    for round_ in range(rounds):
        for name, timer in timers.items():
            best[name] = min(best[name], timer.best(steps))
        if round_ == 0:
            fastest = min(best.values())
            timers = {n: t for n, t in timers.items() if best[n] <= 2 * fastest}
    exact = min((n for n in best if CANDIDATES[n].exact), key=lambda n: best[n])
    lossy = [n for n in timers if not CANDIDATES[n].exact and best[n] < LOSSY_MARGIN * best[exact]]
    winner = min(lossy, key=lambda n: best[n]) if lossy else exact
    choice = PathChoice(winner, batch_size, {n: 1000 * s for n, s in best.items()})
    _CHOICES[key] = choice
    if store is not None and stored is not None:
        store.put(stored, choice.to_json())
    return choice


def _store_key(model: GPT, batch_size: int, names: tuple[str, ...]) -> str:
    """What a path choice kept on disk is valid for: this CPU and torch, the model's shape, the batch size,
    the thread count it was timed on and the candidates it chose among."""
    return (f"path/{machine_key()}/{model_key(model)}/batch {batch_size}/threads {torch.get_num_threads()}/"
            f"{','.join(names)}")
