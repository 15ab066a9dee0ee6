"""ScaleShapes: determinism, the geometry promised per class, scale spread, class-blind fills,
contrast, the VOC round trip and the dataset API.

Geometry is checked from the metadata *and* against independent computations (angles from
the polygon's vertices, areas from formulas against the pixel counts), so a renderer that
drew something other than what the metadata says would fail here.
"""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from segscale.data.scaleshapes import (
    CLASSES,
    CROSS_BAR_RATIO_RANGE,
    PALETTE,
    RING_INNER_RATIO_RANGE,
    SPLITS,
    STAR_INNER_RATIO_RANGE,
    TRIANGLE_ANGLE_RANGE,
    ScaleShapes,
    ScaleShapesConfig,
    ShapeObject,
    covered_contrast,
    generate_sample,
    polygon_vertices,
    write_voc_layout,
)

DEFAULT = ScaleShapesConfig()
# Small images for the tests that need many samples; the layout rules are the same.
SMALL = ScaleShapesConfig(min_side=96, max_side=160)
QUIET = ScaleShapesConfig(min_side=96, max_side=160, blur_sigma=(0.0, 0.0), noise_std=(0.0, 0.0))


@pytest.fixture(scope="module")
def pool():
    """Full-size samples: about 200 objects, enough for the statistical checks."""
    return [generate_sample("train", i) for i in range(45)]


@pytest.fixture(scope="module")
def small_pool():
    return [generate_sample("val", i, SMALL) for i in range(150)]


def all_objects(samples):
    return [(sample, obj) for sample in samples for obj in sample.objects]


# ----------------------------------------------------------------------------- identity


def test_class_names_order_and_palette():
    assert CLASSES == ("background", "circle", "triangle", "square", "star", "cross", "ring")
    assert SPLITS == ("train", "val", "test")
    assert len(PALETTE) == len(CLASSES)
    assert PALETTE[0] == (0, 0, 0)
    assert len(set(PALETTE)) == len(PALETTE)
    colours = np.asarray(PALETTE, dtype=float)
    distances = np.linalg.norm(colours[:, None] - colours[None, :], axis=-1)
    assert distances[~np.eye(len(PALETTE), dtype=bool)].min() > 80, "palette colours too close to tell apart"


def test_same_pair_gives_identical_bytes():
    first, second = generate_sample("val", 7), generate_sample("val", 7)
    assert first.image.tobytes() == second.image.tobytes()
    assert np.array_equal(first.label, second.label)
    assert np.array_equal(first.instances, second.instances)
    assert first.objects == second.objects
    assert first.metadata() == second.metadata()
    assert generate_sample("val", 8).image.tobytes() != first.image.tobytes()


