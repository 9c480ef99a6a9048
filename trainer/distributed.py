"""torchrun's environment for the training loop (DDP), or a single process: rank, world size, and the few
collectives the loop needs (a mean, an any, a broadcast)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


class Distributed:
    """torchrun's environment, or a single process."""

    def __init__(self, device: torch.device) -> None:
        self.enabled = "RANK" in os.environ and "WORLD_SIZE" in os.environ
        self.rank, self.world_size, self.device = 0, 1, device
        if self.enabled:
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend)
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
            if device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
                torch.cuda.set_device(self.device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mean(self, value: float) -> float:
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t)
        return float(t) / self.world_size

    def any(self, flag: bool) -> bool:
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t)
        return bool(t.item() > 0)

    def broadcast(self, value: int) -> int:
        """Rank 0's value, on every rank."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.int64, device=self.device if self.device.type == "cuda" else "cpu")
        dist.broadcast(t, src=0)
        return int(t.item())

    def barrier(self) -> None:
        """Wait until every rank is here."""
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
