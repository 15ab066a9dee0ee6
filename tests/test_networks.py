"""Networks from transformers, segmentation_models_pytorch and factory functions: faithful at {1}, offline,
refused clearly.

Every network is built from a tiny config with random weights and saved the way its library
saves it (``save_pretrained``); nothing is downloaded. "Faithful" means what each library's
own post-processing gives: its logits resized to the image bilinearly with
``align_corners=False``, compared with segscale's fused scores at the scale set {1} upsampled to
the image the way the Predictor does (the fused map stays on the network's own grid).
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segscale.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from segscale.cli import main
from segscale.dataset_palettes import ADE20K_CLASSES, ADE20K_COLOURS, CITYSCAPES_COLOURS, palette_for_classes
from segscale.inference import FastPathOptions, labels_from_fused
from segscale.modeling.library_networks import TRANSFORMERS_KINDS
from segscale.network_import import import_smp, import_transformers
from segscale.predictor import Predictor

transformers = pytest.importorskip("transformers")
smp = pytest.importorskip("segmentation_models_pytorch")

REPO = Path(__file__).resolve().parent.parent
THREE_SCALES = (1.0, 0.75, 0.5)
EXACT = FastPathOptions(channels_last=False, fold_batchnorm=False, autocast="off")


def tiny_transformers_configs(num_labels: int = 5) -> dict:
    """One tiny config per supported kind (a few thousand parameters each)."""
    t = transformers
    vit = dict(hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32, image_size=64)
    stages = ["stage1", "stage2", "stage3", "stage4"]
    return {
        "segformer": t.SegformerConfig(
            num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16], patch_sizes=[7, 3],
            strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2], decoder_hidden_size=16,
            num_labels=num_labels,
        ),
        "upernet-convnext": t.UperNetConfig(
            backbone_config=t.ConvNextConfig(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], out_features=stages),
            hidden_size=16, use_auxiliary_head=False, num_labels=num_labels,
        ),
        "upernet-swin": t.UperNetConfig(
            backbone_config=t.SwinConfig(
                embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=4, out_features=stages
            ),
            hidden_size=16, use_auxiliary_head=False, num_labels=num_labels,
        ),
        "dpt": t.DPTConfig(
            **vit, patch_size=16, backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[8, 8, 16, 16],
            fusion_hidden_size=16, use_auxiliary_head=False, num_labels=num_labels,
        ),
        "beit": t.BeitConfig(
            **vit, patch_size=16, out_indices=[0, 1, 2, 3], use_auxiliary_head=False, pool_scales=[1, 2],
            num_labels=num_labels,
        ),
        "data2vec-vision": t.Data2VecVisionConfig(
            **vit, patch_size=16, out_indices=[0, 1, 2, 3], use_auxiliary_head=False, pool_scales=[1, 2],
            num_labels=num_labels,
        ),
        "mobilevit": t.MobileViTConfig(
            image_size=64, hidden_sizes=[16, 24, 32], neck_hidden_sizes=[8, 8, 16, 16, 24, 32, 64],
            num_attention_heads=2, aspp_out_channels=16, num_labels=num_labels,
        ),
        "mobilevitv2": t.MobileViTV2Config(
            image_size=64, width_multiplier=0.25, aspp_out_channels=16, num_labels=num_labels
        ),
    }  # fmt: skip


def save_transformers(folder: Path, config, *, seed: int = 0, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)):
    """A random network saved as its users save theirs: save_pretrained plus the image processor's settings."""
    torch.manual_seed(seed)
    network = transformers.AutoModelForSemanticSegmentation.from_config(config).eval()
    network.save_pretrained(folder)
    settings = {"do_normalize": True, "do_rescale": True, "rescale_factor": 1 / 255, "image_mean": mean,
                "image_std": std, "image_processor_type": "SegformerImageProcessor"}  # fmt: skip
    (folder / "preprocessor_config.json").write_text(json.dumps(settings))
    return network


def library_output(network, images: torch.Tensor, **kwargs) -> torch.Tensor:
    """The library's own scores at the image size: logits resized as its post-processing does."""
    with torch.no_grad():
        output = network(pixel_values=images) if kwargs.get("hf", True) else network(images)
    logits = output.logits if hasattr(output, "logits") else output
    return F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)


