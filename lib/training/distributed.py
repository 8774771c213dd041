"""Data-parallel training of one run with `torchrun --nproc_per_node N -m lib.training ...`.

torchrun starts N processes (ranks) and sets WORLD_SIZE, RANK and LOCAL_RANK; a single process sees none of them
and trains exactly as before. With N ranks:
- every rank builds the same data, split and model; the model is wrapped in DistributedDataParallel, with its batch
  norms synchronised across ranks on GPUs (SyncBatchNorm; torch has no CPU implementation of it, so on CPUs each
  rank normalises its own batches);
- every rank draws the same complexity-weighted epoch (the same seeded sampler) and takes every N-th draw of it, a
  disjoint share; each rank's batch is `train.batch_size` and it accumulates `train.accumulation_steps / N` batches
  per step, so that a step averages the gradients of the same `batch_size x accumulation_steps` tiles as one
  process does (the effective batch is unchanged);
- a batch is skipped on every rank when its loss is not finite (or it carries no supervision) on any rank;
- only rank 0 validates, selects, writes the run's files and evaluates it; every rank resumes from its last.pt.
Backends: `nccl` on GPUs, `gloo` on CPUs (tested with 2 CPU processes).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among the ranks of a run (one process: rank 0 of 1)."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process validates and writes (rank 0)."""
        return self.rank == 0

    def share(self, draws: np.ndarray) -> np.ndarray:
        """This rank's disjoint share of an epoch's draws: every `world`-th from its rank on."""
        return draws[self.rank::self.world]

    def barrier(self) -> None:
        """Wait for every rank (nothing to wait for with one process)."""
        if self.world > 1:
            dist.barrier()

    def all_agree(self, flag: bool, device: torch.device) -> bool:
        """True when `flag` is true on every rank (so that every rank takes the same branch)."""
        if self.world == 1:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return bool(value.item())


SINGLE = Ranks()  # one process: rank 0 of 1


def ranks() -> Ranks:
    """This process's ranks, starting the process group on the first call under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return SINGLE
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return Ranks(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))


def per_rank_accumulation(accumulation_steps: int, world: int) -> int:
    """The batches each rank accumulates per step so that the effective batch stays the configured one."""
    if accumulation_steps % world:
        raise ValueError(f"train.accumulation_steps ({accumulation_steps}) must be a multiple of the number of "
                         f"processes ({world}) to keep the effective batch")
    return accumulation_steps // world


def wrap(model: torch.nn.Module, ranks: Ranks, device: torch.device) -> torch.nn.Module:
    """The model for training: as it is with one process; with several, wrapped in DistributedDataParallel, its
    batch norms synchronised on GPUs."""
    if ranks.world == 1:
        return model
    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index])
    return torch.nn.parallel.DistributedDataParallel(model)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DistributedDataParallel wrapper (for validation, checkpoints and evaluation)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