def test_same_pair_is_identical_in_another_process():
    code = (
        "import hashlib; from segscale.data.scaleshapes import generate_sample, ScaleShapesConfig as C;"
        "s = generate_sample('test', 3, C(min_side=64, max_side=96));"
        "print(hashlib.sha256(s.image.tobytes() + s.label.tobytes() + repr(s.objects).encode()).hexdigest())"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    here = generate_sample("test", 3, ScaleShapesConfig(min_side=64, max_side=96))
    digest = hashlib.sha256(here.image.tobytes() + here.label.tobytes() + repr(here.objects).encode())
    assert other == digest.hexdigest()


def test_splits_never_share_an_image():
    tiny = ScaleShapesConfig(min_side=32, max_side=40, min_extent=8, max_objects=3)
    digests = {
        split: {hashlib.sha256(generate_sample(split, i, tiny).image.tobytes()).digest() for i in range(200)}
        for split in SPLITS
    }
    for split in SPLITS:
        assert len(digests[split]) == 200, f"{split} repeats an image"
    assert not digests["train"] & digests["val"]
    assert not digests["train"] & digests["test"]
    assert not digests["val"] & digests["test"]


@pytest.mark.parametrize("split", ["training", "", "VAL"])
def test_unknown_split_is_a_value_error_naming_the_splits(split):
    with pytest.raises(ValueError, match="train, val, test"):
        generate_sample(split, 0)
    with pytest.raises(ValueError, match="train, val, test"):
        ScaleShapes(split, 3)


def test_negative_index_is_a_value_error():
    with pytest.raises(ValueError, match="non-negative"):
        generate_sample("train", -1)


def test_bad_config_is_a_value_error():
    with pytest.raises(ValueError, match="min_side"):
        ScaleShapesConfig(min_side=300, max_side=200)
    with pytest.raises(ValueError, match="min_objects"):
        ScaleShapesConfig(min_objects=0)


# ----------------------------------------------------------------------------- labels


def test_arrays_have_the_documented_types(pool):
    for sample in pool[:10]:
        height, width = sample.label.shape
        assert sample.image.shape == (height, width, 3) and sample.image.dtype == np.uint8
        assert sample.label.dtype == np.uint8 and sample.instances.shape == (height, width)
        assert sample.instances.dtype == np.uint8


def test_label_is_the_class_of_the_instance_at_every_pixel(pool):
    for sample in pool:
        classes = np.array([0] + [obj.class_index for obj in sample.objects], dtype=np.uint8)
        assert sample.label.max() < len(CLASSES)
        assert sample.instances.max() <= len(sample.objects)
        assert np.array_equal(sample.label, classes[sample.instances])
        for obj in sample.objects:
            assert obj.instance_id == sample.objects.index(obj) + 1
            assert obj.class_name == CLASSES[obj.class_index]
            mask = sample.visible_mask(obj.instance_id)
            assert obj.visible_pixels == int(mask.sum()) <= obj.drawn_pixels


def test_visible_mask_rejects_unknown_instances(pool):
    with pytest.raises(ValueError, match="instance_id"):
        pool[0].visible_mask(len(pool[0].objects) + 1)


def test_ring_hole_keeps_what_lies_under_it(small_pool, pool):
    rings_seen = 0
    for sample, obj in all_objects(small_pool + pool):
        if obj.class_name != "ring":
            continue
        height, width = sample.label.shape
        cx, cy = obj.center
        inner = obj.extent / 2 * obj.inner_ratio
        ys, xs = np.mgrid[0:height, 0:width]
        distance = np.hypot(xs - cx, ys - cy)
        hole = distance < inner - 0.5
        band = (distance > inner + 0.5) & (distance < obj.extent / 2 - 0.5)
        if hole.sum() < 4:
            continue
        rings_seen += 1
        assert not (sample.instances[hole] == obj.instance_id).any(), "the hole of a ring is labelled ring"
        # Only objects drawn later may cover the ring band; the hole shows earlier ones too.
        assert (sample.instances[band] >= obj.instance_id).all()
    assert rings_seen >= 10


# ----------------------------------------------------------------------------- geometry


def interior_angles(vertices: np.ndarray) -> np.ndarray:
    before, after = np.roll(vertices, 1, axis=0) - vertices, np.roll(vertices, -1, axis=0) - vertices
    cosine = np.sum(before * after, axis=1) / (np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1))
    return np.degrees(np.arccos(np.clip(cosine, -1, 1)))


def test_every_class_keeps_its_geometric_ranges(small_pool):
    counts = dict.fromkeys(CLASSES[1:], 0)
    for _, obj in all_objects(small_pool):
        counts[obj.class_name] += 1
        if obj.class_name == "triangle":
            measured = interior_angles(polygon_vertices(obj))
            assert np.allclose(measured, obj.angles_deg, atol=1e-6)
            assert abs(sum(obj.angles_deg) - 180) < 1e-6
            assert TRIANGLE_ANGLE_RANGE[0] <= measured.min() and measured.max() <= TRIANGLE_ANGLE_RANGE[1]
        elif obj.class_name == "star":
            low, high = STAR_INNER_RATIO_RANGE
            radii = np.linalg.norm(polygon_vertices(obj) - obj.center, axis=1)
            assert len(radii) == 10 and low <= radii[1::2].max() / radii[0::2].max() <= high
        elif obj.class_name == "cross":
            low, high = CROSS_BAR_RATIO_RANGE
            vertices = polygon_vertices(obj)
            length = np.linalg.norm(vertices[0] - vertices[5])  # the two ends of one bar
            width = np.linalg.norm(vertices[0] - vertices[11])
            assert len(vertices) == 12 and low <= width / length <= high
            assert np.allclose(interior_angles(vertices), 90.0)
        elif obj.class_name == "square":
            vertices = polygon_vertices(obj)
            sides = np.linalg.norm(np.roll(vertices, -1, axis=0) - vertices, axis=1)
            assert np.allclose(sides, sides[0]) and np.allclose(interior_angles(vertices), 90.0)
        elif obj.class_name == "ring":
            assert RING_INNER_RATIO_RANGE[0] <= obj.inner_ratio <= RING_INNER_RATIO_RANGE[1]
        if obj.class_name not in ("circle", "ring"):
            # The extent is the circumscribed diameter: the farthest vertex lies on the circle.
            radii = np.linalg.norm(polygon_vertices(obj) - obj.center, axis=1)
            assert math.isclose(2 * radii.max(), obj.extent, rel_tol=1e-9)
    assert min(counts.values()) >= 40, f"too few objects of some class to check: {counts}"


