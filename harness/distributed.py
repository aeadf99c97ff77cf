"""One large run across processes: DistributedDataParallel under ``torchrun``, same RunSpec.

``torchrun --nproc-per-node N -m harness.cli run --profile full --case baseline/cifar10 ...``
trains the case's RunSpec on N processes (NCCL on CUDA, one GPU each; gloo on CPU) and stores
the run under the same key as a single-process run (the key hashes the spec, never the world
size), so a later ``pytest suites --profile full`` session reuses it instead of training.

Every rank draws the same global batch (same seed, same shuffle, same augmentation) and trains
on its slice ``x[rank::world]``; DDP averages the gradients, so a step equals the single-process
step on the whole batch up to floating-point summation order. Every rank evaluates the whole
test split (the models are identical). Rank 0 alone holds the run lock and writes the store;
the other ranks read it (to resume from the same state) and write nothing.
"""
from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Iterator, Optional

import torch
import torch.distributed as dist
from torch import nn

from harness.lock import exclusive
from harness.record import RunRecord
from harness.runs import Engine, RunContext, run_key, stored_run
from harness.store import ReadOnlyStore
from harness.spec import RunSpec


class DistributedError(RuntimeError):
    """A distributed launch the harness cannot run; the message says what to change."""


@dataclass(frozen=True)
class Distributed:
    """This process's place in the group: ``rank`` of ``world``, ``local_rank`` on its node."""

    rank: int
    world: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batches) -> "ShardedBatches":
        return ShardedBatches(batches, self.rank, self.world)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The DDP forward of ``model`` (its parameters stay the ones the optimiser holds)."""
        from torch.nn.parallel import DistributedDataParallel

        device = next(model.parameters()).device
        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)


def from_environment(device_type: str) -> Optional[Distributed]:
    """The group torchrun describes in RANK / WORLD_SIZE / LOCAL_RANK, initialised (NCCL on
    CUDA, gloo on CPU); None when this process runs alone (WORLD_SIZE unset or 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return Distributed(rank, world, local_rank)


def device_for(group: Optional[Distributed], device: torch.device) -> torch.device:
    """Under torchrun on CUDA each process takes the GPU of its local rank."""
    if group is None or device.type != "cuda":
        return device
    torch.cuda.set_device(group.local_rank)
    return torch.device("cuda", group.local_rank)


class ShardedBatches:
    """This rank's slice of every global batch of ``batches`` (same order on every rank)."""

    def __init__(self, batches, rank: int, world: int) -> None:
        if batches.batch_size % world:
            raise DistributedError(f"Recipe.batch_size {batches.batch_size} must be divisible by "
                                   f"the world size {world}; change batch_size or --nproc-per-node")
        self.inner, self.rank, self.world = batches, rank, world
        self.batch_size = batches.batch_size // world
        self.device = batches.device

    def __len__(self) -> int:
        return len(self.inner)

    @property
    def samples_per_epoch(self) -> int:
        return len(self) * self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self.inner:
            yield x[self.rank::self.world], y[self.rank::self.world]

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


class DistributedEngine(Engine):
    """The Engine with DDP: sharded training batches, a DDP forward, rank-0 writes."""

    def __init__(self, spec: RunSpec, context: RunContext, key: str, group: Distributed) -> None:
        store = context.store if group.is_main else ReadOnlyStore(context.store.root)
        super().__init__(spec, context, key, store)
        self.group = group

    def _batches(self, dataset):
        train, test = super()._batches(dataset)
        return self.group.shard(train), test

    def _train_phase(self, model, train, test, recipe, **kwargs):
        kwargs["step_fn"] = self.group.wrap(model)
        return super()._train_phase(model, train, test, recipe, **kwargs)


def get_or_run_distributed(spec: RunSpec, context: RunContext, group: Distributed) -> RunRecord:
    """:func:`harness.runs.get_or_run` for every rank of ``group``: rank 0 holds the run lock and
    decides whether a stored run is reused; all ranks then return it, or train it together."""
    key = run_key(spec, context.device, context.root)
    store = context.store
    lock = exclusive(store.lock_path(key), f"run {key}") if group.is_main else nullcontext()
    with lock:
        stored = stored_run(store, key, context.rerun) if group.is_main else None
        decision = [stored is not None]
        dist.broadcast_object_list(decision, src=0)
        if decision[0]:
            return stored or stored_run(ReadOnlyStore(store.root), key, rerun=False)
        record = DistributedEngine(spec, replace(context, rerun=False), key, group).run()
        record.notes["world_size"] = group.world
        record.notes["train_metrics"] = "rank 0's slice of each global batch (test metrics: whole split)"
        if group.is_main:
            store.save_record(key, record)
        dist.barrier()
        return record


def train_or_reuse(spec: RunSpec, device: torch.device, *, reports_dir, data_root=None,
                   download: bool = False, rerun: bool = False, progress: bool = True
                   ) -> tuple[RunRecord, Optional[Distributed]]:
    """The run of ``spec`` from the store, trained first if missing: alone, or under torchrun on
    every process of the group with DDP. Returns the record and the group (None alone)."""
    from pathlib import Path

    from harness.runs import get_or_run

    group = from_environment(device.type)
    device = device_for(group, device)
    context = RunContext(device=device, reports_dir=Path(reports_dir), data_root=data_root,
                         download=download, rerun=rerun,
                         progress=progress and (group is None or group.is_main))
    if group is None:
        return get_or_run(spec, context), None
    try:
        return get_or_run_distributed(spec, context, group), group
    finally:
        dist.destroy_process_group()
