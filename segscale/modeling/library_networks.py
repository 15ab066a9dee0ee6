"""Networks from other libraries as the share-net: Hugging Face transformers, segmentation_models_pytorch, any module.

The library builds the network and runs its own ``forward``; nothing here reimplements a
layer. :class:`LibraryTrunk` calls the whole network at one scale and returns two named maps:

* ``"logits"``: the network's logits (B, C, h, w) on the network's own grid, not interpolated
  (stride 4 for SegFormer, 1 for smp models, whose heads upsample to the input themselves).
  The Predictor upsamples only the fused map g to the image, bilinearly with
  ``align_corners=False``: at the scale set {1} that is exactly the library's post-processing
  (transformers' ``post_process_semantic_segmentation`` resizes the logits the same way), so
  segscale's labels and fused scores are the library's output, while every score map, weight
  map and view stays grid-sized (3 scales of 150 classes on a 2048 px image: about 0.5 GB at
  stride 4 instead of 7.5 GB at the image's size);
* ``"features"``: what the attention heads read: the input of the network's last classifier
  (the decode head's fused features) where the kind names one, otherwise the logits themselves.

**Padded inputs stay at the input's size.** Where a network needs another size than the
input (a ViT's patch multiple, square-only DPT and Data2Vec-vision, a fixed size), the input
is zero-padded and the library's own answer for the image is "resize the padded logits to
the padded size, crop to the image". That cannot be written as logits on a cropped grid
upsampled once to the image: with ``align_corners=False`` the upsample's sampling step is
grid cells / image pixels, which equals the library's (grid cells / padded pixels) only when
the image side is a whole number of cells, and even then the library's last pixels
interpolate towards the first padded cell, which a crop has dropped. So for padded inputs
the logits are resized to the padded size and cropped as before (score maps at the input's
size, output stride 1 for that input), and fusion stays exact at {1}. ``output_stride`` is
the network's own stride, measured from its output on an input it takes unpadded.

:class:`LogitsScoreHead` only picks ``"logits"``: the network's own classifier is its score head.
Parameter names stay the library's under ``trunk.network.``.

What each kind needs (the module whose input are its features, the sizes it accepts) is
declared once, in :data:`TRANSFORMERS_KINDS` and :data:`SMP_KIND`. The libraries are imported
only when such a network is built: importing segscale, or loading any other checkpoint, never
imports transformers or segmentation_models_pytorch.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig


@dataclass(frozen=True)
class LibraryKind:
    """One kind of imported network.

    label: its name in messages ("SegFormer").
    feature_module: the submodule whose input the attention heads read (the fused decoder
        features); None: they read the score maps.
    size_multiple: input sides must be multiples of this (a ViT's patch size); other sizes are
        zero-padded (in normalised units) up to it, and the outputs cropped back.
    square: the network accepts only square inputs (DPT and Data2Vec-vision in this version of
        transformers); the input is padded to a square as well.
    size_attribute: a config attribute that overrides ``size_multiple`` (``patch_size``).
    fixed_size_attribute: the network runs only at the config's size (``image_size``:
        Data2Vec-vision in this version of transformers); smaller inputs are padded to it,
        larger ones refused.
    """

    label: str
    feature_module: str | None
    size_multiple: int = 1
    square: bool = False
    size_attribute: str | None = None
    fixed_size_attribute: str | None = None


# AutoModelForSemanticSegmentation's kinds that segscale imports, by config ``model_type``.
TRANSFORMERS_KINDS: dict[str, LibraryKind] = {
    "segformer": LibraryKind("SegFormer", "decode_head.classifier"),
    "upernet": LibraryKind("UperNet (ConvNeXt or Swin backbone)", "decode_head.classifier"),
    "dpt": LibraryKind("DPT", "head.head.4", square=True, size_attribute="patch_size"),
    "beit": LibraryKind("BEiT", "decode_head.classifier", size_attribute="patch_size"),
    "data2vec-vision": LibraryKind(
        "Data2Vec-vision", "decode_head.classifier", square=True, fixed_size_attribute="image_size"
    ),
    # Their last stage unfolds 2x2 patches of a stride-32 map: inputs need 64 px or more.
    "mobilevit": LibraryKind("MobileViT", "segmentation_head.classifier", size_multiple=64),
    "mobilevitv2": LibraryKind("MobileViT-V2", "segmentation_head.classifier", size_multiple=64),
}
# smp models end in a segmentation head (conv, upsampling, activation) fed by the decoder.
SMP_KIND = LibraryKind("segmentation_models_pytorch", "segmentation_head")
FACTORY_KIND = LibraryKind("a factory function's module", None)


def supported_transformers_kinds() -> str:
    """ "SegFormer (segformer), ..." for messages."""
    return ", ".join(f"{kind.label} ({name})" for name, kind in TRANSFORMERS_KINDS.items())


def transformers_kind(model_type: str) -> LibraryKind:
    try:
        return TRANSFORMERS_KINDS[model_type]
    except KeyError:
        raise ValueError(
            f"transformers model type {model_type!r} is not supported (segscale needs one semantic segmentation "
            f"map per image; instance, panoptic and universal models such as Mask2Former and OneFormer have none); "
            f"supported: {supported_transformers_kinds()}"
        ) from None


def logits_of(output) -> Tensor:
    """The logits in a network's output: a tensor, a dict with "out" or "logits", or an object with ``.logits``."""
    if isinstance(output, Tensor):
        return output
    if isinstance(output, Mapping):
        for key in ("out", "logits"):
            if isinstance(output.get(key), Tensor):
                return output[key]
    logits = getattr(output, "logits", None)
    if isinstance(logits, Tensor):
        return logits
    raise ValueError(
        f"the network returned a {type(output).__name__}; segscale needs logits (B, C, H, W): a tensor, "
        "a dict with 'out' or 'logits', or an object with .logits"
    )


