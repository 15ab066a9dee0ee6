"""torch.hub entry points: each returns a ready :class:`segscale.Predictor`.

    import torch
    predictor = torch.hub.load("path/to/segscale", "scaleshapes_demo", source="local")
    predictor = torch.hub.load("path/to/segscale", "deeplabv3_mobilenet_v3_large", source="local")
    result = predictor.predict(image, scales=(1.0, 0.75, 0.5), merge="average")

``scaleshapes_demo``, ``scaleshapes_paper_head`` and ``scaleshapes_hierarchical`` load the
checkpoints shipped in checkpoints/. The torchvision kinds import torchvision's published ``COCO_WITH_VOC_LABELS_V1``
weights from the torch hub cache (downloaded there first when online; ``download=False``
never tries) or from ``weights=FILE``, with no attention head yet: they merge by average.
"""

from pathlib import Path as _Path

from segscale.config import PAPER_SCALES as _PAPER_SCALES
from segscale.config import TORCHVISION_TRUNKS as _TORCHVISION_TRUNKS
from segscale.predictor import Predictor as _Predictor

dependencies = ["torch", "torchvision", "numpy", "PIL", "matplotlib"]

_CHECKPOINTS = _Path(__file__).resolve().parent / "checkpoints"


def scaleshapes_demo(device=None, **predictor_options) -> _Predictor:
    """The shipped ScaleShapes demo model (shared attention head, any scale set from 0.25 to 2)."""
    return _Predictor.from_checkpoint(_CHECKPOINTS / "scaleshapes_demo.pt", device=device, **predictor_options)


def scaleshapes_paper_head(device=None, **predictor_options) -> _Predictor:
    """The shipped ScaleShapes model with the paper's attention head (scales {1, 0.75, 0.5} only)."""
    return _Predictor.from_checkpoint(_CHECKPOINTS / "scaleshapes_paper_head.pt", device=device, **predictor_options)


def scaleshapes_hierarchical(device=None, **predictor_options) -> _Predictor:
    """The shipped ScaleShapes model with Tao et al.'s hierarchical attention (a chain of gates, trained on
    the pair {1, 0.5}; any scale set from 0.25 to 2, merge "hierarchical")."""
    return _Predictor.from_checkpoint(_CHECKPOINTS / "scaleshapes_hierarchical.pt", device=device, **predictor_options)


def _torchvision_entry(kind: str):
    def entry(
        weights=None, device=None, scales=_PAPER_SCALES, download: bool = True, **predictor_options
    ) -> _Predictor:
        from segscale.torchvision_import import import_torchvision

        model, metadata = import_torchvision(kind, weights, scales=scales, download=download, progress=False)
        return _Predictor(model, metadata, device=device, **predictor_options)

    entry.__name__ = entry.__qualname__ = kind
    entry.__doc__ = (
        f"torchvision's {kind} (COCO_WITH_VOC_LABELS_V1, 21 PASCAL VOC classes) as a segscale share-net, "
        "merging by average.\n\n    weights: a local state dict file instead of the torch hub cache.\n"
        "    download: fetch the weights into the cache when they are missing (needs the internet)."
    )
    return entry


for _kind in _TORCHVISION_TRUNKS:
    globals()[_kind] = _torchvision_entry(_kind)
