"""The PASCAL VOC 2012 and Person-Part loaders on tiny fake folders in each release's layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segscale.data.pascal import (
    PERSON_PART_CLASSES,
    PERSON_PART_PALETTE,
    VOC_CLASSES,
    VOC_PALETTE,
    PersonPartSegmentation,
    VOC2012Segmentation,
)
from segscale.palette import voc_color_map

PNG_PALETTE = [channel for color in voc_color_map() for channel in color]


def write_sample(image_dir: Path, label_dir: Path, name: str, size: tuple[int, int], num_classes: int, seed: int):
    """A JPEG image and a palette PNG label holding every class index below num_classes, 255 on a border."""
    height, width = size
    rng = np.random.default_rng(seed)
    # Smooth ramps survive JPEG almost unchanged, so the read image can be compared with the written one.
    rows, cols = np.mgrid[0:height, 0:width]
    image = np.stack([rows * 200 // height, cols * 200 // width, np.full_like(rows, 40 * seed % 256)], axis=2)
    image = image.astype(np.uint8)
    label = rng.integers(0, num_classes, (height, width), dtype=np.uint8)
    label[0, :] = 255
    label[1, :num_classes] = np.arange(num_classes)
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(image_dir / f"{name}.jpg", quality=95)
    png = Image.fromarray(label)
    png.putpalette(PNG_PALETTE)  # an "L" image with a palette becomes a "P" image with the same indices
    assert png.mode == "P"
    png.save(label_dir / f"{name}.png")
    return image, label


def make_voc(root: Path, *, aug_lines: str | None = None) -> tuple[Path, dict]:
    """root/VOCdevkit/VOC2012 with train (2), val (1) and, given aug_lines' format, train_aug (3)."""
    voc = root / "VOCdevkit" / "VOC2012"
    written = {}
    for i, name in enumerate(["2007_000032", "2007_000039", "2007_000063"]):
        written[name] = write_sample(voc / "JPEGImages", voc / "SegmentationClass", name, (20 + i, 30), 21, i)
    lists = voc / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("2007_000032\n2007_000039\n")
    (lists / "val.txt").write_text("2007_000063\n")
    (lists / "trainval.txt").write_text("2007_000032\n2007_000039\n2007_000063\n")
    if aug_lines is not None:
        names = ["2007_000032", "2008_000002", "2008_000003"]
        for i, name in enumerate(names):
            written[f"aug/{name}"] = write_sample(
                voc / "JPEGImages", voc / "SegmentationClassAug", name, (17, 23), 21, 10 + i
            )
        if aug_lines == "ids":
            text = "".join(f"{name}\n" for name in names)
        else:
            text = "".join(f"/JPEGImages/{name}.jpg /SegmentationClassAug/{name}.png\n" for name in names)
        (lists / "train_aug.txt").write_text(text)
    return voc, written


def make_person_part(root: Path, *, plain_ids: bool = False) -> dict:
    written = {}
    for i, name in enumerate(["2008_000003", "2008_000008", "2008_000026"]):
        written[name] = write_sample(root / "JPEGImages", root / "SegmentationPart", name, (19, 25 + i), 7, 20 + i)
    lists = root / "pascal_person_part_trainval_list"
    lists.mkdir(parents=True)
    if plain_ids:
        (lists / "train.txt").write_text("2008_000003\n2008_000008\n")
    else:
        (lists / "train.txt").write_text(
            "/JPEGImages/2008_000003.jpg /SegmentationPart/2008_000003.png\n"
            "/JPEGImages/2008_000008.jpg /SegmentationPart/2008_000008.png\n"
        )
    (lists / "val.txt").write_text("/JPEGImages/2008_000026.jpg /SegmentationPart/2008_000026.png\n\n")
    return written


def assert_pair_matches(pair, expected):
    image, label = pair
    expected_image, expected_label = expected
    assert image.dtype == np.uint8 and image.shape == expected_image.shape
    assert label.dtype == np.uint8 and label.shape == expected_label.shape
    np.testing.assert_array_equal(label, expected_label)  # indices read back exactly, 255 included
    assert np.abs(image.astype(int) - expected_image.astype(int)).mean() < 4  # JPEG is lossy


def test_voc_classes_and_palette_are_the_devkit_ones():
    assert len(VOC_CLASSES) == 21 and VOC_CLASSES[0] == "background" and VOC_CLASSES[-1] == "tvmonitor"
    assert VOC_PALETTE[:4] == ((0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0))
    assert VOC_PALETTE[15] == (192, 128, 128)  # person
    assert voc_color_map()[255] == (224, 224, 192)  # void
    assert len(PERSON_PART_CLASSES) == len(PERSON_PART_PALETTE) == 7
    assert len(set(PERSON_PART_PALETTE)) == 7


@pytest.mark.parametrize("split, names", [("train", ["2007_000032", "2007_000039"]), ("val", ["2007_000063"])])
def test_voc_reads_pairs(tmp_path, split, names):
    _, written = make_voc(tmp_path)
    dataset = VOC2012Segmentation(tmp_path, split)
    assert len(dataset) == len(names)
    assert [s.name for s in dataset.samples] == names
    assert dataset.classes == VOC_CLASSES and dataset.palette == VOC_PALETTE
    for i, name in enumerate(names):
        assert_pair_matches(dataset[i], written[name])


