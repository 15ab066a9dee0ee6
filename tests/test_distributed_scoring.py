"""``evaluate`` and ``diagnose`` under torchrun: two gloo processes write the JSON and CSV one process writes.

Each rank scores its shard of the images; the confusion matrices and per-size sums are added
over ranks and the per-object (per-image) rows gathered. Counts must match exactly, means up
to float rounding (sums added in another order).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from segscale import distributed
from segscale.cli import main

ROOT = Path(__file__).resolve().parents[1]
# ScaleShapes val 6..9: small images (at most 602 px wide) with 1 to 8 objects each.
FIRST, COUNT = "6", "4"


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    return env


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "segscale",
        *args,
    ]
    finished = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=180)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished


def _one_process(*args: str) -> None:
    """``main(args)`` in this process, with one thread as each torchrun process has (the same float kernels)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(list(args)) == 0
    finally:
        torch.set_num_threads(threads)


def _assert_same(one, two, where: str = "report") -> None:
    """Equal plain data: counts and text exactly, floats up to rounding."""
    if isinstance(one, float) or isinstance(two, float):
        assert isinstance(one, (int, float)) and isinstance(two, (int, float)), f"{where}: {one!r} != {two!r}"
        assert math.isclose(one, two, rel_tol=1e-9, abs_tol=1e-12), f"{where}: {one!r} != {two!r}"
    elif isinstance(one, dict):
        assert isinstance(two, dict) and list(one) == list(two), f"{where}: keys {list(one)} != {list(two)}"
        for key in one:
            _assert_same(one[key], two[key], f"{where}.{key}")
    elif isinstance(one, list):
        assert isinstance(two, list) and len(one) == len(two), f"{where}: {len(one)} items != {len(two)}"
        for k, (a, b) in enumerate(zip(one, two)):
            _assert_same(a, b, f"{where}[{k}]")
    else:
        assert one == two, f"{where}: {one!r} != {two!r}"


def _assert_same_csv(one: str, two: str) -> None:
    """Same header and rows; numeric cells within 1e-6 (the CSV rounds weights to 6 digits), the rest exactly."""
    rows_one, rows_two = list(csv.reader(io.StringIO(one))), list(csv.reader(io.StringIO(two)))
    assert rows_one[0] == rows_two[0] and len(rows_one) == len(rows_two)
    for line, (a_row, b_row) in enumerate(zip(rows_one, rows_two), start=1):
        for name, a, b in zip(rows_one[0], a_row, b_row):
            try:
                numbers = float(a), float(b)
            except ValueError:
                assert a == b, f"line {line}, {name}: {a!r} != {b!r}"
            else:
                assert math.isclose(*numbers, abs_tol=1e-6), f"line {line}, {name}: {a} != {b}"


def test_two_gloo_processes_evaluate_as_one_process(make_checkpoint, tmp_path):
    checkpoint = str(make_checkpoint(scaleshapes=True))
    args = [
        "evaluate",
        "--checkpoint",
        checkpoint,
        "--count",
        COUNT,
        "--first",
        FIRST,
        "--merge",
        "attention",
        "average",
        "max",
        "--quiet",
    ]
    _one_process(*args, "--json", str(tmp_path / "one.json"))
    finished = _torchrun(*args, "--json", str(tmp_path / "two.json"))

    one, two = (json.loads((tmp_path / name).read_text()) for name in ("one.json", "two.json"))
    assert (
        two["images"] == 4 and sum(b["objects"] for b in two["merges"]["max"]["iou_by_size"]) == 15
    )  # every object once
    _assert_same(one, two)
    assert finished.stdout.count("wrote ") == 1, "a rank other than 0 printed or wrote the report"


