"""The folder, ADE20K and Cityscapes readers on small generated trees, and evaluate/train reading them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segscale.cli import main
from segscale.data import folders
from segscale.dataset_palettes import ADE20K_CLASSES, CITYSCAPES_CLASSES


def write_pair(image_path, mask_path, mask: np.ndarray, seed: int = 0) -> None:
    image_path.parent.mkdir(parents=True, exist_ok=True)
    mask_path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, mask.shape + (3,), dtype=np.uint8)
    Image.fromarray(rgb).save(image_path)
    Image.fromarray(mask.astype(np.uint8), mode="L").save(mask_path)


def test_folder_pairs_by_stem_keep_255_and_name_a_missing_mask(tmp_path):
    mask = np.array([[0, 1, 255], [2, 1, 0]])
    write_pair(tmp_path / "images" / "b.jpg", tmp_path / "masks" / "b.png", mask)
    write_pair(tmp_path / "images" / "a.png", tmp_path / "masks" / "a.png", mask[:, ::-1])
    dataset = folders.folder_pairs(tmp_path / "images", tmp_path / "masks")
    assert len(dataset) == 2 and dataset.classes is None
    image, label = dataset[0]  # a, by sorted stem
    assert image.shape == (2, 3, 3) and label.dtype == np.uint8 and np.array_equal(label, mask[:, ::-1])
    write_pair(tmp_path / "images" / "c.jpg", tmp_path / "other" / "c.png", mask)
    with pytest.raises(ValueError, match=r"no mask for 1 image\(s\), e.g. c"):
        folders.folder_pairs(tmp_path / "images", tmp_path / "masks")


def test_ade20k_shifts_labels_down_and_ignores_other(tmp_path):
    base = tmp_path / "ADEChallengeData2016"
    mask = np.array([[0, 1, 150], [2, 0, 1]])
    write_pair(
        base / "images" / "validation" / "ADE_val_1.jpg", base / "annotations" / "validation" / "ADE_val_1.png", mask
    )
    dataset = folders.ade20k(tmp_path, "val")
    assert dataset.classes == ADE20K_CLASSES
    assert np.array_equal(dataset[0][1], [[255, 0, 149], [1, 255, 0]])
    with pytest.raises(ValueError, match="no ADE20K here"):
        folders.ade20k(tmp_path, "train")


def test_cityscapes_reads_train_ids_city_by_city(tmp_path):
    mask = np.array([[0, 18, 255], [7, 7, 1]])
    for city, seed in (("aachen", 0), ("bonn", 1)):
        name = f"{city}_000000_000019"
        write_pair(
            tmp_path / "leftImg8bit" / "val" / city / f"{name}_leftImg8bit.png",
            tmp_path / "gtFine" / "val" / city / f"{name}_gtFine_labelTrainIds.png",
            mask,
            seed,
        )
    dataset = folders.cityscapes(tmp_path, "val")
    assert len(dataset) == 2 and dataset.classes == CITYSCAPES_CLASSES and np.array_equal(dataset[1][1], mask)
    (tmp_path / "gtFine" / "val" / "bonn" / "bonn_000000_000019_gtFine_labelTrainIds.png").unlink()
    with pytest.raises(ValueError, match="createTrainIdLabelImgs"):
        folders.cityscapes(tmp_path, "val")


def test_evaluate_reads_a_folder_dataset_and_refuses_missing_flags(tmp_path, capsys):
    pytest.importorskip("transformers")
    from tests.test_networks import save_transformers, tiny_transformers_configs

    save_transformers(tmp_path / "segformer", tiny_transformers_configs(num_labels=3)["segformer"])
    checkpoint = tmp_path / "segformer.pt"
    assert main(["import-transformers", str(tmp_path / "segformer"), "--offline", "--out", str(checkpoint)]) == 0
    for index in range(2):
        mask = np.random.default_rng(index).integers(0, 3, (64, 64))
        write_pair(tmp_path / "images" / f"{index}.png", tmp_path / "masks" / f"{index}.png", mask, index)
    capsys.readouterr()
    args = ["evaluate", "--checkpoint", str(checkpoint), "--dataset", "folder", "--quiet", "--precision", "float32"]
    assert main([*args, "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks")]) == 0
    report = capsys.readouterr().out
    assert "folder" in report and "2 images" in report
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert "needs --images DIR and --masks DIR" in capsys.readouterr().err
