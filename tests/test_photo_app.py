"""Photo networks in the app: an imported torchvision checkpoint, the photo gallery, and a ScaleShapes model on a photo.

The imported checkpoint is torchvision's LR-ASPP (the smallest kind) with random weights,
imported offline with ``import-torchvision --weights FILE`` into the app's checkpoint folder.
The photos are scikit-image's (a test requirement); that the app works without scikit-image is
checked by hiding it, not by skipping.
"""

from __future__ import annotations

import argparse
import shlex
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from segscale import photos
from segscale.cli import main
from segscale.commands.train_head import add_arguments as add_train_head_arguments
from segscale.data.pascal import VOC_CLASSES
from segscale.modeling.torchvision_trunks import build_torchvision_model
from tests.conftest import CHECKPOINTS, HOW, assert_clean, captions, errors, last_prediction, open_page, png, texts
from tests.conftest import upload_image as upload
from ui.model_loading import CHECKPOINT_DIR_ENV

KIND = "lraspp_mobilenet_v3_large"


@pytest.fixture(scope="module")
def imported_folder(tmp_path_factory) -> Path:
    """A checkpoint folder holding only an imported torchvision checkpoint (random weights, read from a local file)."""
    folder = tmp_path_factory.mktemp("imported")
    torch.manual_seed(0)
    weights = folder.parent / f"{folder.name}_weights.pth"
    torch.save(build_torchvision_model(KIND, 21).state_dict(), weights)
    assert (
        main(["import-torchvision", KIND, "--weights", str(weights), "--out", str(folder / f"{KIND}.pt"), "--quiet"])
        == 0
    )
    return folder


@pytest.fixture
def photo_app(imported_folder, monkeypatch):
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(imported_folder))
    return imported_folder


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test (scikit-image fetches some images with pooch)."""

    def refuse(*args, **kwargs):
        pytest.fail(f"a network connection was attempted: {args[1:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def open_with_small_photo(page: str = "app.py"):
    """The page with the gallery's photo at 1/4 size, so a CPU answers in a second or two."""
    from streamlit.testing.v1 import AppTest

    from tests.conftest import REPO, TIMEOUT

    at = AppTest.from_file(str(REPO / page), default_timeout=TIMEOUT)
    at.session_state["photo_size"] = 0.25
    at.run()
    assert not at.exception, at.exception
    return at


# ----------------------------------------------------------------------------- the imported checkpoint in the app


def test_the_main_view_loads_an_imported_checkpoint_with_21_classes_and_the_photo_gallery(photo_app, no_network):
    at = open_with_small_photo()
    assert_clean(at)
    assert at.selectbox(key="checkpoint").value == f"{KIND}.pt"
    # Classes, palette and the default class follow the checkpoint.
    class_box = at.selectbox(key="score_class")
    assert len(class_box.options) == 21 and tuple(class_box.options) == VOC_CLASSES
    prediction = last_prediction(at)
    assert prediction.merge == "average" and prediction.score_maps.shape[1] == 21
    counts = np.bincount(prediction.labels.ravel(), minlength=21)
    assert class_box.value == int(np.argmax(counts[1:])) + 1  # the most frequent of the 20 VOC object classes
    # No attention head yet: average and max only.
    assert list(at.radio(key="merge").options) == ["average", "max"]
    assert "Classes (21): background, aeroplane" in texts(at.sidebar.caption)
    # The gallery offers photos (with their credits), not ScaleShapes samples.
    photo_box = at.selectbox(key="photo")
    assert photo_box.value == photos.PHOTOS[0].name and len(photo_box.options) == len(photos.PHOTOS)
    assert any("public domain" in c.value for c in at.caption), "the photo's credit is not shown"
    assert prediction.image.shape == photos.load_photo(photos.PHOTOS[0].name, 0.25).shape
    assert "Ground truth (ScaleShapes)" not in captions(at)

    at.radio(key="merge").set_value("max").run()
    assert_clean(at)
    assert last_prediction(at).merge == "max"
    at.selectbox(key="photo").set_value("Chelsea the cat").run()
    assert_clean(at)
    assert last_prediction(at).image.shape[:2] == (75, 113)