def test_two_gloo_processes_diagnose_as_one_process(make_checkpoint, tmp_path):
    checkpoint = str(make_checkpoint(scaleshapes=True))
    args = ["diagnose", "--checkpoint", checkpoint, "--count", COUNT, "--first", FIRST, "--quiet"]
    _one_process(*args, "--out", str(tmp_path / "one"))
    _torchrun(*args, "--out", str(tmp_path / "two"))

    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    table = (tmp_path / "two" / "objects.csv").read_text()
    keys = [(row["image_index"], row["instance_id"]) for row in csv.DictReader(io.StringIO(table))]
    assert len(keys) == len(set(keys)) == 15 and keys == sorted(keys, key=lambda k: (int(k[0]), int(k[1])))
    _assert_same_csv((tmp_path / "one" / "objects.csv").read_text(), table)
    one, two = (json.loads((tmp_path / name / "aggregates.json").read_text()) for name in ("one", "two"))
    assert isinstance(one.pop("seconds"), float) and isinstance(two.pop("seconds"), float)  # a timing, not a result
    _assert_same(one, two)


# ----------------------------------------------------------------------------- the other inputs, in-process


def _pairs(count: int = 5):
    """Random (image, label) pairs of two sizes, as a VOC-style dataset yields them."""
    rng = np.random.default_rng(3)
    sizes = ((48, 64), (40, 56))
    return [
        (
            rng.integers(0, 256, size=(*sizes[k % 2], 3), dtype=np.uint8),
            rng.integers(0, 3, size=sizes[k % 2]).astype(np.int64),
        )
        for k in range(count)
    ]


def _scoring_worker(rank: int, world_size: int, port: int, checkpoint: str, results) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    from segscale.diagnostics import image_diagnostics
    from segscale.evaluation import evaluate_pairs_report
    from segscale.inference import FastPathOptions
    from segscale.predictor import Predictor

    context = distributed.distributed_context("cpu")
    try:
        predictor = Predictor.from_checkpoint(checkpoint, device="cpu", options=FastPathOptions(autocast="off"))
        pairs, merges = _pairs(), ("attention", "average", "max")
        images, names = [image for image, _ in pairs], [f"p{k}.png" for k in range(len(pairs))]
        seen = []
        report = evaluate_pairs_report(
            predictor, pairs, len(pairs), None, merges, on_image=seen.append, context=context
        )
        diagnostics = image_diagnostics(predictor, images, names, context=context)
        results[rank] = (report, diagnostics.to_csv(), diagnostics.to_dict(), len(seen))
        if rank == 0:  # one process over every pair, with the same threads and kernels
            alone = image_diagnostics(predictor, images, names)
            results["alone"] = (
                evaluate_pairs_report(predictor, pairs, len(pairs), None, merges),
                alone.to_csv(),
                alone.to_dict(),
            )
    finally:
        distributed.shutdown()


def test_pairs_and_image_files_are_shared_out_and_combined(make_checkpoint):
    """``evaluate --dataset voc`` (evaluate_pairs_report) and
    ``diagnose --images`` (image_diagnostics) over two gloo processes."""
    checkpoint = str(make_checkpoint())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    results = mp.Manager().dict()
    mp.spawn(_scoring_worker, args=(2, port, checkpoint, results), nprocs=2, join=True)
    report_alone, csv_alone, dict_alone = results["alone"]
    dict_alone.pop("seconds")
    for rank, shard_size in ((0, 3), (1, 2)):  # five pairs: ranks 0 and 1 take 0, 2, 4 and 1, 3
        report, table, aggregates, scored = results[rank]
        assert scored == shard_size, "a rank scored images outside its shard"
        _assert_same(report_alone, report)
        assert table == csv_alone  # per-image rows are computed whole on one rank, so exactly equal
        aggregates.pop("seconds")
        _assert_same(dict_alone, aggregates)
    assert [row["image"] for row in results[0][2]["per_image"]] == [f"p{k}.png" for k in range(5)]


@pytest.mark.parametrize("command", ["evaluate", "diagnose"])
def test_one_process_needs_no_torchrun(make_checkpoint, monkeypatch, command):
    """Without torchrun's environment the commands start no process group."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    started = []
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda *a, **k: started.append(a))
    checkpoint = str(make_checkpoint(scaleshapes=True))
    assert main([command, "--checkpoint", checkpoint, "--count", "1", "--first", "8", "--quiet"]) == 0
    assert not started and not torch.distributed.is_initialized()