def upsampled_to_image(fused: torch.Tensor, size) -> torch.Tensor:
    """The fused map g resized to the image as the Predictor does for a library network (align_corners=False)."""
    return F.interpolate(fused, size=tuple(size), mode="bilinear", align_corners=False)


def assert_faithful(fused: torch.Tensor, expected: torch.Tensor) -> None:
    """segscale's fused scores at {1}, upsampled to the image, are the library's within 1e-5, and so are its labels."""
    size = expected.shape[-2:]
    assert (upsampled_to_image(fused, size) - expected).abs().max().item() < 1e-5
    assert torch.equal(labels_from_fused(fused, tuple(size), align_corners=False), expected.argmax(1))


def grid_of(size, stride: int) -> tuple[int, ...]:
    """The network's output grid for an input it takes unpadded: ceil(side / stride) cells a side."""
    return tuple(-(-side // stride) for side in size)


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """Any attempt to reach the Hugging Face Hub fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.mark.parametrize("name", list(tiny_transformers_configs()))
def test_transformers_kinds_are_faithful_at_one_scale_and_run_three(name, tmp_path):
    config = tiny_transformers_configs()[name]
    network = save_transformers(tmp_path / name, config)
    model, metadata = import_transformers(str(tmp_path / name), download=False)
    assert config.model_type in TRANSFORMERS_KINDS
    torch.manual_seed(1)
    images = torch.randn(2, 3, 64, 64)
    expected = library_output(network, images)
    with torch.no_grad():
        output = model(images, scales=(1.0,))
        logits = network(pixel_values=images).logits
    # 64 px needs no padding for any tiny kind: the score map is the network's logits on their own grid.
    assert output.fused.shape == logits.shape and torch.equal(output.fused, logits)
    assert model.trunk.output_stride == 64 // logits.shape[-1]
    assert json.loads(model.config.trunk.network)["output_stride"] == model.trunk.output_stride
    assert metadata.training["output_stride"] == model.trunk.output_stride
    assert_faithful(output.fused, expected)
    # Normalisation from the processor's settings; class names from id2label.
    assert metadata.mean == pytest.approx((0.5,) * 3) and metadata.std == pytest.approx((0.25,) * 3)
    assert metadata.classes == tuple(config.id2label[i] for i in range(5))
    with torch.no_grad():
        multi = model(images, scales=THREE_SCALES)
    grid = tuple(logits.shape[-2:])  # the largest scale's grid
    assert multi.score_maps.shape == (2, 3, 5, *grid) and torch.isfinite(multi.fused).all()
    assert torch.allclose(multi.attention.sum(1), torch.ones(2, *grid))


def test_segformer_round_trips_through_a_checkpoint_and_the_predictor(tmp_path, capsys):
    network = save_transformers(tmp_path / "segformer", tiny_transformers_configs()["segformer"])
    out = tmp_path / "segformer.pt"
    assert main(["import-transformers", str(tmp_path / "segformer"), "--offline", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    state, metadata = load_checkpoint(out)
    assert metadata.model.trunk.name == "transformers" and any(k.startswith("trunk.network.") for k in state)
    assert json.loads(metadata.model.trunk.network)["config"]["model_type"] == "segformer"
    predictor = Predictor.from_checkpoint(out, device="cpu", options=EXACT)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)  # odd sides: SegFormer takes any size
    prediction = predictor.predict(image, scales=(1.0,), merge="average")
    pixels = (torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255 - 0.5) / 0.25
    expected = library_output(network, pixels)[0]
    assert prediction.fused.shape == (5, 10, 14) and not prediction.align_corners  # stride 4 (its patch embedding)
    upsampled = upsampled_to_image(torch.from_numpy(prediction.fused)[None], (37, 53))[0]
    assert (upsampled - expected).abs().max().item() < 1e-5
    assert np.array_equal(prediction.labels, expected.argmax(0).numpy())
    three = predictor.predict(image, scales=THREE_SCALES, merge="average")
    assert three.score_maps.shape == (3, 5, 10, 14) and three.labels.shape == (37, 53)
    from segscale.sliding_window import predict_tiled

    with pytest.raises(ValueError, match="predict without --tile"):
        predict_tiled(predictor, image, THREE_SCALES, "average", 32, 0)


def test_segformer_score_maps_stay_on_its_stride_4_grid_at_three_scales(tmp_path):
    config = tiny_transformers_configs(num_labels=150)["segformer"]
    save_transformers(tmp_path / "segformer", config)
    model, metadata = import_transformers(str(tmp_path / "segformer"), download=False)
    assert model.trunk.output_stride == 4 and metadata.training["output_stride"] == 4
    from segscale.architecture import architecture_summary  # what describe and the app's pages report

    summary = architecture_summary(model)
    assert summary.output_stride == 4
    assert re.search(r"^output stride +4 \(a score-map cell every 4 input pixels\)", summary.to_text(), re.M)
    image_size = (96, 128)
    with torch.no_grad():
        output = model(torch.randn(1, 3, *image_size), scales=THREE_SCALES)
    # Each scale's own map on its stride-4 grid; all of them resized to the largest scale's, 4x smaller than the image.
    assert [tuple(m.shape[-2:]) for m in output.native_score_maps] == [(24, 32), (18, 24), (12, 16)]
    assert output.score_maps.shape == (1, 3, 150, 24, 32)
    predictor = Predictor(model, metadata, device="cpu", options=EXACT)
    image = np.random.default_rng(0).integers(0, 256, (*image_size, 3), dtype=np.uint8)
    prediction = predictor.predict(image, scales=THREE_SCALES, merge="average")
    assert prediction.labels.shape == image_size and prediction.grid == (24, 32)
    # Every array that grows with classes or scales is grid-sized: 16 times fewer cells than the image has pixels.
    assert prediction.score_maps.shape == (3, 150, 24, 32) and prediction.fused.shape == (150, 24, 32)
    assert prediction.attention.shape == (3, 24, 32)


@pytest.mark.parametrize(
    "name, size",
    [("beit", (37, 53)), ("dpt", (48, 64)), ("data2vec-vision", (48, 48)), ("mobilevit", (48, 64))],
)
def test_padded_inputs_are_cropped_exactly_as_the_library_resizes_padded_logits(name, size, tmp_path):
    # A patch multiple, a square, a fixed size, a multiple of 64: the input is padded, and the library's answer
    # for the image is its padded logits resized to the padded size and cropped; segscale's must be that.
    network = save_transformers(tmp_path / name, tiny_transformers_configs()[name])
    model, _ = import_transformers(str(tmp_path / name), download=False)
    torch.manual_seed(1)
    images = torch.randn(1, 3, *size)
    padded = model.trunk._pad(images)
    assert padded is not images
    expected = library_output(network, padded)[..., : size[0], : size[1]]
    with torch.no_grad():
        fused = model(images, scales=(1.0,)).fused
    assert fused.shape[-2:] == size  # no grid of cropped cells is exact here (library_networks' docstring)
    assert_faithful(fused, expected)


def test_a_record_without_a_stride_gets_it_measured_on_load(tmp_path):
    from segscale.modeling import build_model

    save_transformers(tmp_path / "segformer", tiny_transformers_configs()["segformer"])
    model, _ = import_transformers(str(tmp_path / "segformer"), download=False)
    record = json.loads(model.config.trunk.network)
    del record["output_stride"]  # as checkpoints imported before the stride was recorded
    trunk = dataclasses.replace(model.config.trunk, network=json.dumps(record))
    assert build_model(dataclasses.replace(model.config, trunk=trunk)).trunk.output_stride == 4


def test_150_classes_get_ade20k_colours_and_predict_at_three_scales(tmp_path):
    config = tiny_transformers_configs(num_labels=150)["segformer"]
    config.id2label = dict(enumerate(ADE20K_CLASSES))
    config.label2id = {name: index for index, name in enumerate(ADE20K_CLASSES)}
    save_transformers(tmp_path / "ade", config)
    model, metadata = import_transformers(str(tmp_path / "ade"), download=False)
    assert len(metadata.classes) == 150 and metadata.palette[:6] == ADE20K_COLOURS[:6]
    assert len(set(metadata.palette)) == 150  # the published table repeats one grey; the repeat gets its own
    predictor = Predictor(model, metadata, device="cpu", options=EXACT)
    prediction = predictor.predict(np.zeros((64, 64, 3), np.uint8), scales=THREE_SCALES, merge="average")
    assert prediction.fused.shape == (150, 16, 16) and prediction.labels.max() < 150
    # The legend lists the classes in the image first and stops at 24 rows, not 150 swatches.
    from segscale.visualize import class_shares, legend_shares

    labels = np.zeros((4, 4), np.int64)
    labels[0, :2] = 149
    rows = legend_shares(class_shares(labels, metadata.classes, metadata.palette))
    assert [row.index for row in rows[:2]] == [0, 149] and len(rows) == 24 and rows[2].share == 0


def test_palettes_match_dataset_names_and_generate_the_rest():
    cityscapes = palette_for_classes(["road", "sidewalk", "sky", "my robot"])
    assert cityscapes[:2] == CITYSCAPES_COLOURS[:2] and cityscapes[2] == (70, 130, 180)
    assert cityscapes[3] not in cityscapes[:3]
    generated = palette_for_classes([f"part {i}" for i in range(300)])
    assert len(set(generated)) == 300


def test_mask2former_and_other_kinds_are_refused_in_one_line(tmp_path, capsys):
    transformers.Mask2FormerConfig().save_pretrained(tmp_path / "m2f")
    with pytest.raises(SystemExit) as exit_info:
        main(["import-transformers", str(tmp_path / "m2f"), "--offline", "--out", str(tmp_path / "m2f.pt")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "'mask2former' is not supported" in error
    assert "SegFormer (segformer)" in error and "UperNet" in error
    assert not (tmp_path / "m2f.pt").exists()


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: p.mkdir(), "not a transformers model folder (no config.json)"),
        (lambda p: None, "no such folder"),
        (lambda p: (p.mkdir(), (p / "config.json").write_text("{not json")), "config.json"),
    ],
)
def test_bad_sources_give_one_line_and_exit_2(tmp_path, capsys, make, expected):
    source = tmp_path / "model"
    make(source)
    with pytest.raises(SystemExit) as exit_info:
        main(["import-transformers", str(source), "--offline", "--out", str(tmp_path / "x.pt")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and expected in error, error
    assert list(tmp_path.glob("*.pt")) == [] and list(tmp_path.glob(".x.pt*")) == []


def test_a_model_id_missing_offline_names_the_id_the_cache_and_the_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(SystemExit):
        main(["import-transformers", "someone/segformer-x", "--offline", "--out", str(tmp_path / "x.pt")])
    error = capsys.readouterr().err
    assert (
        "someone/segformer-x" in error and str(tmp_path / "hub") in error and "hf download someone/segformer-x" in error
    )


def test_a_backbone_without_a_decode_head_is_refused(tmp_path, capsys):
    config = tiny_transformers_configs()["segformer"]
    torch.manual_seed(0)
    transformers.SegformerModel(config).save_pretrained(tmp_path / "encoder")  # no decode head weights
    with pytest.raises(ValueError, match="not a semantic segmentation checkpoint"):
        import_transformers(str(tmp_path / "encoder"), download=False)


# ------------------------------------------------------------------------------------------------ smp


def tiny_unet(classes: int = 3):
    torch.manual_seed(0)
    return smp.Unet("resnet18", encoder_weights=None, classes=classes, encoder_depth=3, decoder_channels=(16, 8, 4))


def test_smp_folder_import_is_faithful_and_runs_three_scales(tmp_path):
    network = tiny_unet().eval()
    network.save_pretrained(tmp_path / "unet")
    (tmp_path / "classes.txt").write_text("sky\nroad\nmy robot\n")
    out = tmp_path / "unet.pt"
    assert (
        main(["import-smp", str(tmp_path / "unet"), "--classes", str(tmp_path / "classes.txt"), "--out", str(out)]) == 0
    )
    model, metadata = model_from_checkpoint(out)
    images = torch.randn(1, 3, 37, 53)  # smp pads odd sizes itself
    expected = library_output(network, images, hf=False)
    with torch.no_grad():
        fused = model(images, scales=(1.0,)).fused
        three = model(images, scales=THREE_SCALES)
    assert_faithful(fused, expected)
    # smp's segmentation heads upsample to the input themselves: its grid is the image, stride 1.
    assert model.trunk.output_stride == 1 and three.score_maps.shape == (1, 3, 3, 37, 53)
    assert metadata.classes == ("sky", "road", "my robot") and metadata.palette[:2] == CITYSCAPES_COLOURS[10:11] + (
        CITYSCAPES_COLOURS[0],
    )
    assert metadata.mean == pytest.approx((0.485, 0.456, 0.406))  # resnet18's ImageNet preprocessing


def test_smp_state_dict_import_and_its_errors(tmp_path):
    torch.manual_seed(0)
    network = smp.FPN("resnet18", encoder_weights=None, classes=2).eval()
    torch.save(network.state_dict(), tmp_path / "fpn.pth")
    model, metadata = import_smp(arch="FPN", encoder="resnet18", num_classes=2, weights=tmp_path / "fpn.pth")
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert_faithful(model(images, scales=(1.0,)).fused, library_output(network, images, hf=False))
    with pytest.raises(ValueError, match="does not fit smp FPN with encoder resnet18 and 3 classes"):
        import_smp(arch="FPN", encoder="resnet18", num_classes=3, weights=tmp_path / "fpn.pth")
    with pytest.raises(ValueError, match="missing: --encoder, --weights"):
        import_smp(arch="FPN", num_classes=2)
    with pytest.raises(ValueError, match="not an smp model folder"):
        import_smp(str(tmp_path))
    with pytest.raises(ValueError, match="has 2 classes but --classes names 3"):
        import_smp(arch="FPN", encoder="resnet18", num_classes=2, weights=tmp_path / "fpn.pth", classes=("a", "b", "c"))


# -------------------------------------------------------------------------------------------- factory


@pytest.mark.parametrize("function", ["tensor_net", "dict_net", "object_net"])
def test_factory_networks_of_every_output_form_are_faithful(tmp_path, function):
    from . import network_factories

    (tmp_path / "classes.txt").write_text("a\nb\nc\nd\n")
    out = tmp_path / "factory.pt"
    factory = f"tests.network_factories:{function}"
    args = ["import-network", "--factory", factory, "--classes", str(tmp_path / "classes.txt"), "--out", str(out)]
    assert main([*args, "--mean", "0.5", "0.5", "0.5", "--std", "0.2", "0.2", "0.2"]) == 0
    model, metadata = model_from_checkpoint(out)
    assert json.loads(metadata.model.trunk.network)["factory"] == factory and metadata.mean == (0.5, 0.5, 0.5)
    reference = network_factories.tensor_net().eval()
    images = torch.randn(1, 3, 40, 30)
    with torch.no_grad():
        fused = model(images, scales=(1.0,)).fused
        three = model(images, scales=THREE_SCALES)
    assert_faithful(fused, library_output(reference, images, hf=False))
    # TinyNet's logits are at stride 2: the fused map stays on that grid until the one upsample to the image.
    assert model.trunk.output_stride == 2 and metadata.training["output_stride"] == 2
    assert three.fused.shape == (1, 4, 20, 15)


@pytest.mark.parametrize(
    "factory, classes, expected",
    [
        ("tests.network_factories", "a\nb\nc\nd\n", "write it as package.module:function"),
        ("tests.no_such_module:build", "a\nb\nc\nd\n", "cannot import tests.no_such_module"),
        ("tests.network_factories:nope", "a\nb\nc\nd\n", "has no function nope"),
        ("tests.network_factories:not_a_module", "a\nb\nc\nd\n", "returned a str, not a torch nn.Module"),
        ("tests.network_factories:tensor_net", "a\nb\n", "gives 4 class scores but 2 class names"),
        ("tests.network_factories:tensor_net", "a\n\nc\nd\n", "line 2 is blank"),
    ],
)
def test_bad_factories_and_class_files_give_one_line_and_exit_2(tmp_path, capsys, factory, classes, expected):
    (tmp_path / "classes.txt").write_text(classes)
    out = tmp_path / "f.pt"
    with pytest.raises(SystemExit) as exit_info:
        main(["import-network", "--factory", factory, "--classes", str(tmp_path / "classes.txt"), "--out", str(out)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and expected in error, error
    assert not out.exists()


def test_importing_segscale_and_a_shipped_checkpoint_leaves_the_libraries_out(tmp_path):
    from segscale.checkpoint import CheckpointMetadata
    from segscale.modeling import build_model

    from .conftest import tiny_config

    config = tiny_config()
    metadata = CheckpointMetadata(model=config, classes=("a", "b", "c"), palette=((0, 0, 0),) * 3)
    save_checkpoint(tmp_path / "plain.pt", build_model(config), metadata)
    code = (
        "import sys, segscale, segscale.cli, segscale.network_import, segscale.modeling.library_networks\n"
        "from segscale.checkpoint import model_from_checkpoint\n"
        f"model_from_checkpoint({str(tmp_path / 'plain.pt')!r})\n"
        "loaded = [m for m in ('transformers', 'segmentation_models_pytorch', 'timm') if m in sys.modules]\n"
        "print(loaded); sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------- heads on imported networks


def imported_checkpoints(tmp_path, num_classes: int) -> dict[str, Path]:
    """A SegFormer, an smp Unet and a factory network with ``num_classes`` classes, imported offline."""
    config = tiny_transformers_configs(num_labels=num_classes)["segformer"]
    save_transformers(tmp_path / "segformer", config)
    tiny_unet(num_classes).save_pretrained(tmp_path / "unet")
    paths = {name: tmp_path / f"{name}.pt" for name in ("transformers", "smp")}
    assert (
        main(["import-transformers", str(tmp_path / "segformer"), "--offline", "--out", str(paths["transformers"])])
        == 0
    )
    assert main(["import-smp", str(tmp_path / "unet"), "--out", str(paths["smp"])]) == 0
    return paths


@pytest.mark.slow
def test_head_only_training_on_every_adapter_changes_only_the_head(tmp_path):
    from segscale.data.scaleshapes import CLASSES
    from segscale.training.config import TrainConfig
    from segscale.training.loop import train

    paths = imported_checkpoints(tmp_path, len(CLASSES))
    (tmp_path / "classes.txt").write_text("\n".join(f"c{i}" for i in range(len(CLASSES))))
    for library, path in paths.items():
        config = TrainConfig(
            trunk=library, head="shared", head_hidden_channels=8, merge="attention", extra_supervision=False,
            train_head_only=True, init_from=str(path), batch_size=2, crop_size=64, train_images=2, val_images=1,
            workers=0, threads=1, iterations=1, val_every=1, lr=0.1, head_lr_multiplier=1.0,
            out_dir=str(tmp_path / f"run_{library}"), cache_dir=str(tmp_path / "cache"),
        )  # fmt: skip
        torch.manual_seed(0)
        assert train(config, progress=False, log=lambda message: None).steps == 1
        before, _ = load_checkpoint(path)
        after, metadata = load_checkpoint(tmp_path / f"run_{library}" / "model.pt")
        head = {key for key in after if key.startswith("attention_head.")}
        assert head and set(after) - head == set(before)
        for key, value in before.items():
            assert torch.equal(after[key], value), f"{library}: {key} changed although the share-net is frozen"
        model, _ = model_from_checkpoint(tmp_path / f"run_{library}" / "model.pt")
        with torch.no_grad():
            output = model(torch.randn(1, 3, 64, 64), scales=THREE_SCALES)
        grid = grid_of((64, 64), model.trunk.output_stride)  # SegFormer's stride 4, smp's 1
        assert output.attention_logits.shape == (1, 3, *grid) and metadata.model.merge == "attention"


def test_head_training_refuses_a_class_count_mismatch_and_training_from_scratch(tmp_path):
    from segscale.training.config import TrainConfig
    from segscale.training.loop import train

    paths = imported_checkpoints(tmp_path, 3)
    config = TrainConfig(
        trunk="transformers", head="shared", merge="attention", extra_supervision=False, train_head_only=True,
        init_from=str(paths["transformers"]), iterations=1, workers=0, out_dir=str(tmp_path / "run"),
        cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    with pytest.raises(ValueError, match="predicts 3 classes, the dataset scaleshapes has 7"):
        train(config, progress=False, log=lambda message: None)
    with pytest.raises(ValueError, match="only with its share-net frozen"):
        TrainConfig(trunk="smp")


def test_the_bench_baseline_upsamples_a_library_network_in_its_own_convention(tmp_path):
    from segscale.benchmark.baseline import NaiveMultiScale

    save_transformers(tmp_path / "segformer", tiny_transformers_configs()["segformer"])
    model, metadata = import_transformers(str(tmp_path / "segformer"), download=False)
    naive = NaiveMultiScale(model, metadata.mean, metadata.std, torch.device("cpu"))
    pixels = np.random.default_rng(2).integers(0, 256, (1, 37, 53, 3), dtype=np.uint8)
    # At {1} the baseline's full-size fusion is the Predictor's grid fusion upsampled once: the same labels,
    # provided both upsample the stride-4 logits with align_corners=False as the library does.
    labels = naive(pixels, (1.0,), "average")[0].numpy()
    prediction = Predictor(model, metadata, device="cpu", options=EXACT).predict(pixels[0], scales=(1.0,))
    assert np.array_equal(labels, prediction.labels)