def test_a_photo_network_is_not_offered_scaleshapes_samples_and_its_input_says_what_it_is(photo_app, no_network):
    at = open_with_small_photo()
    assert_clean(at)
    # ScaleShapes' random samples carry a truth in classes a VOC network does not have: not offered.
    assert list(at.radio(key="image_source").options) == ["Gallery", "Upload"]
    assert "Ground truth (ScaleShapes)" not in captions(at)
    # The gallery photo shown beside the labels is captioned as the photo it is, not as an upload.
    gallery_photo = f"Input: gallery photo {photos.PHOTOS[0].name}, 1/4 size (photos have no ground truth here)"
    assert gallery_photo in captions(at)
    assert not any("uploads have no ground truth" in c for c in captions(at))
    upload(at, "holiday.png", png(np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)))
    assert_clean(at)
    assert "Input: holiday.png, uploaded (uploads have no ground truth)" in captions(at)


def test_a_random_sample_chosen_with_a_scaleshapes_model_does_not_follow_to_a_photo_network(
    photo_app, shapes_dir, monkeypatch
):
    from ui.model_loading import CHECKPOINT_DIR_ENV as ENV

    at = open_page()
    at.radio(key="image_source").set_value("Random sample").run()
    assert "Ground truth (ScaleShapes)" in captions(at)
    monkeypatch.setenv(ENV, str(photo_app))  # the same session now sees only the photo network
    at.session_state["photo_size"] = 0.25
    at.run()
    assert_clean(at)
    assert at.radio(key="image_source").value == "Gallery" and "Ground truth (ScaleShapes)" not in captions(at)


def test_the_gallery_without_scikit_image_says_how_to_install_it(photo_app, monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)  # `import skimage.data` now raises ImportError
    assert not photos.photos_available()
    at = open_page()
    assert not at.exception and not errors(at)
    assert photos.INSTALL_HINT in texts(at.info)
    # Uploads still work.
    upload(at, "photo.png", png(np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)))
    assert_clean(at)
    assert len(at.selectbox(key="score_class").options) == 21


def test_the_how_it_works_page_on_an_imported_checkpoint(photo_app):
    at = open_page(HOW)
    assert_clean(at)
    page = texts(at.markdown) + texts(at.caption)
    assert KIND in page and "not computed" in page and "8 input pixels" in page
    # torchvision's backbones have no fc7: the head reads their last feature map, and the page says so.
    assert "fc7" not in page and "last backbone features" in page


# ----------------------------------------------------------------------------- a ScaleShapes model on a photo


def test_a_photo_on_a_scaleshapes_model_says_what_the_model_knows(shapes_dir):
    at = open_page()
    assert "knows only ScaleShapes" not in texts(at.info)  # not for its own samples
    upload(at, "holiday.png", png(np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)))
    assert_clean(at)
    notice = texts(at.info)
    assert "knows only ScaleShapes" in notice and "circle, triangle, square, star, cross, ring" in notice
    from segscale.data.scaleshapes import CLASSES

    assert photos.shapes_model_on_photo_note(CLASSES) in notice  # the line `predict` prints too
    assert "python -m segscale fetch-weights" in notice and "python -m segscale import-torchvision" in notice


# ----------------------------------------------------------------------------- the Checkpoints page