def shape_area(obj: ShapeObject) -> float:
    """Exact area of the shape (px^2) from its metadata alone: the oracle the rasteriser is checked against."""
    radius = obj.extent / 2.0
    if obj.class_name == "circle":
        return math.pi * radius**2
    if obj.class_name == "ring":
        return math.pi * radius**2 * (1.0 - obj.inner_ratio**2)
    if obj.class_name == "triangle":
        return 2.0 * radius**2 * float(np.prod(np.sin(np.radians(obj.angles_deg))))
    if obj.class_name == "square":
        return 2.0 * radius**2
    if obj.class_name == "star":
        return 10.0 * 0.5 * radius * (radius * obj.inner_ratio) * math.sin(math.radians(36.0))
    if obj.class_name == "cross":
        length = obj.extent / math.sqrt(1.0 + obj.bar_ratio**2)
        bar = length * obj.bar_ratio
        return 2.0 * length * bar - bar * bar
    raise ValueError(f"unknown shape class {obj.class_name!r}; valid: {', '.join(CLASSES[1:])}")


def test_pixels_match_the_shape_the_metadata_describes(small_pool, pool):
    """Unclipped objects of 30 px or more cover their exact area to within 3%."""
    checked = 0
    for sample, obj in all_objects(small_pool + pool):
        height, width = sample.label.shape
        (cx, cy), radius = obj.center, obj.extent / 2
        inside = cx - radius >= 0 and cy - radius >= 0 and cx + radius <= width - 1 and cy + radius <= height - 1
        if inside and obj.extent >= 30:
            checked += 1
            area = shape_area(obj)
            assert abs(obj.drawn_pixels - area) <= 0.03 * area, (obj, area)
    assert checked >= 50


def test_extents_spread_log_uniformly_over_the_allowed_range(pool):
    positions = []
    for sample, obj in all_objects(pool):
        height, width = sample.label.shape
        high = DEFAULT.max_extent(height, width)
        assert DEFAULT.min_extent <= obj.extent <= high
        positions.append(math.log(obj.extent / DEFAULT.min_extent) / math.log(high / DEFAULT.min_extent))
    positions = np.asarray(positions)
    assert len(positions) >= 150
    # Log-uniform: every tenth of the log range holds about a tenth of the objects.
    deciles = np.histogram(positions, bins=10, range=(0, 1))[0]
    assert deciles[0] >= 5 and deciles[-1] >= 5, deciles
    assert 0.35 <= np.mean(positions < 0.5) <= 0.65


def test_centres_sizes_and_counts_stay_in_range(pool, small_pool):
    for config, samples in ((DEFAULT, pool), (SMALL, small_pool)):
        counts = []
        for sample in samples:
            height, width = sample.label.shape
            assert config.min_side <= height <= config.max_side and config.min_side <= width <= config.max_side
            counts.append(len(sample.objects))
            for obj in sample.objects:
                x, y = obj.center
                assert 0 <= x <= width - 1 and 0 <= y <= height - 1
        assert config.min_objects <= min(counts) and max(counts) <= config.max_objects
        assert len(set(counts)) >= 4, "object counts do not vary"


# ----------------------------------------------------------------------------- appearance


def test_fill_colour_does_not_reveal_the_class(small_pool):
    """Nearest-class-mean on each object's mean and spread of colour guesses at chance level."""
    features, classes = [], []
    for sample, obj in all_objects(small_pool):
        if obj.visible_pixels < 30:
            continue
        pixels = sample.image[sample.visible_mask(obj.instance_id)].astype(float)
        features.append(np.concatenate([pixels.mean(axis=0), pixels.std(axis=0)]))
        classes.append(obj.class_index)
    features, classes = np.asarray(features), np.asarray(classes)
    features = (features - features.mean(axis=0)) / features.std(axis=0)
    correct = 0
    for i in range(len(features)):  # leave one out
        keep = np.arange(len(features)) != i
        centroids = np.stack([features[keep & (classes == c)].mean(axis=0) for c in range(1, len(CLASSES))])
        correct += int(np.argmin(np.linalg.norm(centroids - features[i], axis=1)) + 1 == classes[i])
    accuracy = correct / len(features)
    chance = 1 / (len(CLASSES) - 1)
    assert len(features) >= 300
    assert accuracy < chance + 0.12, f"fill colour predicts the class {accuracy:.0%} of the time (chance {chance:.0%})"


