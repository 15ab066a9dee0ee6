"""Architecture summary, receptive field (checked by an independent
formula and by gradients), training cards, checkpoint files."""

from __future__ import annotations

import argparse
import math
import re
import tempfile
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from torch import nn

from segscale.architecture import architecture_summary, paper_model_summary
from segscale.checkpoint import CheckpointError, load_checkpoint_bytes, model_from_checkpoint
from segscale.checkpoint_cards import (
    CARD_SHORT_FIELDS,
    read_checkpoint_card,
    read_checkpoint_cards,
    short_card,
    training_card,
    training_card_markdown,
)
from segscale.modeling import build_model

from .conftest import tiny_config, tiny_metadata

# DeepLab-LargeFOV as the papers describe it (Chen et al., ICLR 2015, Sec. 3.1 and 4; CVPR 2016, Sec. 3.1),
# typed here independently of the code: (kernel, stride, dilation) of every conv and pool, fc7 last.
LARGEFOV_PLAN = (
    [(3, 1, 1)] * 2
    + [(3, 2, 1)]  # conv1_1-2, pool1 (3x3, stride 2)
    + [(3, 1, 1)] * 2
    + [(3, 2, 1)]  # conv2, pool2
    + [(3, 1, 1)] * 3
    + [(3, 2, 1)]  # conv3, pool3
    + [(3, 1, 1)] * 3
    + [(3, 1, 1)]  # conv4, pool4 (stride 1: output stride stays 8)
    + [(3, 1, 2)] * 3
    + [(3, 1, 1)]  # conv5 (atrous, rate 2), pool5 (stride 1)
    + [(3, 1, 12), (1, 1, 1)]  # fc6 (3x3, rate 12: the large field of view), fc7
)


def receptive_field_closed_form(plan) -> int:
    """1 + sum over layers l of (effective kernel_l - 1) * (product of the strides before l)."""
    total, product = 1, 1
    for kernel, stride, dilation in plan:
        total += dilation * (kernel - 1) * product
        product *= stride
    return total


def test_receptive_field_and_stride_agree_with_the_closed_form():
    expected = receptive_field_closed_form(LARGEFOV_PLAN)
    assert expected == 419  # 3x3 pools; VGG's own 2x2 pools in pool1-3 would give 412
    for model in (build_model(tiny_config()), None):
        summary = architecture_summary(model) if model is not None else paper_model_summary()
        assert summary.receptive_field == expected
        assert summary.output_stride == math.prod(s for _, s, _ in LARGEFOV_PLAN) == 8
        spatial = [(r.kernel, r.stride, r.dilation) for r in summary.layers if r.part == "trunk" and r.is_spatial]
        assert spatial == LARGEFOV_PLAN
        assert summary.center_offset == 0  # symmetric padding everywhere: cell k sits on pixel 8k
        # The attention head's 3x3 conv reads one fc7 cell (8 px) either side.
        assert summary.attention_receptive_field == expected + 2 * 8


def _positive_average_trunk() -> nn.Module:
    """A LargeFOV trunk whose every path carries a positive gradient: weights 1/fan_in, no bias,
    max pooling swapped for average pooling of the same geometry (max routes the gradient to one
    input per window, which would hide most of the field)."""
    trunk = build_model(tiny_config()).trunk.eval()
    with torch.no_grad():
        for name, module in list(trunk.layers.named_children()):
            if isinstance(module, nn.Conv2d):
                module.weight.fill_(1.0 / (module.in_channels * module.kernel_size[0] * module.kernel_size[1]))
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.MaxPool2d):
                setattr(trunk.layers, name, nn.AvgPool2d(module.kernel_size, module.stride, module.padding))
    return trunk.requires_grad_(False)  # only the input's gradient is wanted


def _gradient_supports(trunk: nn.Module, size: int, cells) -> list[tuple[range, range]]:
    """Rows and columns of the input that reach each given output cell (one image of the batch per cell)."""
    images = torch.ones(len(cells), 3, size, size, requires_grad=True)
    features = trunk(images)
    sum(features[b, :, row, col].sum() for b, (row, col) in enumerate(cells)).backward()
    supports = []
    for gradient in images.grad:
        touched = gradient.abs().sum(dim=0) > 0  # (H, W)
        rows = torch.nonzero(touched.any(dim=1)).flatten()
        cols = torch.nonzero(touched.any(dim=0)).flatten()
        supports.append((range(int(rows.min()), int(rows.max()) + 1), range(int(cols.min()), int(cols.max()) + 1)))
    return supports


