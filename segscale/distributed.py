"""Several processes started by ``torchrun``: who am I, which items are mine, and combining results.

Training (DDP), folder prediction, and the scoring passes of ``evaluate`` and ``diagnose``
share these few primitives rather than each reading the environment on its own:

* :func:`distributed_context` reads RANK / WORLD_SIZE / LOCAL_RANK (set by ``torchrun``) and
  starts the process group: gloo on the CPU, NCCL with this process's local GPU on CUDA;
  a plain ``python`` run is rank 0 of 1 and starts nothing.
* :func:`shard` (or ``context.share(items)``) gives each rank its part of a sorted list:
  no overlap, no gap.
* :func:`all_reduce_sum` adds a tensor (a confusion matrix, per-size counts) over ranks;
  :func:`all_reduce_attributes` does it for an accumulator's numpy arrays, in place.
* :func:`gather_rows` collects picklable rows (per-object records, per-image results) from
  every rank, in rank order.

With one process every function is the identity, so callers need no second code path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class DistributedContext:
    """This process's place among ``world_size`` processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes shared files (summaries, reports)."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    def share(self, items: Sequence[T]) -> list[T]:
        """This process's :func:`shard` of ``items`` (all of them with one process)."""
        return shard(items, self.rank, self.world_size)


def distributed_context(device_type: str | None = None) -> DistributedContext:
    """This process's rank, world size and local rank, starting the process group when under torchrun.

    Args:
        device_type: "cuda" to use NCCL with this process's local GPU (``torch.cuda.set_device``
            is called first, so collectives and the model agree on the GPU); "cpu" for gloo.
            None: CUDA when it is available, as training does.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type is None:
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
    if not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
            dist.init_process_group(backend="nccl", device_id=torch.device("cuda", local_rank))
        else:
            dist.init_process_group(backend="gloo")
    return DistributedContext(dist.get_rank(), dist.get_world_size(), local_rank)


def device_type(device: str | None) -> str:
    """ "cuda" or "cpu": the backend family a ``--device`` flag asks for (None: CUDA when available)."""
    if device is not None:
        return "cuda" if device.startswith("cuda") else "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def rank_device(device: str | None, context: DistributedContext) -> str | None:
    """The device this rank computes on: its local GPU under torchrun on CUDA, otherwise ``device`` as given."""
    if context.is_distributed and device_type(device) == "cuda":
        return f"cuda:{context.local_rank}"
    return device


def shard(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """Rank ``rank``'s share of ``items``: every ``world_size``-th item from position ``rank``.

    The caller passes the same sorted list on every rank; the shares are then disjoint and
    together hold every item once (ranks differ by at most one item, so none waits long).
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
    return list(items[rank::world_size])


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over all ranks (the tensor itself with one process).

    Returns a new tensor on the tensor's own device; the input is left alone. NCCL reduces
    on the GPU and gloo on the CPU, so the tensor travels to the backend's device and back.
    Integer tensors (confusion matrices, pixel counts) add exactly.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor.clone()
    backend_device = (
        torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    )
    reduced = tensor.detach().to(backend_device, copy=True)
    dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
    return reduced.to(tensor.device)


def all_reduce_attributes(accumulator, names: Sequence[str]) -> None:
    """Sum the numpy-array attributes ``names`` of ``accumulator`` over all ranks, in place.

    For the scoring passes' accumulators, which keep their sums as numpy arrays:
    ``ConfusionMatrix`` ("counts"), ``SizeBinnedIoU`` ("true_positive", "false_negative",
    "false_positive", "objects"), ``AttentionBySize`` ("sums", "counts", "class_sums",
    "class_counts", "dominant_pixels"). Integer counts add exactly; float sums up to the order
    of addition. A no-op with one process.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    import numpy as np

    for name in names:
        value = getattr(accumulator, name)
        reduced = all_reduce_sum(torch.from_numpy(np.ascontiguousarray(value)))
        setattr(accumulator, name, reduced.numpy().astype(value.dtype, copy=False))


def gather_rows(rows: list) -> list:
    """Every rank's ``rows`` (picklable objects), concatenated in rank order, on every rank.

    With :func:`shard`'s split, rank r holds items r, r + W, r + 2W, ...; callers that need
    the single-process order sort the result by their own key (an image index or name).
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return list(rows)
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, list(rows))
    return [row for part in gathered for row in part]


def barrier(timeout: timedelta | None = None) -> None:
    """Wait for every rank (a no-op with one process, or before :func:`distributed_context` started the group).

    ``timeout``: how long the others may wait, where the process group's own (minutes) is too short,
    as for rank 0 downloading a data set; the wait then runs on a gloo group of its own, which works
    beside NCCL and leaves the training group's timeout alone.
    """
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return
    if timeout is None:
        dist.barrier()
        return
    group = dist.new_group(backend="gloo", timeout=timeout)
    try:
        dist.barrier(group=group)
    finally:
        dist.destroy_process_group(group)


def shutdown() -> None:
    """End the process group this process started (a no-op with one process)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
