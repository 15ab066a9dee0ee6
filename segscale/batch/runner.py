"""A folder job: predict every image of a folder, glob or list, resumably, on one process or several.

Steps, each in one place:

1. :func:`~segscale.batch.inputs.enumerate_inputs` lists the images, sorted; under ``torchrun``
   each rank takes its :func:`~segscale.distributed.shard` of that list.
2. Images whose outputs all exist are skipped (resume). Outputs are written to a temporary
   name beside the final one and moved into place with ``os.replace``
   (:func:`segscale.atomic_files.write_atomically`), so a file under its final name is always
   complete, even after a kill.
3. The rest are decoded in worker processes and grouped into same-size batches
   (:mod:`segscale.batch.loading`); each batch is one ``Predictor.predict_batch`` call (or, with a
   tile size, tiles through :func:`segscale.sliding_window.predict_tiled`).
4. Every rank's per-image rows are gathered and rank 0 writes ``summary.json``: counts,
   unreadable files with the reason, and the settings.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import distributed
from ..atomic_files import write_atomically
from ..devices import synchronize
from ..outputs import OutputOptions, kinds_that_apply, write_outputs
from .inputs import BatchItem
from .loading import DecodedImage, decoding_loader, same_size_batches

SUMMARY_NAME = "summary.json"
DEFAULT_OUTPUTS = ("labels",)


@dataclass(frozen=True)
class BatchSettings:
    """What a folder job was asked to do (recorded in the summary as given)."""

    scales: tuple[float, ...]
    merge: str
    outputs: tuple[str, ...] = DEFAULT_OUTPUTS
    batch_size: int = 4
    workers: int = 2
    max_side: int | None = None
    tile: int | None = None
    tile_overlap: int = 0


@dataclass
class BatchResult:
    """Per-image rows of one rank: {"input", "status" (done, skipped, unreadable), "rank", "reason"?}."""

    rows: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def is_complete(item: BatchItem, out: Path, kinds, settings: BatchSettings) -> bool:
    """Whether every requested output of ``item`` exists (a file under its final name is always whole)."""
    paths = item.output_paths(out, kinds, settings.merge, settings.scales)
    return all(path.is_file() for path in paths.values())


def run_folder(
    predictor,
    items: list[BatchItem],
    out: Path,
    settings: BatchSettings,
    context: distributed.DistributedContext,
    progress=None,
) -> BatchResult:
    """Predict this rank's share of ``items`` into ``out``; returns its rows (not gathered)."""
    kinds = kinds_that_apply(settings.outputs, settings.merge, settings.scales)  # what makes an image complete
    mine = distributed.shard(items, context.rank, context.world_size)
    result = BatchResult()
    todo = []
    for item in mine:
        if is_complete(item, out, kinds, settings):
            result.rows.append({"input": item.relative, "status": "skipped", "rank": context.rank})
        else:
            todo.append(item)
    if progress is not None:
        progress.update(len(mine) - len(todo))
    started = time.perf_counter()
    if todo:
        loader = decoding_loader(todo, settings.max_side, settings.workers)
        for batch in same_size_batches(loader, settings.batch_size):
            result.rows.extend(_predict_batch(predictor, batch, out, settings, kinds, context.rank))
            if progress is not None:
                progress.update(len(batch))
    result.seconds = time.perf_counter() - started
    return result


def _predict_batch(
    predictor, batch: list[DecodedImage], out: Path, settings: BatchSettings, kinds, rank: int
) -> list[dict]:
    if batch[0].rgb is None:
        return [{"input": batch[0].item.relative, "status": "unreadable", "rank": rank, "reason": batch[0].error}]
    rows, runnable = [], []
    for decoded in batch:
        try:  # the pixel budget, on the size as read (tiles have their own, smaller, size)
            if settings.tile is None:
                predictor.check_request(settings.scales, settings.merge, image_size=decoded.original_size)
            runnable.append(decoded)
        except ValueError as error:
            rows.append({"input": decoded.item.relative, "status": "unreadable", "rank": rank, "reason": str(error)})
    if not runnable:
        return rows
    if settings.tile is not None:
        predictions = _predict_tiled(predictor, runnable, settings)
    else:
        predictions = predictor.predict_batch(
            [decoded.rgb for decoded in runnable],
            settings.scales,
            settings.merge,
            original_sizes=[decoded.original_size for decoded in runnable],
        )
    for decoded, prediction in zip(runnable, predictions):
        paths = decoded.item.output_paths(out, kinds, settings.merge, settings.scales)
        missing = {kind: path for kind, path in paths.items() if not path.is_file()}  # a killed run wrote some
        # The figures' title is the image's path under the folder, which tells images of one name apart.
        write_outputs(prediction, predictor.metadata, missing, OutputOptions(title=decoded.item.relative))
        row = {"input": decoded.item.relative, "status": "done", "rank": rank}
        if decoded.notices:
            row["notices"] = list(decoded.notices)
        rows.append(row)
    return rows


