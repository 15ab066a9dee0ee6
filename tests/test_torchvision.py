"""torchvision's segmentation models as share-nets: faithful at one scale, imported offline, trained head only.

No weights are downloaded. Each kind is built by torchvision with random weights; where the
import is tested, that state dict is saved under the file name torchvision's loader expects,
in a temporary torch hub cache (``TORCH_HOME``), and every download function is replaced by
one that fails the test.
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segscale.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from segscale.cli import main
from segscale.config import PAPER_SCALES, TORCHVISION_TRUNKS, HeadConfig, TrunkConfig
from segscale.data.pascal import VOC_CLASSES, voc_color_map
from segscale.modeling import MultiScaleNet, PaperAttentionHead, SharedAttentionHead
from segscale.modeling.geometry import scaled_size
from segscale.modeling.torchvision_trunks import KINDS, build_torchvision_model
from segscale.predictor import Predictor
from segscale.torchvision_import import (
    MissingWeightsError,
    cached_kinds,
    cached_weights_path,
    import_torchvision,
    imported_model,
    kind_weights,
)

REPO = Path(__file__).resolve().parent.parent
SMALL_KINDS = ("deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large")
SLOW_KINDS = ("deeplabv3_resnet101", "fcn_resnet101")
ODD_SIZE = (65, 77)


def kind_param(kind):
    return pytest.param(kind, marks=pytest.mark.slow) if kind in SLOW_KINDS else kind


def random_torchvision(kind: str, seed: int = 0, aux_classifier: bool = False):
    torch.manual_seed(seed)
    return build_torchvision_model(kind, 21, aux_classifier=aux_classifier).eval()


def score_stride(kind: str) -> int:
    """Stride of the score map: LR-ASPP's classifier ends on its stride-8 "low" features."""
    return 8 if kind.startswith("lraspp") else KINDS[kind].output_stride