def test_contrast_measure_tells_apart_and_alike():
    rng = np.random.default_rng(0)
    under = rng.integers(0, 256, size=(500, 3)).astype(np.uint8)
    assert covered_contrast(under, under) == 0.0
    white, black = np.full((500, 3), 255, np.uint8), np.zeros((500, 3), np.uint8)
    assert covered_contrast(white, black) == pytest.approx(255 * math.sqrt(3))
    half = black.copy()
    half[:100] = 255  # 20% of the pixels change, 80% do not: the 10% quantile sees no contrast
    assert covered_contrast(half, black) == 0.0


def test_every_object_stands_out_from_what_it_covers(pool, small_pool):
    for _, obj in all_objects(pool + small_pool):
        assert obj.contrast >= DEFAULT.min_contrast, obj


def test_camera_effects_are_mild_and_leave_the_drawing_alone():
    for index in range(10):
        quiet, noisy = generate_sample("test", index, QUIET), generate_sample("test", index, SMALL)
        # Camera effects come from their own random stream: layout and labels are unchanged.
        assert np.array_equal(quiet.label, noisy.label) and quiet.objects == noisy.objects
        difference = np.abs(quiet.image.astype(int) - noisy.image.astype(int))
        # Mild: most pixels move by a few grey levels (fine textures and edges move more).
        assert np.median(difference) <= 8, "blur and noise should be mild"


# ----------------------------------------------------------------------------- dataset and VOC layout


def test_dataset_returns_numpy_uint8_pairs():
    dataset = ScaleShapes("val", 3, SMALL)
    assert len(dataset) == 3
    image, label = dataset[2]
    assert isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert isinstance(label, np.ndarray) and label.dtype == np.uint8 and label.shape == image.shape[:2]
    sample = dataset.sample(2)
    assert np.array_equal(sample.label, label) and sample.split == "val" and sample.index == 2
    assert np.array_equal(dataset[-1][1], label)
    with pytest.raises(IndexError):
        dataset[3]


def test_voc_layout_round_trip(tmp_path):
    """The written folder reads back with the VOC reader's own functions: the same labels, instances and objects."""
    import json

    from segscale.data.pascal import read_index_label, read_pair_list, read_rgb

    progress = []
    root = write_voc_layout(tmp_path / "voc", "val", 3, SMALL, start=5, progress=lambda d, t: progress.append((d, t)))
    write_voc_layout(root, "train", 2, SMALL)
    assert progress == [(1, 3), (2, 3), (3, 3)]
    lists = root / "ImageSets" / "Segmentation"
    assert (lists / "train.txt").read_text().split() == ["train_000000", "train_000001"]
    pairs = read_pair_list(lists / "val.txt", root, image_dir="JPEGImages", label_dir="SegmentationClass")
    assert [p.name for p in pairs] == ["val_000005", "val_000006", "val_000007"]
    for pair in pairs:
        original = generate_sample("val", int(pair.name.split("_")[1]), SMALL)
        with Image.open(pair.label) as png:
            assert png.mode == "P"
            assert tuple(png.getpalette()[3 : 3 * len(PALETTE)]) == tuple(c for rgb in PALETTE[1:] for c in rgb)
        assert np.array_equal(read_index_label(pair.label, num_classes=len(CLASSES)), original.label)
        with Image.open(root / "SegmentationObject" / f"{pair.name}.png") as png:
            assert png.mode == "P" and np.array_equal(np.asarray(png), original.instances)
            assert tuple(png.getpalette()[3:6]) == (128, 0, 0)  # VOC's colour of instance 1
        objects = json.loads((root / "Objects" / f"{pair.name}.json").read_text())
        assert objects == json.loads(json.dumps(original.metadata())) and objects["split"] == "val"
        image = read_rgb(pair.image)
        error = np.abs(image.astype(int) - original.image.astype(int))
        assert error.mean() < 3 and image.shape == original.image.shape
    with pytest.raises(ValueError, match="another config"):
        write_voc_layout(root, "test", 1, DEFAULT)


def test_voc_layout_refuses_an_unwritable_place(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="cannot create"):
        write_voc_layout(blocker / "voc", "val", 1, SMALL)
    with pytest.raises(ValueError, match="train, val, test"):
        write_voc_layout(tmp_path, "dev", 1, SMALL)


def test_shapes_command_writes_a_preview_and_reports_bad_input(tmp_path):
    from segscale.cli import main

    sheet = tmp_path / "sheet.png"
    assert (
        main(
            [
                "shapes",
                "--split",
                "test",
                "--count",
                "2",
                "--preview",
                str(sheet),
                "--max-side",
                "128",
                "--min-side",
                "96",
            ]
        )
        == 0
    )
    with Image.open(sheet) as picture:
        assert picture.width > 2 * 96 and picture.height > 96
    with pytest.raises(SystemExit) as raised:
        main(["shapes", "--split", "nope", "--preview", str(sheet)])
    assert raised.value.code == 2
