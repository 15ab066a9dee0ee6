"""segscale/distributed.py: shards cover every item once; sums and gathers over two gloo processes equal one process."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from segscale import distributed
from segscale.metrics import ConfusionMatrix


@pytest.mark.parametrize("count", [0, 1, 7, 10, 1449])
@pytest.mark.parametrize("world_size", [1, 2, 3, 8])
def test_shards_have_no_overlap_and_no_gap(count, world_size):
    items = [f"img_{i:04d}" for i in range(count)]
    shards = [distributed.shard(items, rank, world_size) for rank in range(world_size)]
    together = [item for part in shards for item in part]
    assert sorted(together) == items and len(together) == len(set(together))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_a_rank_outside_the_world_is_refused():
    with pytest.raises(ValueError, match="rank 2 is not in 0..1"):
        distributed.shard([1, 2, 3], 2, 2)


def test_one_process_needs_no_process_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    context = distributed.distributed_context()
    assert (context.rank, context.world_size, context.is_main) == (0, 1, True)
    matrix = torch.arange(9).view(3, 3)
    assert torch.equal(distributed.all_reduce_sum(matrix), matrix)
    assert distributed.gather_rows([{"a": 1}]) == [{"a": 1}]


def _confusion(labels: torch.Tensor, predictions: torch.Tensor, classes: int = 3) -> torch.Tensor:
    return torch.bincount(labels * classes + predictions, minlength=classes * classes).view(classes, classes)


def _images(count: int = 7):
    generator = torch.Generator().manual_seed(0)
    return [
        (i, torch.randint(0, 3, (50,), generator=generator), torch.randint(0, 3, (50,), generator=generator))
        for i in range(count)
    ]


def _worker(rank: int, world_size: int, port: int, results) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    context = distributed.distributed_context("cpu")
    try:
        mine = distributed.shard(_images(), context.rank, context.world_size)
        matrix = sum(
            (_confusion(labels, predicted) for _, labels, predicted in mine), torch.zeros(3, 3, dtype=torch.long)
        )
        total = distributed.all_reduce_sum(matrix)
        rows = distributed.gather_rows([{"image": index, "rank": context.rank} for index, _, _ in mine])
        confusion = ConfusionMatrix(3)
        for _, labels, predicted in mine:
            confusion.update(labels.numpy(), predicted.numpy())
        distributed.all_reduce_attributes(confusion, ("counts",))
        results[rank] = (total.tolist(), rows, confusion.counts.tolist(), str(confusion.counts.dtype))
    finally:
        distributed.shutdown()


def test_two_gloo_processes_sum_and_gather_what_one_process_computes():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    results = mp.Manager().dict()
    mp.spawn(_worker, args=(2, port, results), nprocs=2, join=True)
    expected = sum(
        (_confusion(labels, predicted) for _, labels, predicted in _images()), torch.zeros(3, 3, dtype=torch.long)
    )
    for rank in (0, 1):
        total, rows, counts, dtype = results[rank]
        assert total == expected.tolist()
        assert counts == expected.tolist() and dtype == "int64"  # the evaluation's own accumulator, summed in place
        assert sorted(row["image"] for row in rows) == list(range(7))
        assert [row["rank"] for row in rows] == [0, 0, 0, 0, 1, 1, 1]  # rank order: rank 0's rows first