@pytest.fixture
def no_download(monkeypatch):
    """Any attempt to download fails the test."""

    def refuse(*args, **kwargs):
        pytest.fail(f"a download was attempted: {args[:1]}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def cache_random_weights(kind: str, seed: int = 0):
    """Save a random torchvision model as the kind's published file would be (aux classifier included)."""
    model = random_torchvision(kind, seed, aux_classifier=True)
    path = cached_weights_path(kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model


# ------------------------------------------------------------------------- the share-net is torchvision's


@pytest.fixture(scope="module")
def share_nets():
    """kind -> (torchvision's model with random weights, the share-net imported from it); built once per module."""
    built = {}

    def get(kind: str):
        if kind not in built:
            reference = random_torchvision(kind)
            built[kind] = reference, imported_model(kind, reference.state_dict())
        return built[kind]

    return get


@pytest.mark.parametrize("kind", [kind_param(k) for k in TORCHVISION_TRUNKS])
def test_single_scale_equals_torchvision(kind, share_nets):
    reference, model = share_nets(kind)
    images = torch.randn(1, 3, *ODD_SIZE)
    with torch.no_grad():
        expected = reference(images)["out"]  # (1, 21, H, W)
        output = model(images, scales=(1.0,))
        upsampled = F.interpolate(output.fused, size=ODD_SIZE, mode="bilinear", align_corners=False)
        features = model.trunk(images)
    relative = ((upsampled - expected).norm() / expected.norm()).item()
    assert relative < 1e-5, f"{kind}: relative error {relative:.2e} against torchvision's own output"
    assert "aux" not in features and not any(name.startswith("aux") for name, _ in model.named_modules())

    # The registry's channel count and stride are the backbone's real ones.
    last = features[model.trunk.last_feature]
    stride = KINDS[kind].output_stride
    assert last.shape[1] == model.trunk.out_channels
    assert tuple(last.shape[-2:]) == tuple(math.ceil(side / stride) for side in ODD_SIZE)


# 2048 channels at stride 8; 960 at stride 16; LR-ASPP's "high" of its two features.
@pytest.mark.parametrize("kind", ["fcn_resnet50", *SMALL_KINDS])
@pytest.mark.parametrize("head", ["paper", "shared"])
def test_attention_heads_read_the_backbones_last_feature_map(kind, head, share_nets):
    share_net = share_nets(kind)[1]
    channels = share_net.trunk.out_channels
    attention_head = (
        PaperAttentionHead(channels, 8, PAPER_SCALES) if head == "paper" else SharedAttentionHead(channels, 8)
    )
    config = replace(share_net.config, head=HeadConfig(kind=head, hidden_channels=8), merge="attention")
    model = MultiScaleNet(share_net.trunk, share_net.score_head, attention_head, config).eval()
    size = (33, 45)  # small and odd: the largest scale's grid is still more than one cell
    with torch.no_grad():
        output = model(torch.randn(1, 3, *size), scales=PAPER_SCALES)
    grid = tuple(math.ceil(side / score_stride(kind)) for side in size)
    assert output.attention.shape == (1, 3, *grid) and output.fused.shape == (1, 21, *grid)
    torch.testing.assert_close(output.attention.sum(dim=1), torch.ones(1, *grid))


def test_unknown_kinds_are_refused_with_the_valid_names():
    with pytest.raises(ValueError, match="valid: vgg16_largefov, deeplabv3_resnet50"):
        TrunkConfig(name="deeplabv3_resnet18")
    with pytest.raises(ValueError, match="width must be 1"):
        TrunkConfig(name="fcn_resnet50", width=0.5)
    with pytest.raises(SystemExit):
        main(["import-torchvision", "fcn_resnet18", "--out", "x.pt"])


# ------------------------------------------------------------------------- cached weights, no download


@pytest.fixture
def cached_small_kinds(torch_home, no_download):
    return {kind: cache_random_weights(kind, seed=i) for i, kind in enumerate(SMALL_KINDS)}


def test_import_reads_the_cache_without_network_and_round_trips(cached_small_kinds, tmp_path, capsys):
    assert {k for k, path in cached_kinds().items() if path} == set(SMALL_KINDS)
    kind = "deeplabv3_mobilenet_v3_large"
    out = tmp_path / "imported.pt"
    # A random file where the published one belongs is not the published file: it claims no metric.
    assert main(["import-torchvision", kind, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "no attention head" in printed and "weights not verified as torchvision's published file" in printed
    assert "published miou" not in printed and "91.2" not in printed

    payload = torch.load(out, weights_only=True)
    assert payload["format"] == "segscale-checkpoint"
    state, metadata = load_checkpoint(out)
    weights = kind_weights(kind)
    assert metadata.classes[1:] == tuple(weights.meta["categories"])[1:] and len(metadata.classes) == 21
    assert metadata.classes == VOC_CLASSES  # "__background__" named as VOC does, so VOC evaluation accepts it
    assert metadata.palette == voc_color_map(21)
    assert metadata.mean == pytest.approx(weights.transforms().mean) and metadata.std == pytest.approx(
        weights.transforms().std
    )
    assert metadata.model.trunk.name == kind and metadata.model.merge == "average"
    assert metadata.model.scales == PAPER_SCALES
    assert metadata.training["source"]["url"] == weights.url and metadata.training["photo_model"] is True
    assert metadata.training["source"]["published"] is False and metadata.metrics == {}

    # The weights are the cached file's, renamed; the auxiliary classifier is left out.
    source = cached_small_kinds[kind].state_dict()
    assert not any(key.startswith("aux") for key in state)
    torch.testing.assert_close(state["trunk.backbone.0.0.weight"], source["backbone.0.0.weight"])
    torch.testing.assert_close(state["score_head.classifier.4.weight"], source["classifier.4.weight"])

    from segscale.checkpoint_cards import read_checkpoint_card, training_card

    card = dict(training_card(metadata))
    assert card["attention head"].startswith("none yet") and "average" in card["default merge note"]
    assert weights.url in card["source weights"] and "not verified" in card["source weights"]
    assert card["metrics"] == "none: weights not verified as torchvision's published file"
    assert read_checkpoint_card(out).ok and ("metrics", card["metrics"]) in read_checkpoint_card(out).summary


def test_a_cached_file_claims_the_published_metrics_only_when_its_hash_matches(
    cached_small_kinds, tmp_path, monkeypatch, capsys
):
    """The check is the one torchvision's downloader makes: the SHA-256 begins with the digits in the file's name."""
    import hashlib

    import segscale.torchvision_import as tv_import

    kind = "deeplabv3_mobilenet_v3_large"
    weights = kind_weights(kind)
    assert tv_import.published_hash_prefix(kind) == weights.url.rsplit("-", 1)[-1].split(".")[0]
    # Pretend the random file is the published one by making its own hash the expected one.
    digest = hashlib.sha256(cached_weights_path(kind).read_bytes()).hexdigest()
    monkeypatch.setattr(tv_import, "published_hash_prefix", lambda _kind: digest[:8])
    out = tmp_path / "verified.pt"
    assert main(["import-torchvision", kind, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "not verified" not in printed
    _, metadata = load_checkpoint(out)
    assert metadata.training["source"]["published"] is True
    assert (
        metadata.metrics["published miou (COCO-val2017-VOC-labels)"]
        == weights.meta["_metrics"]["COCO-val2017-VOC-labels"]["miou"]
    )
    assert "published miou (COCO-val2017-VOC-labels): 60.3" in printed


@pytest.mark.parametrize("kind", SMALL_KINDS)
def test_predictor_on_an_imported_checkpoint_average_and_max_at_odd_sizes(cached_small_kinds, tmp_path, kind):
    out = tmp_path / f"{kind}.pt"
    assert main(["import-torchvision", kind, "--out", str(out), "--quiet", "--offline"]) == 0
    predictor = Predictor.from_checkpoint(out, device="cpu")
    assert len(predictor.classes) == 21 and predictor.default_merge == "average"
    image = np.random.default_rng(0).integers(0, 256, (*ODD_SIZE, 3), dtype=np.uint8)
    for scales, merge in [(PAPER_SCALES, "average"), (PAPER_SCALES, "max"), ((0.5, 1.25), "average")]:
        result = predictor.predict(image, scales=scales, merge=merge)
        grid = tuple(math.ceil(side / score_stride(kind)) for side in scaled_size(ODD_SIZE, max(scales)))
        assert result.score_maps.shape == (len(scales), 21, *grid)
        assert result.labels.shape == ODD_SIZE
        if merge == "average":
            np.testing.assert_allclose(result.attention, 1 / len(scales), rtol=1e-5)
        else:
            assert result.attention is None

    # The fast path (batch norm folded into torchvision's convolutions, channels_last) computes
    # what the plain model does on the same normalised image.
    model, _ = model_from_checkpoint(out)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (predictor.metadata.mean, predictor.metadata.std))
    images = (torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255 - mean) / std
    with torch.no_grad():
        plain = model(images, scales=PAPER_SCALES, merge="average").fused[0].numpy()
    fast = predictor.predict(image, scales=PAPER_SCALES, merge="average").fused
    np.testing.assert_allclose(fast, plain, rtol=1e-3, atol=1e-3 * np.abs(plain).max())

    # Each scale's own score map has the stride of torchvision's network at that scale.
    with torch.no_grad():
        output = model(torch.randn(1, 3, *ODD_SIZE), scales=PAPER_SCALES)
    for scale, native in zip(PAPER_SCALES, output.native_score_maps):
        expected = tuple(math.ceil(side / score_stride(kind)) for side in scaled_size(ODD_SIZE, scale))
        assert tuple(native.shape[-2:]) == expected, f"scale {scale}"


def test_missing_weights_error_names_file_folder_url_and_command(torch_home, monkeypatch, capsys, tmp_path):
    kind = "lraspp_mobilenet_v3_large"

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("no network here")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(SystemExit) as exit_info:
        main(["import-torchvision", kind, "--out", str(tmp_path / "x.pt"), "--quiet"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    path = cached_weights_path(kind)
    for needed in (path.name, str(path.parent), kind_weights(kind).url, f"python -m segscale fetch-weights {kind}"):
        assert needed in message
    assert "Traceback" not in message and not (tmp_path / "x.pt").exists()


def test_offline_import_never_tries_to_download(torch_home, no_download):
    with pytest.raises(MissingWeightsError, match="fetch-weights fcn_resnet50"):
        import_torchvision("fcn_resnet50", download=False)


def test_a_damaged_cached_file_says_to_delete_and_fetch_again(torch_home, no_download):
    path = cached_weights_path("lraspp_mobilenet_v3_large")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 cut off")
    with pytest.raises(
        CheckpointError, match=f"{path.name}: not readable .*delete it and run `python -m segscale fetch-weights"
    ):
        import_torchvision("lraspp_mobilenet_v3_large")


def test_fetch_weights_uses_torchvisions_loader_and_then_the_cache(torch_home, monkeypatch, capsys):
    kind = "lraspp_mobilenet_v3_large"
    model = random_torchvision(kind)
    downloads = []

    def fake_download(url, destination, hash_prefix=None, progress=True):
        downloads.append((url, hash_prefix))
        torch.save(model.state_dict(), destination)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    assert main(["fetch-weights", kind, "--quiet"]) == 0
    assert downloads == [(kind_weights(kind).url, "d234d4ea")]  # torchvision checks the published hash
    assert "downloaded" in capsys.readouterr().out and cached_weights_path(kind).is_file()
    assert main(["fetch-weights", kind, "--quiet"]) == 0
    assert len(downloads) == 1 and "already in the cache" in capsys.readouterr().out
    assert main(["fetch-weights", "--list"]) == 0
    assert f"{kind}" in capsys.readouterr().out


def test_weights_file_instead_of_the_cache(torch_home, no_download, tmp_path):
    kind = "lraspp_mobilenet_v3_large"
    model = random_torchvision(kind, seed=3)
    file = tmp_path / "my_lraspp.pth"
    torch.save(model.state_dict(), file)
    out = tmp_path / "from_file.pt"
    assert main(["import-torchvision", kind, "--weights", str(file), "--out", str(out), "--quiet"]) == 0
    state, metadata = load_checkpoint(out)
    assert metadata.training["source"]["published"] is False and metadata.metrics == {}
    torch.testing.assert_close(
        state["score_head.classifier.low_classifier.weight"], model.state_dict()["classifier.low_classifier.weight"]
    )

    wrong = tmp_path / "wrong.pth"
    torch.save(random_torchvision("deeplabv3_mobilenet_v3_large").state_dict(), wrong)
    with pytest.raises(CheckpointError, match="do not fit torchvision's lraspp_mobilenet_v3_large"):
        import_torchvision(kind, wrong)
    not_a_state_dict = tmp_path / "list.pth"
    torch.save([1, 2], not_a_state_dict)
    with pytest.raises(CheckpointError, match="not a state dict"):
        import_torchvision(kind, not_a_state_dict)


# ------------------------------------------------------------------------- torch.hub entry points


def test_hub_entry_points_return_ready_predictors(cached_small_kinds):
    demo = torch.hub.load(str(REPO), "scaleshapes_demo", source="local")
    assert isinstance(demo, Predictor) and demo.default_merge == "attention"
    photo = torch.hub.load(str(REPO), "lraspp_mobilenet_v3_large", source="local", download=False, device="cpu")
    assert isinstance(photo, Predictor) and len(photo.classes) == 21
    result = photo.predict(np.zeros((33, 47, 3), dtype=np.uint8), scales=(1.0, 0.5))
    assert result.labels.shape == (33, 47)


# ------------------------------------------------------------------------- a head on a frozen share-net


def test_a_frozen_share_net_step_changes_the_attention_head_and_nothing_else(cached_small_kinds, tmp_path):
    from segscale.training.config import TrainConfig
    from segscale.training.loop import train

    from .test_datasets_real import make_voc

    kind = "lraspp_mobilenet_v3_large"
    imported = tmp_path / "imported.pt"
    assert main(["import-torchvision", kind, "--out", str(imported), "--quiet", "--offline"]) == 0
    make_voc(tmp_path / "voc")
    config = TrainConfig(
        trunk=kind,
        head="shared",
        head_hidden_channels=8,
        merge="attention",
        extra_supervision=False,
        train_head_only=True,
        init_from=str(imported),
        dataset="voc",
        data_root=str(tmp_path / "voc"),
        batch_size=2,
        crop_size=33,
        val_images=1,
        workers=0,
        threads=1,
        iterations=1,
        lr=0.1,
        head_lr_multiplier=1.0,
        out_dir=str(tmp_path / "run"),
    )
    torch.manual_seed(0)
    result = train(config, progress=False, log=lambda message: None)
    assert result.steps == 1

    before, _ = load_checkpoint(imported)
    after, metadata = load_checkpoint(tmp_path / "run" / "model.pt")
    head_keys = {key for key in after if key.startswith("attention_head.")}
    assert head_keys and set(after) - head_keys == set(before)
    for key, value in before.items():  # weights and batch-norm statistics alike
        assert torch.equal(after[key], value), f"{key} changed although the share-net is frozen"

    # The head was trained: its weights differ from a fresh head built with the same seed.
    torch.manual_seed(0)
    from segscale.training.loop import _frozen_share_net_model

    fresh, _ = _frozen_share_net_model(config, VOC_CLASSES)
    changed = [key for key in head_keys if not torch.equal(after[key], fresh.state_dict()[key])]
    assert changed, "one step left the attention head as initialised"
    assert metadata.model.merge == "attention" and metadata.training["source"]["kind"] == kind
    assert metadata.training["share_net_from"] == str(imported)


def test_head_only_training_refuses_what_it_cannot_do(tmp_path):
    from segscale.training.config import TrainConfig

    with pytest.raises(ValueError, match="extra_supervision = false"):
        TrainConfig(train_head_only=True, init_from="x.pt")
    with pytest.raises(ValueError, match="needs --init-from"):
        TrainConfig(train_head_only=True, extra_supervision=False)
    with pytest.raises(ValueError, match="import-torchvision fcn_resnet50"):
        TrainConfig(trunk="fcn_resnet50")


def test_the_shipped_head_config_loads():
    from segscale.training.config import load_train_config

    config = load_train_config(REPO / "configs" / "torchvision_head.toml", data_root="data")
    assert config.train_head_only and not config.extra_supervision and config.trunk in TORCHVISION_TRUNKS
