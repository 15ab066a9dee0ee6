"""Imported transformers, smp and factory checkpoints in the app: listed, predicting photos and uploads,
factories refused.

A tiny SegFormer with ADE20K's 150 class names (random weights, saved with save_pretrained and
imported offline) sits alone in the app's checkpoint folder.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from segscale import photos
from segscale.checkpoint import CheckpointError, load_checkpoint_bytes
from segscale.cli import main
from segscale.dataset_palettes import ADE20K_CLASSES
from tests.conftest import assert_clean, last_prediction
from tests.conftest import upload_image as upload
from ui.model_loading import CHECKPOINT_DIR_ENV

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def segformer_folder(tmp_path_factory):
    from tests.test_networks import save_transformers, tiny_transformers_configs

    folder = tmp_path_factory.mktemp("networks")
    config = tiny_transformers_configs(num_labels=150)["segformer"]
    config.id2label = dict(enumerate(ADE20K_CLASSES))
    config.label2id = {name: index for index, name in enumerate(ADE20K_CLASSES)}
    source = folder.parent / f"{folder.name}_segformer"
    save_transformers(source, config)
    assert main(["import-transformers", str(source), "--offline", "--out", str(folder / "segformer_ade.pt")]) == 0
    return folder


def test_the_app_lists_a_segformer_checkpoint_and_predicts_gallery_photos_and_uploads(segformer_folder, monkeypatch):
    from tests.test_photo_app import open_with_small_photo

    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(segformer_folder))
    at = open_with_small_photo()
    assert_clean(at)
    assert at.selectbox(key="checkpoint").value == "segformer_ade.pt"
    class_box = at.selectbox(key="score_class")  # Streamlit's selectbox filters its options as one types
    assert len(class_box.options) == 150 and class_box.options[0] == "wall"
    prediction = last_prediction(at)
    assert prediction.merge == "average" and prediction.score_maps.shape[1] == 150
    assert at.selectbox(key="photo").value == photos.PHOTOS[0].name  # the photo gallery, not ScaleShapes
    assert list(at.radio(key="merge").options) == ["average", "max"]

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(buffer, "PNG")
    upload(at, "street.png", buffer.getvalue())
    assert_clean(at)
    assert last_prediction(at).labels.shape == (40, 56)


def test_uploaded_checkpoints_load_unless_a_factory_would_run_code(segformer_folder, tmp_path):
    model, metadata = load_checkpoint_bytes((segformer_folder / "segformer_ade.pt").read_bytes(), "segformer_ade.pt")
    assert metadata.model.trunk.name == "transformers" and len(metadata.classes) == 150
    (tmp_path / "classes.txt").write_text("a\nb\nc\nd\n")
    out = tmp_path / "factory.pt"
    factory = "tests.network_factories:tensor_net"
    assert (
        main(["import-network", "--factory", factory, "--classes", str(tmp_path / "classes.txt"), "--out", str(out)])
        == 0
    )
    with pytest.raises(CheckpointError, match="factory.pt: holds a network built by a factory function") as error:
        load_checkpoint_bytes(out.read_bytes(), "factory.pt")
    assert "runs its code" in str(error.value) and str(tmp_path) not in str(error.value)


def test_the_inspector_and_how_it_works_state_the_segformers_stride_4(segformer_folder, monkeypatch):
    from tests.conftest import HOW, INSPECTOR, open_page, texts

    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(segformer_folder))
    at = open_page(INSPECTOR)
    assert_clean(at)
    prediction = last_prediction(at)
    rows, cols = prediction.grid
    (height, width) = prediction.labels.shape
    assert (rows, cols) == (-(-height // 4), -(-width // 4))  # the fused map is on SegFormer's stride-4 grid
    assert f"the {cols}x{rows}-cell stride-4 grid of the largest scale" in texts(at.caption)
    assert "stride-8" not in at.markdown[0].value and f"{cols}x{rows}-cell stride-4 grid" in at.markdown[0].value
    how = open_page(HOW)
    assert_clean(how)
    share_net = next(block.value for block in how.markdown if "per **4 input pixels**" in block.value)
    assert "imported whole from **transformers**" in share_net and "torchvision" not in share_net
