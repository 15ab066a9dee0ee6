"""``diagnose`` reads the data sets ``evaluate`` reads: a folder of index PNGs, ADE20K and Cityscapes trees.

Objects there are the connected regions of each class in the masks (segscale.data.regions); the
masks are test_mask_regions' rectangles, so that every region, its class and its extent are known.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch

from segscale.checkpoint import save_checkpoint
from segscale.cli import main
from segscale.dataset_palettes import ADE20K_CLASSES, CITYSCAPES_CLASSES
from segscale.modeling import build_model
from tests.conftest import TINY_CLASSES, tiny_config, tiny_metadata
from tests.test_folder_datasets import write_pair
from tests.test_mask_regions import blocks_mask


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """tiny_checkpoint(classes) -> a tiny LargeFOV with an attention head that predicts those classes."""

    def make(classes, name: str = "tiny.pt"):
        torch.manual_seed(0)
        config = tiny_config(num_classes=len(classes))
        palette = tuple((k % 256, 0, 0) for k in range(len(classes)))
        return str(save_checkpoint(tmp_path / name, build_model(config), tiny_metadata(config, classes, palette)))

    return make


def run_both(args: list[str], out, capsys) -> tuple[dict, dict, list[dict]]:
    """(evaluate's JSON, diagnose's aggregates.json, diagnose's objects.csv rows) for the same flags."""
    common = [*args, "--quiet", "--device", "cpu", "--merge", "attention", "average", "max", "--scales", "1", "0.5"]
    assert main(["evaluate", *common, "--json", str(out / "evaluate.json")]) == 0
    assert main(["diagnose", *common, "--out", str(out / "diagnose")]) == 0
    capsys.readouterr()
    evaluated = json.loads((out / "evaluate.json").read_text())
    diagnosed = json.loads((out / "diagnose" / "aggregates.json").read_text())
    rows = list(csv.DictReader(io.StringIO((out / "diagnose" / "objects.csv").read_text())))
    return evaluated, diagnosed, rows


def assert_same_scores(evaluated: dict, diagnosed: dict) -> None:
    assert diagnosed["images"] == evaluated["images"] and diagnosed["dataset"] == evaluated["dataset"]
    for merge in ("attention", "average", "max"):
        assert diagnosed["merges"][merge]["miou"] == pytest.approx(evaluated["merges"][merge]["miou"], abs=1e-12)
        assert diagnosed["merges"][merge]["class_iou"] == evaluated["merges"][merge]["class_iou"]


def test_diagnose_a_folder_dataset_as_evaluate_scores_it(tiny_checkpoint, tmp_path, capsys):
    checkpoint = tiny_checkpoint(TINY_CLASSES)
    expected = []
    for index, (first, second) in enumerate(((1, 2), (2, 1), (1, 1))):
        mask, objects = blocks_mask(first, second)
        write_pair(tmp_path / "images" / f"{index}.png", tmp_path / "masks" / f"{index}.png", mask, index)
        expected += [(index, c, extent) for c, extent in objects]
    folder = ["--dataset", "folder", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks")]
    evaluated, diagnosed, rows = run_both(["--checkpoint", checkpoint, *folder], tmp_path, capsys)
    assert_same_scores(evaluated, diagnosed)
    assert diagnosed["images"] == 3 and diagnosed["classes"] == list(TINY_CLASSES)
    assert len(diagnosed["merges"]["attention"]["class_iou"]) == len(TINY_CLASSES)
    assert "connected regions" in diagnosed["objects_from"] and diagnosed["objects"] == len(expected)
    found = [(int(r["image_index"]), TINY_CLASSES.index(r["class"]), float(r["extent_px"])) for r in rows]
    assert [(i, c) for i, c, _ in found] == [(i, c) for i, c, _ in expected]
    assert [e for _, _, e in found] == pytest.approx([e for _, _, e in expected], abs=1e-3)
    assert sum(b["objects"] for b in diagnosed["weight_by_extent"]) == len(expected)
    assert diagnosed["leave_one_scale_out"]["merge"] == "attention"
    assert len(diagnosed["leave_one_scale_out"]["per_scale"]) == 2
    assert (tmp_path / "diagnose" / "decided_by_extent.png").read_bytes().startswith(b"\x89PNG")

    # --start and --count pick the same images for both commands
    evaluated, diagnosed, rows = run_both(
        ["--checkpoint", checkpoint, *folder, "--start", "1", "--count", "1"], tmp_path / "second", capsys
    )
    assert_same_scores(evaluated, diagnosed)
    assert diagnosed["images"] == 1 and diagnosed["start"] == 1 and {r["image_index"] for r in rows} == {"1"}


def test_diagnose_a_folder_dataset_with_an_imported_segformer(tmp_path, capsys):
    pytest.importorskip("transformers")
    from tests.test_networks import save_transformers, tiny_transformers_configs

    save_transformers(tmp_path / "segformer", tiny_transformers_configs(num_labels=3)["segformer"])
    checkpoint = str(tmp_path / "segformer.pt")
    assert main(["import-transformers", str(tmp_path / "segformer"), "--offline", "--out", checkpoint]) == 0
    for index in range(2):
        write_pair(tmp_path / "images" / f"{index}.png", tmp_path / "masks" / f"{index}.png", blocks_mask(1, 2)[0])
    folder = ["--dataset", "folder", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks")]
    common = ["--checkpoint", checkpoint, *folder, "--quiet", "--device", "cpu", "--merge", "average", "max"]
    assert main(["evaluate", *common, "--json", str(tmp_path / "evaluate.json")]) == 0
    assert main(["diagnose", *common, "--out", str(tmp_path / "diagnose")]) == 0
    text = capsys.readouterr().out
    assert "no attention weights" in text  # an imported network has no head: its scales are averaged or maxed
    evaluated = json.loads((tmp_path / "evaluate.json").read_text())
    diagnosed = json.loads((tmp_path / "diagnose" / "aggregates.json").read_text())
    for merge in ("average", "max"):
        assert diagnosed["merges"][merge]["miou"] == pytest.approx(evaluated["merges"][merge]["miou"], abs=1e-12)
    # Every class counts as an object here (the library names them LABEL_0 ..., none "background").
    assert diagnosed["images"] == 2 and diagnosed["objects"] == 2 * 4 and len(diagnosed["classes"]) == 3


def write_ade20k(root, count: int = 2) -> None:
    base = root / "ADEChallengeData2016"
    for index in range(count):
        mask, _ = blocks_mask(12 + index, 150, fill=0)  # 0: "other", ignored; 1..150 the classes
        mask[mask == 255] = 0
        name = f"ADE_val_{index:08d}"
        images, annotations = base / "images" / "validation", base / "annotations" / "validation"
        write_pair(images / f"{name}.jpg", annotations / f"{name}.png", mask, index)


def write_cityscapes(root, count: int = 2) -> None:
    for index in range(count):
        mask, _ = blocks_mask(11, 13, fill=0)  # person and car on road
        city, name = ("aachen", "bonn")[index % 2], f"city_{index:06d}_000019"
        write_pair(
            root / "leftImg8bit" / "val" / city / f"{name}_leftImg8bit.png",
            root / "gtFine" / "val" / city / f"{name}_gtFine_labelTrainIds.png",
            mask,
            index,
        )


@pytest.mark.parametrize(
    "dataset, classes, write, objects_per_image",
    [
        # ADE20K: labels shift down by one, so the blocks are classes 11 and 12, and 149; 0 ("other") is ignored.
        ("ade20k", ADE20K_CLASSES, write_ade20k, 3),
        # Cityscapes: road (train id 0) is a class, not background: it is one more region around the blocks.
        ("cityscapes", CITYSCAPES_CLASSES, write_cityscapes, 4),
    ],
)
def test_diagnose_ade20k_and_cityscapes_trees(
    tiny_checkpoint, tmp_path, capsys, dataset, classes, write, objects_per_image
):
    checkpoint = tiny_checkpoint(classes)
    write(tmp_path / "data")
    args = ["--checkpoint", checkpoint, "--dataset", dataset, "--data-root", str(tmp_path / "data")]
    evaluated, diagnosed, rows = run_both(args, tmp_path, capsys)
    assert_same_scores(evaluated, diagnosed)
    assert diagnosed["images"] == 2 and diagnosed["split"] == "val" and len(diagnosed["classes"]) == len(classes)
    assert len(evaluated["merges"]["max"]["class_iou"]) == len(classes)
    assert diagnosed["objects"] == len(rows) == 2 * objects_per_image
    if dataset == "ade20k":
        assert [r["class"] for r in rows[:3]] == [classes[11], classes[149], classes[11]]


@pytest.mark.parametrize(
    "dataset, expected",
    [("ade20k", "ADEChallengeData2016"), ("cityscapes", "leftImg8bit"), ("voc", "VOC2012")],
)
def test_a_wrong_layout_is_one_line_naming_the_expected_one(make_checkpoint, tmp_path, capsys, dataset, expected):
    (tmp_path / "data" / "somewhere").mkdir(parents=True)
    args = ["--dataset", dataset, "--data-root", str(tmp_path / "data"), "--checkpoint", str(make_checkpoint())]
    for command in ("diagnose", "evaluate"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, *args, "--quiet"])
        assert exit_info.value.code == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(errors) == 1 and errors[0].startswith(f"segscale {command}: error: ") and expected in errors[0]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--dataset", "folder", "--images", "a", "b", "--masks", "m"], "reads one --images DIR"),
        (["--masks", "m"], "--masks is read with --dataset folder only"),
        (["--dataset", "voc", "--data-root", "r", "--images", "a.png"], "leave --dataset out"),
        (["--dataset", "scaleshapes", "--split", "banana"], "unknown ScaleShapes split 'banana'"),
        (["--dataset", "ade20k"], "--dataset ade20k needs --data-root"),
    ],
)
def test_diagnose_refuses_flags_its_dataset_does_not_read(make_checkpoint, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["diagnose", *flags, "--checkpoint", str(make_checkpoint())])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_diagnose_help_tells_the_two_meanings_of_images(capsys):
    with pytest.raises(SystemExit):
        main(["diagnose", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "with --dataset folder: the one folder of images" in text
    assert "without --dataset: image files to diagnose without ground truth" in text
    assert "--data-root DIR" in text and "cityscapes" in text


def test_two_gloo_processes_diagnose_a_folder_as_one_process(make_checkpoint, tmp_path):
    from tests.test_distributed_scoring import _assert_same, _assert_same_csv, _one_process, _torchrun

    for index, (first, second) in enumerate(((1, 2), (2, 1), (1, 1))):
        write_pair(
            tmp_path / "images" / f"{index}.png", tmp_path / "masks" / f"{index}.png", blocks_mask(first, second)[0]
        )
    args = ["diagnose", "--checkpoint", str(make_checkpoint()), "--dataset", "folder", "--quiet"]
    args += ["--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks")]
    _one_process(*args, "--out", str(tmp_path / "one"))
    _torchrun(*args, "--out", str(tmp_path / "two"))
    table = (tmp_path / "two" / "objects.csv").read_text()
    assert [row["image_index"] for row in csv.DictReader(io.StringIO(table))] == ["0"] * 3 + ["1"] * 3 + ["2"] * 3
    _assert_same_csv((tmp_path / "one" / "objects.csv").read_text(), table)
    one, two = (json.loads((tmp_path / name / "aggregates.json").read_text()) for name in ("one", "two"))
    assert one.pop("seconds") >= 0 and two.pop("seconds") >= 0
    _assert_same(one, two)
    assert two["images"] == 3 and two["objects"] == 9