class LibraryTrunk(nn.Module):
    """A whole library network: images (B, 3, H, W) -> {"logits": (B, C, h, w), "features": (B, F, h', w')}.

    The logits are on the network's own grid when the input needs no padding, at the input's
    size (H, W) when it does (see the module docstring). ``output_stride``: the stride recorded
    at import, or measured here when the record has none (checkpoints imported before it was).
    """

    def __init__(
        self,
        network: nn.Module,
        kind: LibraryKind,
        *,
        call_keyword: str | None,
        size_multiple: int,
        num_classes: int,
        fixed_size: int | None = None,
        output_stride: int | None = None,
    ) -> None:
        super().__init__()
        self.network = network
        self.kind = kind
        self.call_keyword = call_keyword  # transformers models take pixel_values=...
        self.size_multiple = max(1, int(size_multiple))
        self.fixed_size = fixed_size
        self.last_feature = "features"
        self._captured: dict[int, Tensor] = {}  # thread id -> features of the call running in that thread
        if kind.feature_module is not None:
            module = network.get_submodule(kind.feature_module)
            module.register_forward_pre_hook(self._capture)
            self.out_channels = _input_channels(module)
        else:
            self.out_channels = num_classes
        self.output_stride = int(output_stride) if output_stride else self.measure_output_stride()

    def probe_size(self) -> int:
        """The side of a square input the network takes as it is (no padding): 64 px, or the next size it accepts."""
        if self.fixed_size is not None:
            return self.fixed_size
        return -(-64 // self.size_multiple) * self.size_multiple

    @torch.no_grad()
    def measure_output_stride(self) -> int:
        """Input pixels per cell of the network's logits, from one forward pass of a zero image of :meth:`probe_size`.

        Measured rather than read from a config: the libraries document no common attribute
        for it (SegFormer's and BEiT's logits are at stride 4, MobileViT's at 32, while UperNet,
        DPT and smp's heads upsample to the input themselves: stride 1), and the forward pass
        is what the score maps will be.
        """
        side = self.probe_size()
        parameter = next(self.network.parameters(), None)
        probe = torch.zeros(1, 3, side, side, device=None if parameter is None else parameter.device)
        was_training = self.network.training
        self.network.eval()
        try:
            output = self.network(**{self.call_keyword: probe}) if self.call_keyword else self.network(probe)
        finally:
            self.network.train(was_training)
            self._captured.pop(threading.get_ident(), None)
        grid_side = logits_of(output).shape[-1]
        return max(1, round(side / grid_side))

    def _capture(self, module: nn.Module, inputs: tuple) -> None:
        # Keyed by thread: the app runs one model from several sessions' threads at once.
        self._captured[threading.get_ident()] = inputs[0]

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        height, width = images.shape[-2:]
        padded = self._pad(images)
        output = self.network(**{self.call_keyword: padded}) if self.call_keyword else self.network(padded)
        logits = logits_of(output)  # (B, C, h, w) on the network's own grid
        padded_size = tuple(padded.shape[-2:])
        if padded_size != (height, width):  # by shape, not identity: also right under tracing and torch.compile
            # The library's answer for a padded input: logits resized to the padded size, cropped to
            # the image. No cropped grid gives it exactly (module docstring), so this input's score
            # map comes at its own size.
            if tuple(logits.shape[-2:]) != padded_size:
                logits = F.interpolate(logits, size=padded_size, mode="bilinear", align_corners=False)
            logits = logits[..., :height, :width]  # (B, C, H, W)
        if self.kind.feature_module is None:
            return {"logits": logits, "features": logits}
        features = self._captured.pop(threading.get_ident(), None)
        if features is None:
            raise RuntimeError(f"{self.kind.feature_module} did not run; this network's forward skips its classifier")
        rows = -(-features.shape[-2] * height // padded_size[0])  # the part of the grid that covers the image
        cols = -(-features.shape[-1] * width // padded_size[1])
        return {"logits": logits, "features": features[..., :rows, :cols]}

    def _pad(self, images: Tensor) -> Tensor:
        height, width = images.shape[-2:]
        if self.fixed_size is not None:
            if max(height, width) > self.fixed_size:
                raise ValueError(
                    f"this {self.kind.label} network runs only on inputs up to {self.fixed_size} px (its config's "
                    f"image_size); got {height}x{width}: predict with --max-side {self.fixed_size} or smaller scales"
                )
            if (height, width) == (self.fixed_size, self.fixed_size):
                return images  # no padding: the logits stay on the network's grid (see forward)
            return F.pad(images, (0, self.fixed_size - width, 0, self.fixed_size - height))
        multiple = self.size_multiple
        target_h, target_w = -(-height // multiple) * multiple, -(-width // multiple) * multiple
        if self.kind.square:
            target_h = target_w = max(target_h, target_w)
        if (target_h, target_w) == (height, width):
            return images  # no padding: forward keeps the logits on the network's grid
        return F.pad(images, (0, target_w - width, 0, target_h - height))  # zeros: the mean colour


class LogitsScoreHead(nn.Module):
    """The network's own logits as the score map f^s: picks ``"logits"`` from the trunk's maps."""

    def forward(self, maps: Mapping[str, Tensor]) -> Tensor:
        return maps["logits"]


def _input_channels(module: nn.Module) -> int:
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            return layer.in_channels
    raise ValueError(f"found no convolution in {type(module).__name__} to read its input channels from")


def network_record(config: ModelConfig) -> dict:
    """The JSON record in ``config.trunk.network`` as a dict."""
    try:
        record = json.loads(config.trunk.network)
    except json.JSONDecodeError as error:
        raise ValueError(f"the trunk's network record is not valid JSON ({error})") from None
    if not isinstance(record, dict) or record.get("library") != config.trunk.name:
        raise ValueError(f"the trunk's network record does not describe a {config.trunk.name} network")
    return record


# ---------------------------------------------------------------------------------------------- builders


def build_transformers_network(record: dict) -> tuple[nn.Module, LibraryKind, object]:
    """(randomly initialised network, its kind, its config) from a transformers config dict; no download."""
    config_dict = dict(record.get("config") or {})
    kind = transformers_kind(str(config_dict.get("model_type")))
    config = _transformers_config(config_dict)
    from transformers import AutoModelForSemanticSegmentation

    network = AutoModelForSemanticSegmentation.from_config(config)
    return network.eval(), kind, config


def _transformers_config(config_dict: dict):
    try:
        from transformers import CONFIG_MAPPING
    except ImportError:
        raise ImportError(
            "this checkpoint holds a Hugging Face transformers network; install it with "
            "`pip install 'segscale[transformers]'` (or `pip install transformers==5.25.0`)"
        ) from None
    return CONFIG_MAPPING[config_dict["model_type"]].from_dict(config_dict)


def transformers_size_multiple(kind: LibraryKind, config) -> int:
    value = getattr(config, kind.size_attribute, None) if kind.size_attribute else None
    return int(value) if isinstance(value, int) and value > 0 else kind.size_multiple


def build_smp_network(record: dict) -> nn.Module:
    """A randomly initialised smp model from its ``save_pretrained`` config (encoder weights never downloaded)."""
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        raise ImportError(
            "this checkpoint holds a segmentation_models_pytorch network; install it with "
            "`pip install 'segscale[smp]'` (or `pip install segmentation-models-pytorch==0.6.0`)"
        ) from None
    config = dict(record.get("config") or {})
    arch = config.pop("_model_class", None) or config.pop("arch", None)
    config["encoder_weights"] = None
    try:
        return smp.create_model(arch=str(arch), **config).eval()
    except KeyError as error:
        raise ValueError(f"smp architecture {arch!r} is unknown: {error.args[0]}") from None


def build_factory_network(record: dict) -> nn.Module:
    """The module a factory function returns; importing its module runs that module's code."""
    factory = str(record.get("factory", ""))
    function = load_factory(factory)
    network = function()
    if not isinstance(network, nn.Module):
        raise ValueError(f"factory {factory} returned a {type(network).__name__}, not a torch nn.Module")
    return network.eval()


def load_factory(factory: str):
    """The function named by ``package.module:function``, imported (this runs the module's code)."""
    module_name, _, function_name = factory.partition(":")
    if not module_name or not function_name or not all(part.isidentifier() for part in module_name.split(".")):
        raise ValueError(f"factory {factory!r}: write it as package.module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"factory {factory}: cannot import {module_name} ({error}); put its folder on PYTHONPATH or install it"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ValueError(f"factory {factory}: {module_name} has no function {function_name}")
    return function


def build_library_parts(config: ModelConfig) -> tuple[LibraryTrunk, LogitsScoreHead]:
    """(trunk, score head) of the imported network ``config.trunk`` records, randomly initialised."""
    record = network_record(config)
    library = config.trunk.name
    # Recorded at import; a record written before then has none, and the trunk measures it.
    recorded_stride = record.get("output_stride")
    stride = int(recorded_stride) if isinstance(recorded_stride, int) and recorded_stride > 0 else None
    if library == "transformers":
        network, kind, network_config = build_transformers_network(record)
        fixed = getattr(network_config, kind.fixed_size_attribute, None) if kind.fixed_size_attribute else None
        trunk = LibraryTrunk(
            network,
            kind,
            call_keyword="pixel_values",
            size_multiple=transformers_size_multiple(kind, network_config),
            num_classes=config.num_classes,
            fixed_size=int(fixed) if fixed else None,
            output_stride=stride,
        )
    elif library == "smp":
        trunk = LibraryTrunk(
            build_smp_network(record),
            SMP_KIND,
            call_keyword=None,
            size_multiple=1,
            num_classes=config.num_classes,
            output_stride=stride,
        )
    elif library == "factory":
        trunk = LibraryTrunk(
            build_factory_network(record),
            FACTORY_KIND,
            call_keyword=None,
            size_multiple=int(record.get("size_multiple", 1)),
            num_classes=config.num_classes,
            output_stride=stride,
        )
    else:
        raise ValueError(f"unknown library {library!r}")
    return trunk, LogitsScoreHead()