def test_receptive_field_by_gradient_of_one_output_cell():
    summary = architecture_summary(build_model(tiny_config()))
    rf, half = summary.receptive_field, summary.receptive_field // 2
    size = 440  # more than the field, so the centre cell's is not clipped
    centre = (size // 2) // 8  # cell 27 sits on pixel 216
    (rows, cols), (corner_rows, corner_cols) = _gradient_supports(
        _positive_average_trunk(), size, [(centre, centre), (0, 0)]
    )
    assert len(rows) == len(cols) == rf
    assert (rows.start + rows.stop - 1) / 2 == (cols.start + cols.stop - 1) / 2 == 8 * centre  # centred on pixel 8k
    # At the corner the field is clipped by the image: pixels 0 .. half.
    assert corner_rows == corner_cols == range(0, half + 1)


def test_output_grid_and_parameters(make_checkpoint):
    model, _ = model_from_checkpoint(make_checkpoint(head="paper", norm="batch"))
    summary = architecture_summary(model)
    with torch.no_grad():
        out = model.trunk(torch.zeros(1, 3, 61, 83))
    assert tuple(out.shape[-2:]) == (math.ceil(61 / summary.output_stride), math.ceil(83 / summary.output_stride))
    assert summary.parameters["trunk"] == sum(p.numel() for p in model.trunk.parameters())
    assert summary.parameters["score head"] == sum(p.numel() for p in model.score_head.parameters())
    assert summary.parameters["attention head"] == sum(p.numel() for p in model.attention_head.parameters())
    assert summary.total_parameters == sum(p.numel() for p in model.parameters())
    assert sum(r.parameters for r in summary.layers) == summary.total_parameters
    norms = [r for r in summary.layers if r.kind == "batch norm"]
    assert norms and all(r.parameters == 2 * r.out_channels for r in norms)
    head_conv = next(r for r in summary.layers if r.part == "attention head" and r.kind == "conv")
    assert head_conv.in_channels == summary.feature_channels * 3  # the paper's head concatenates all S scales
    assert [r.name for r in summary.layers if r.part == "trunk" and r.is_spatial][:3] == ["conv1_1", "conv1_2", "pool1"]
    assert summary.receptive_field_at_scale(0.5) == 2 * summary.receptive_field
    assert "receptive field" in summary.to_text() and len(summary.rows(spatial_only=True)) < len(summary.rows())


def test_model_without_attention_head(make_checkpoint):
    model, _ = model_from_checkpoint(make_checkpoint(merge="max"))
    summary = architecture_summary(model)
    assert summary.parameters["attention head"] == 0 and summary.attention_receptive_field is None
    assert summary.head_kind is None and all(r.part != "attention head" for r in summary.layers)
    assert "none (merges by max)" in summary.to_text()


def test_paper_model_parameters_match_torchvision_vgg16():
    import torchvision

    with torch.device("meta"):
        vgg_features = torchvision.models.vgg16().features
    conv_params = sum(p.numel() for p in vgg_features.parameters())
    fc6 = 3 * 3 * 512 * 1024 + 1024
    fc7 = 1024 * 1024 + 1024
    summary = paper_model_summary(num_classes=21)
    assert summary.parameters["trunk"] == conv_params + fc6 + fc7
    assert summary.parameters["score head"] == 1024 * 21 + 21
    assert summary.parameters["attention head"] == (3 * 3 * 3 * 1024 * 512 + 512) + (512 * 3 + 3)


# ------------------------------------------------------------------ training card and checkpoint files


def _recorded_metadata(**training_overrides):
    from segscale.training.config import TrainConfig

    config = tiny_config()
    train = TrainConfig(
        width=1 / 16, head="shared", iterations=500, lr=0.01, extra_supervision=False, scales=(1.0, 0.5)
    )
    training = {
        "config": train.to_dict(),
        "steps": 500,
        "wall_time_s": 1234.0,
        "machine": "test CPU",
        "processes": 1,
        **training_overrides,
    }
    return tiny_metadata(config, training=training, metrics={"val_miou": 0.4321, "val_images": 100}), train


def test_training_card_fields_and_missing_ones():
    metadata, _ = _recorded_metadata()
    card = dict(training_card(metadata))
    assert card["name"] == "tiny test model"
    assert card["trunk"].startswith("vgg16_largefov, width 1/16")
    assert card["trained scales"] == "{1, 0.75, 0.5}" and card["default merge"] == "attention"
    assert card["steps"] == "500" and card["wall time"] == "20.6 min" and card["machine"] == "test CPU"
    assert card["extra supervision"] == "no" and card["metric: val_miou"] == "0.4321"
    assert card["classes"].startswith("3: background")
    bare = dict(training_card(tiny_metadata(tiny_config(merge="average"))))
    assert bare["data"] == bare["steps"] == bare["wall time"] == bare["command"] == "not recorded"
    assert bare["metrics"] == "none recorded" and bare["attention head"].startswith("none")
    markdown = training_card_markdown(metadata)
    assert markdown.startswith("| field | value |") and "| steps | 500 |" in markdown


def test_rebuilt_command_reproduces_the_recorded_config():
    from segscale.commands import train as train_command
    from segscale.training.config import TrainConfig, load_train_config

    metadata, recorded = _recorded_metadata()
    command = dict(training_card(metadata))["command"]
    assert command.startswith("python -m segscale train ")
    argv = command.split("   (")[0].split()[4:]
    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    args = parser.parse_args(argv)
    rebuilt = load_train_config(None, **{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    assert rebuilt == recorded
    assert dict(training_card(_recorded_metadata(command="segscale train --x")[0]))["command"] == "segscale train --x"


def test_checkpoint_cards_and_uploads(make_checkpoint, tmp_path):
    good = make_checkpoint("a_good.pt")
    broken = tmp_path / "b_broken.pt"
    broken.write_bytes(b"not a checkpoint at all")
    cards = read_checkpoint_cards(tmp_path)
    assert [Path(c.path).name for c in cards] == ["a_good.pt", "b_broken.pt"]
    assert (
        cards[0].ok
        and dict(cards[0].summary)["name"] == "tiny test model"
        and cards[0].size_bytes == good.stat().st_size
    )
    assert not cards[1].ok and "b_broken.pt" in cards[1].error
    full = training_card(cards[0].metadata)
    assert cards[0].summary == (("name", "tiny test model"), *short_card(full))  # the app's short cards use it too
    shown = [name for name, _ in short_card(full)]
    assert shown == [name for name in CARD_SHORT_FIELDS if name in dict(full)] + ["metrics"]
    assert read_checkpoint_cards(tmp_path / "nowhere") == []
    assert read_checkpoint_card(good).metadata.classes == ("background", "disc", "bar")

    model, metadata = load_checkpoint_bytes(good.read_bytes(), "mine.pt")
    assert metadata.name == "tiny test model" and sum(p.numel() for p in model.parameters()) > 0
    with pytest.raises(CheckpointError, match="mine.pt") as error:
        load_checkpoint_bytes(b"garbage", "mine.pt")
    assert tempfile.gettempdir() not in str(error.value)  # the upload's name, not where it was spooled
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint_bytes(b"", "mine.pt")


def test_uploaded_pickle_with_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "segscale-checkpoint", "x": Payload()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint_bytes(path.read_bytes(), "evil.pt")


# A torchvision trunk branches (residual blocks, ASPP, LR-ASPP's two inputs): its stride comes from the
# registry, and its receptive field is not computed. Built on the meta device: no weights are allocated.
@pytest.mark.parametrize(
    "kind", ["deeplabv3_resnet50", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large", "fcn_resnet101"]
)
def test_a_branched_torchvision_network_has_its_real_stride_and_no_chain_receptive_field(kind):
    from segscale.architecture import NOT_COMPUTED_BRANCHED
    from segscale.torchvision_import import imported_model_config

    with torch.device("meta"):
        model = build_model(imported_model_config(kind)).eval()
        scores = model.score_head(model.trunk(torch.empty(1, 3, 128, 192)))
    summary = architecture_summary(model)
    assert summary.output_stride == 128 // scores.shape[-2] == 192 // scores.shape[-1]
    if kind == "deeplabv3_resnet50":
        assert summary.output_stride == 8  # a walk over its modules as a chain said 16
    assert summary.receptive_field is None and summary.attention_receptive_field is None
    assert summary.receptive_field_at_scale(0.5) is None
    assert all(row.receptive_field is None and row.jump is None for row in summary.layers)
    assert summary.total_parameters == sum(p.numel() for p in model.parameters())
    totals = dict(summary.totals())
    assert totals["receptive field"].startswith(NOT_COMPUTED_BRANCHED) and "at each scale" not in totals
    text = summary.to_text()
    assert re.search(rf"^output stride +{summary.output_stride} \(", text, re.M)
    assert re.search(rf"^receptive field +{NOT_COMPUTED_BRANCHED}", text, re.M)
    assert summary.to_dict()["receptive_field"] is None


def test_describe_prints_a_torchvision_checkpoint(tmp_path, capsys):
    from segscale.checkpoint import save_checkpoint
    from segscale.cli import main
    from segscale.modeling.torchvision_trunks import build_torchvision_model
    from segscale.torchvision_import import imported_metadata, imported_model

    kind = "lraspp_mobilenet_v3_large"
    torch.manual_seed(0)
    model = imported_model(kind, build_torchvision_model(kind, 21).state_dict())
    source = {"kind": kind, "weights": "random", "url": "", "file": "", "published": False}
    path = save_checkpoint(tmp_path / "lraspp.pt", model, imported_metadata(kind, source))
    assert main(["describe", "--checkpoint", str(path), "--paper"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^receptive field +not computed: branched network", out, re.M)
    assert re.search(
        r"^output stride +8 \(a score-map cell every 8 input pixels\)", out, re.M
    )  # LR-ASPP's "low" features
