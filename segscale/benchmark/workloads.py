"""The models a bench run times: a random full-width net, the demo
checkpoint and a torchvision kind, with their fast-path options."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..checkpoint import CheckpointError, CheckpointMetadata, model_from_checkpoint
from ..config import HeadConfig, ModelConfig, TrunkConfig
from ..devices import bf16_pays_off
from ..inference import FastPathOptions
from ..modeling import build_model
from .settings import TORCHVISION_BENCH_KIND, Settings


@dataclass
class Workload:
    """A model to bench, with what the Predictor needs to run it."""

    name: str
    model: torch.nn.Module
    metadata: object
    description: str
    random_weights: bool


def load_workloads(settings: Settings) -> list[Workload]:
    """The models asked for; a demo checkpoint that cannot be read is noted in the report and skipped."""
    workloads = []
    for name in settings.models:
        if name == "vgg16_largefov":
            torch.manual_seed(0)
            config = ModelConfig(
                num_classes=settings.classes, trunk=TrunkConfig(width=settings.width), head=HeadConfig(kind="shared")
            )
            model = build_model(config).eval()
            metadata = CheckpointMetadata(
                model=config,
                classes=tuple(f"class_{i}" for i in range(settings.classes)),
                palette=tuple((i * 37 % 256, i * 91 % 256, i * 53 % 256) for i in range(settings.classes)),
                name="random weights",
            )
            width = "full width" if settings.width == 1 else f"width {settings.width:g}"
            description = f"vgg16_largefov, {width}, {_parameters(model)} parameters, random weights, shared head"
            workloads.append(Workload(name, model, metadata, description, random_weights=True))
        elif name == TORCHVISION_BENCH_KIND:
            workloads.append(torchvision_workload(name))
        else:
            try:
                model, metadata = model_from_checkpoint(settings.checkpoint)
            except CheckpointError as error:
                message = f"demo checkpoint not benched: {error}"
                print(f"bench: {message}", file=sys.stderr)
                settings.notes.append(message)
                continue
            trunk = metadata.model.trunk
            description = (
                f"{settings.checkpoint} ({metadata.name or 'demo'}): {trunk.name} width {trunk.width:g}, "
                f"norm {trunk.norm}, {metadata.model.head.kind} head, {_parameters(model)} parameters"
            )
            workloads.append(Workload(name, model, metadata, description, random_weights=False))
    return workloads


def torchvision_workload(kind: str) -> Workload:
    """torchvision's ``kind`` as an imported share-net (average merge), with random weights.

    The published weights cannot be downloaded where the bench runs, and a network's speed
    does not depend on its weights; the labels of random weights are near-ties, so the bench's
    label agreement means little for this model.
    """
    from ..modeling.torchvision_trunks import build_torchvision_model
    from ..torchvision_import import imported_metadata, imported_model

    torch.manual_seed(0)
    reference = build_torchvision_model(kind, 21)
    model = imported_model(kind, reference.state_dict(), where="random weights").eval()
    source = {"kind": kind, "weights": "random (torch.manual_seed(0))", "url": "", "file": "", "published": False}
    metadata = imported_metadata(kind, source)
    description = (
        f"torchvision {kind} (its backbone and classifier as the share-net), "
        f"{_parameters(model)} parameters, random weights, average merge"
    )
    return Workload(kind, model, metadata, description, random_weights=True)


def _parameters(model: torch.nn.Module) -> str:
    return f"{sum(p.numel() for p in model.parameters()):,}"


def bench_image(size: int) -> np.ndarray:
    """A ScaleShapes validation image of size x size: real edges and textures, not noise."""
    from ..data.scaleshapes import ScaleShapesConfig, generate_sample

    return generate_sample("val", 0, ScaleShapesConfig(min_side=size, max_side=size)).image


def fast_options(settings: Settings, workload: Workload) -> FastPathOptions:
    """The Predictor's options for ``--precision``: random weights get
    bf16 only where it pays (their near-ties fail the label check)."""
    autocast = {"auto": "auto", "bf16": "bf16", "float32": "off"}[settings.precision]
    if settings.precision == "auto" and workload.random_weights:
        autocast = "bf16" if bf16_pays_off(settings.device) else "off"
    return FastPathOptions(**{**asdict(settings.options), "autocast": autocast})