def test_voc_accepts_the_voc2012_folder_itself(tmp_path):
    voc, _ = make_voc(tmp_path)
    assert len(VOC2012Segmentation(voc, "trainval")) == 3


@pytest.mark.parametrize("line_format", ["ids", "pairs"])
def test_voc_train_aug_in_both_list_formats(tmp_path, line_format):
    _, written = make_voc(tmp_path, aug_lines=line_format)
    dataset = VOC2012Segmentation(tmp_path, "train_aug")
    assert len(dataset) == 3
    for i, sample in enumerate(dataset.samples):
        assert sample.label.parent.name == "SegmentationClassAug"
        assert_pair_matches(dataset[i], written[f"aug/{sample.name}"])


@pytest.mark.parametrize("plain_ids", [False, True])
def test_person_part_reads_pairs(tmp_path, plain_ids):
    written = make_person_part(tmp_path, plain_ids=plain_ids)
    train = PersonPartSegmentation(tmp_path, "train")
    assert [s.name for s in train.samples] == ["2008_000003", "2008_000008"]
    assert train.classes == PERSON_PART_CLASSES and train.palette == PERSON_PART_PALETTE
    assert_pair_matches(train[1], written["2008_000008"])
    val = PersonPartSegmentation(tmp_path, "val")  # a trailing blank line is no sample
    assert len(val) == 1
    assert_pair_matches(val[0], written["2008_000026"])


def test_missing_roots_name_the_path_and_the_source(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="VOCdevkit/VOC2012") as error:
        VOC2012Segmentation(missing, "train")
    assert str(missing) in str(error.value) and "http" in str(error.value)
    with pytest.raises(FileNotFoundError, match="SegmentationPart") as error:
        PersonPartSegmentation(missing, "train")
    assert str(missing) in str(error.value) and "http" in str(error.value)


def test_a_root_without_voc2012_says_where_it_looked(tmp_path):
    (tmp_path / "VOCdevkit").mkdir()
    with pytest.raises(FileNotFoundError, match="looked at") as error:
        VOC2012Segmentation(tmp_path, "val")
    assert str(tmp_path / "VOCdevkit" / "VOC2012") in str(error.value)


def test_missing_lists_name_the_expected_file(tmp_path):
    voc, _ = make_voc(tmp_path)  # no train_aug list
    with pytest.raises(FileNotFoundError, match="SegmentationClassAug") as error:
        VOC2012Segmentation(tmp_path, "train_aug")
    assert str(voc / "ImageSets" / "Segmentation" / "train_aug.txt") in str(error.value)

    person = tmp_path / "person"
    make_person_part(person)
    (person / "pascal_person_part_trainval_list" / "val.txt").unlink()
    with pytest.raises(FileNotFoundError) as error:
        PersonPartSegmentation(person, "val")
    assert str(person / "pascal_person_part_trainval_list" / "val.txt") in str(error.value)


def test_missing_image_or_label_is_reported_at_construction(tmp_path):
    voc, _ = make_voc(tmp_path)
    (voc / "JPEGImages" / "2007_000039.jpg").unlink()
    with pytest.raises(FileNotFoundError) as error:
        VOC2012Segmentation(tmp_path, "train")
    assert str(voc / "JPEGImages" / "2007_000039.jpg") in str(error.value)
    assert str(voc / "ImageSets" / "Segmentation" / "train.txt") in str(error.value)

    person = tmp_path / "person"
    make_person_part(person)
    (person / "SegmentationPart" / "2008_000026.png").unlink()
    with pytest.raises(FileNotFoundError) as error:
        PersonPartSegmentation(person, "val")
    assert str(person / "SegmentationPart" / "2008_000026.png") in str(error.value)


def test_unknown_split_lists_the_valid_ones(tmp_path):
    make_voc(tmp_path)
    with pytest.raises(ValueError, match="train, val, trainval, train_aug"):
        VOC2012Segmentation(tmp_path, "test")
    with pytest.raises(ValueError, match="train, val"):
        PersonPartSegmentation(tmp_path, "trainval")


def test_malformed_list_line_names_file_and_line(tmp_path):
    voc, _ = make_voc(tmp_path)
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000063\na b c\n")
    with pytest.raises(ValueError, match=r"val\.txt, line 2"):
        VOC2012Segmentation(tmp_path, "val")


def test_colour_coded_or_out_of_range_labels_are_refused(tmp_path):
    voc, _ = make_voc(tmp_path)
    label_path = voc / "SegmentationClass" / "2007_000063.png"
    Image.new("RGB", (30, 22), (128, 0, 0)).save(label_path)
    dataset = VOC2012Segmentation(tmp_path, "val")
    with pytest.raises(ValueError, match="RGB") as error:
        dataset[0]
    assert str(label_path) in str(error.value)

    Image.fromarray(np.full((22, 30), 40, dtype=np.uint8)).save(label_path)
    with pytest.raises(ValueError, match=r"\[40\]"):
        dataset[0]