def test_the_checkpoints_page_explains_the_import_and_lists_the_cached_weights(shapes_dir, tmp_path, monkeypatch):
    from segscale.torchvision_import import cached_weights_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    at = open_page(CHECKPOINTS)
    assert_clean(at)
    commands = [block.value for block in at.code]
    assert any(c.startswith("python -m segscale fetch-weights ") for c in commands)
    assert any(c.startswith("python -m segscale import-torchvision ") for c in commands)
    (train_head,) = [c for c in commands if c.startswith("python -m segscale train-head ")]
    parser = argparse.ArgumentParser()
    add_train_head_arguments(parser)
    arguments = parser.parse_args(shlex.split(train_head)[4:])  # the page's command is one the CLI takes
    assert arguments.download and str(arguments.checkpoint_file).startswith("checkpoints/")
    assert "No torchvision weights in this machine's cache" in texts(at.info)

    path = cached_weights_path(KIND)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"stands in for the weights")  # the page only looks at which files are there
    at = open_page(CHECKPOINTS)
    assert KIND in texts(at.success) and "deeplabv3_resnet50" not in texts(at.success)


def test_an_imported_checkpoint_is_listed_as_ones_own_and_its_kind_as_imported(photo_app, tmp_path, monkeypatch):
    from segscale.torchvision_import import cached_weights_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    path = cached_weights_path(KIND)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"stands in for the weights")
    at = open_page()  # the main view chooses the imported checkpoint: it is in use
    assert at.selectbox(key="checkpoint").value == f"{KIND}.pt"
    at.switch_page(CHECKPOINTS).run()
    assert_clean(at)
    card_captions = texts(at.caption)
    assert f"{KIND}.pt · " in card_captions
    assert "yours, in the checkpoint folder" in card_captions and "shipped with segscale" not in card_captions
    done = texts(at.success)
    assert f"{KIND} is imported: {KIND}.pt in the checkpoint folder, in use now" in done
    assert "ready for step 2" not in done


# ----------------------------------------------------------------------------- the photos themselves


@pytest.mark.parametrize("photo", photos.PHOTOS, ids=lambda p: p.function)
def test_every_photo_ships_in_the_wheel_loads_offline_and_has_its_licence(photo, no_network):
    import skimage

    shipped = {path.stem for path in (Path(skimage.__file__).parent / "data").iterdir()}
    assert photo.function in shipped, f"{photo.function} is not in scikit-image's wheel: it would be downloaded"
    assert "public domain" in photo.credit or "CC0" in photo.credit
    sizes = []
    for size in photos.SIZES:
        rgb = photos.load_photo(photo.name, size)
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        sizes.append(rgb.shape[:2])
    full = sizes[0]
    assert sizes[1] == tuple(round(side / 2) for side in full) and sizes[2] == tuple(round(side / 4) for side in full)


def test_a_missing_scikit_image_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)
    with pytest.raises(photos.PhotosUnavailable, match="pip install"):
        photos.load_photo("Astronaut")
    with pytest.raises(ValueError, match="valid: Astronaut"):
        photos.load_photo("Lena")


def test_switching_to_the_imported_checkpoint_resets_the_class_shown(
    imported_folder, make_checkpoint, tmp_path, monkeypatch
):
    """Class 6 of ScaleShapes ("ring") is not class 6 of VOC: a new checkpoint starts on its own default class
    (ui.main_view.class_controls resets the box for every new model and image)."""
    make_checkpoint("a_shapes.pt", scaleshapes=True)  # listed first
    (tmp_path / f"{KIND}.pt").symlink_to(imported_folder / f"{KIND}.pt")
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path))
    at = open_with_small_photo()
    assert at.selectbox(key="checkpoint").value == "a_shapes.pt"
    at.selectbox(key="score_class").set_value(6).run()  # "ring"
    at.selectbox(key="checkpoint").set_value(f"{KIND}.pt").run()
    at.radio(key="image_source").set_value("Gallery").run()
    assert_clean(at)
    counts = np.bincount(last_prediction(at).labels.ravel(), minlength=21)
    assert at.selectbox(key="score_class").value == int(np.argmax(counts[1:])) + 1, (
        "the class picked for the other model was kept"
    )
    assert "Attention head: none, merges by average" in texts(at.sidebar.caption)
