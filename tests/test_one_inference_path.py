"""One inference path: every caller predicts through a Predictor, and tensors become a Prediction in one place.

Folder jobs run ``Predictor.predict_batch``; training's validation and ``segscale evaluate`` share one
scoring loop through a float32 Predictor. What the commands write did not change when they were
brought onto this path: tests/data/before_one_path holds ``segscale evaluate`` and ``segscale
diagnose`` outputs made before, with the shipped checkpoints (commands in :func:`_recorded`).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from segscale.batch import runner
from segscale.checkpoint import CheckpointMetadata
from segscale.evaluation import evaluate_pairs, evaluate_pairs_report
from segscale.inference import FastPathOptions
from segscale.modeling import build_model
from segscale.predictor import Predictor
from tests.conftest import REPO, noise, tiny_config, tiny_metadata

RECORDED = Path(__file__).parent / "data" / "before_one_path"
FLOAT32 = FastPathOptions(autocast="off")


def _predictor(merge: str, seed: int = 0) -> Predictor:
    torch.manual_seed(seed)
    model = build_model(tiny_config(merge=merge))
    return Predictor(model, tiny_metadata(model.config), device="cpu", max_side=None, options=FLOAT32)


@pytest.mark.parametrize("merge", ["attention", "hierarchical", "max"])
def test_predict_batch_gives_what_predict_gives_image_by_image(merge):
    predictor = _predictor(merge)
    images = [noise(48, 64, seed=k) for k in range(3)]
    batch = predictor.predict_batch(images, merge=merge)
    assert len(batch) == 3
    for image, batched in zip(images, batch):
        alone = predictor.predict(image, merge=merge)
        assert batched.merge == alone.merge == merge and batched.scales == alone.scales
        assert batched.original_size == alone.original_size == (48, 64)
        for field in ("score_maps", "attention_logits", "attention", "fused", "gate_logits"):
            mine, theirs = getattr(batched, field), getattr(alone, field)
            assert (mine is None) == (theirs is None), field
            if mine is not None:
                np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5, err_msg=field)
        assert (batched.labels == alone.labels).mean() > 0.99
    if merge == "hierarchical":  # a folder job's predictions used to lose these
        assert all(p.gate_logits is not None for p in batch)


def test_predict_batch_refuses_images_of_different_sizes():
    predictor = _predictor("attention")
    with pytest.raises(ValueError, match="one size"):
        predictor.predict_batch([noise(48, 64), noise(40, 64)])
    assert predictor.predict_batch([]) == []


def test_folder_jobs_predict_through_predict_batch(tmp_path, monkeypatch):
    from PIL import Image

    from segscale import distributed
    from segscale.batch.inputs import enumerate_inputs

    for k in range(3):
        Image.fromarray(noise(48, 64, seed=k)).save(tmp_path / f"in{k}.png")
    predictor = _predictor("hierarchical")
    calls = []
    original = Predictor.predict_batch

    def spy(self, images, *args, **kwargs):
        predictions = original(self, images, *args, **kwargs)
        calls.append(predictions)
        return predictions

    monkeypatch.setattr(Predictor, "predict_batch", spy)
    items = enumerate_inputs(tmp_path)
    settings = runner.BatchSettings(scales=(1.0, 0.75, 0.5), merge="hierarchical", outputs=("maps",), workers=0)
    result = runner.run_folder(predictor, items, tmp_path / "out", settings, distributed.DistributedContext())
    assert [row["status"] for row in result.rows] == ["done"] * 3
    assert sum(len(predictions) for predictions in calls) == 3
    assert all(p.gate_logits is not None for predictions in calls for p in predictions)


def test_training_validation_scores_like_evaluate_through_a_float32_predictor():
    torch.manual_seed(1)
    model = build_model(tiny_config(merge="attention")).train()
    pairs = [(noise(40, 56, seed=k), np.random.default_rng(k).integers(0, 3, (40, 56))) for k in range(3)]
    scales = (1.0, 0.5)
    seen = []
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    scores = evaluate_pairs(model, pairs, 3, mean, std, scales, "attention", "cpu", seen.append)
    assert model.training, "validation must hand the model back in training mode"
    assert seen == [0, 1, 2]
    metadata = CheckpointMetadata(
        model=model.config,
        classes=("a", "b", "c"),
        palette=((0, 0, 0),) * 3,
        mean=mean,
        std=std,
        scale_range=(0.5, 1.0),
    )
    predictor = Predictor(model, metadata, device="cpu", max_side=None, options=FLOAT32)
    model.train()
    report = evaluate_pairs_report(predictor, pairs, 3, scales, ("attention",))
    assert report["merges"]["attention"]["miou"] == pytest.approx(scores.miou, abs=0.0)


def _without_timing(data):
    if isinstance(data, dict):
        return {k: _without_timing(v) for k, v in data.items() if k not in ("seconds", "checkpoint")}
    if isinstance(data, list):
        return [_without_timing(v) for v in data]
    return data


@pytest.mark.slow
@pytest.mark.parametrize(
    ("checkpoint", "merges", "recorded"),
    [
        ("scaleshapes_demo.pt", ["attention", "average", "max"], "eval_demo.json"),
        ("scaleshapes_hierarchical.pt", ["hierarchical", "average", "max"], "eval_hier.json"),
    ],
)
def test_evaluate_writes_what_it_wrote_before_the_one_path(checkpoint, merges, recorded, tmp_path):
    # Recorded with: python -m segscale evaluate --checkpoint checkpoints/<checkpoint> --count 3
    #   --merge <merges> --json <recorded> --quiet   (float32, the command's default precision)
    from segscale.cli import main

    out = tmp_path / "report.json"
    argv = ["evaluate", "--checkpoint", str(REPO / "checkpoints" / checkpoint), "--count", "3", "--merge", *merges]
    assert main([*argv, "--json", str(out), "--quiet", "--device", "cpu"]) == 0
    now, before = json.loads(out.read_text()), json.loads((RECORDED / recorded).read_text())
    now.pop("device"), before.pop("device")
    assert _without_timing(now) == _without_timing(before)


@pytest.mark.slow
def test_diagnose_writes_what_it_wrote_before_the_one_path(tmp_path):
    # Recorded with: python -m segscale diagnose --checkpoint checkpoints/scaleshapes_hierarchical.pt
    #   --count 3 --out <dir> --quiet
    from segscale.cli import main

    argv = ["diagnose", "--checkpoint", str(REPO / "checkpoints" / "scaleshapes_hierarchical.pt"), "--count", "3"]
    assert main([*argv, "--out", str(tmp_path), "--quiet", "--device", "cpu"]) == 0
    with open(tmp_path / "objects.csv") as now, open(RECORDED / "diagnose_hier_objects.csv") as before:
        assert list(csv.reader(now)) == list(csv.reader(before))
    now = json.loads((tmp_path / "aggregates.json").read_text())
    before = json.loads((RECORDED / "diagnose_hier_aggregates.json").read_text())
    assert _without_timing(now) == _without_timing(before)