def _predict_tiled(predictor, runnable: list[DecodedImage], settings: BatchSettings) -> list:
    """One Prediction per image, each through sliding-window tiles."""
    from ..predictor import StageTimings, prediction_from_output
    from ..sliding_window import predict_tiled

    started = time.perf_counter()
    results = [
        predict_tiled(predictor, decoded.rgb, settings.scales, settings.merge, settings.tile, settings.tile_overlap)
        for decoded in runnable
    ]
    synchronize(predictor.device)
    timings = StageTimings(0.0, (time.perf_counter() - started) / len(runnable), 0.0)
    return [
        prediction_from_output(
            output,
            labels,
            0,
            decoded.rgb,
            decoded.original_size,
            predictor.device_name,
            timings,
            predictor.align_corners,
        )
        for decoded, (output, labels) in zip(runnable, results)
    ]


def summary(
    rows: list[dict],
    settings: BatchSettings,
    predictor,
    context: distributed.DistributedContext,
    seconds: float,
    precisions=None,
) -> dict:
    """The job's summary: counts, unreadable files with reasons, per-image rows and the settings.

    ``precisions``: each rank's ``Predictor.precision`` in rank order (each process decides its own).
    """
    precisions = list(precisions or [predictor.precision])
    rows = sorted(rows, key=lambda row: row["input"])
    counts = {status: sum(row["status"] == status for row in rows) for status in ("done", "skipped", "unreadable")}
    return {
        "images": len(rows),
        "done": counts["done"],
        "skipped_complete": counts["skipped"],
        "unreadable": [
            {"input": row["input"], "reason": row["reason"]} for row in rows if row["status"] == "unreadable"
        ],
        "unreadable_count": counts["unreadable"],
        "processes": context.world_size,
        "seconds": round(seconds, 3),
        "images_per_second": round(counts["done"] / seconds, 3) if seconds > 0 and counts["done"] else None,
        "settings": {
            "checkpoint": predictor.metadata.name,
            "scales": list(settings.scales),
            "merge": settings.merge,
            "outputs": list(kinds_that_apply(settings.outputs, settings.merge, settings.scales)),
            "batching": (
                f"same-size batches of up to {settings.batch_size} images; images of different sizes run in "
                "separate batches and nothing is resized to fit"
            ),
            "max_side": settings.max_side,
            "tiles": None if settings.tile is None else {"tile": settings.tile, "overlap": settings.tile_overlap},
            "workers_per_process": settings.workers,
            "device": predictor.device_name,
            "precision": precisions[0] if len(set(precisions)) == 1 else precisions,
            "torch": torch.__version__,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        },
        "rows": rows,
    }


JOB_NAME = ".segscale-job.json"  # what a folder's outputs were made with, checked before resuming into it


def job_record(settings: BatchSettings, predictor) -> dict:
    """The settings that change the outputs: a resumed job must use the same ones."""
    return {
        "checkpoint": predictor.metadata.name,
        "classes": list(predictor.metadata.classes),
        "scales": list(settings.scales),
        "merge": settings.merge,
        "max_side": settings.max_side,
        "tiles": None if settings.tile is None else [settings.tile, settings.tile_overlap],
    }


def check_resumable(out: Path, record: dict) -> None:
    """Raise ValueError when ``out`` holds outputs of a job with other settings (resuming would mix them)."""
    path = out / JOB_NAME
    if not path.is_file():
        return
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # unreadable record: the new one replaces it
    changed = [key for key in record if previous.get(key) != record[key]]
    if changed:
        raise ValueError(
            f"--out {out} holds outputs made with other settings "
            f"({', '.join(f'{k}: {previous.get(k)}' for k in changed)}); "
            "choose a new --out folder, or delete it to start again"
        )


def write_summary(path: Path, data: dict) -> None:
    write_atomically(path, (json.dumps(data, indent=2) + "\n").encode())
