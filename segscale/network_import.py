"""Networks from Hugging Face transformers, segmentation_models_pytorch or any factory function as segscale checkpoints.

    python -m segscale import-transformers ./my_segformer --out checkpoints/my_segformer.pt
    python -m segscale import-transformers nvidia/segformer-b0-finetuned-ade-512-512 --out checkpoints/b0.pt
    python -m segscale import-smp ./my_unet --out checkpoints/my_unet.pt
    python -m segscale import-smp --arch Unet --encoder resnet34 --num-classes 4 --weights unet.pth --out u.pt
    python -m segscale import-network --factory mypackage.models:build --classes classes.txt --out mine.pt

Each checkpoint is an ordinary segscale checkpoint: the library's network whole as the trunk
(:mod:`segscale.modeling.library_networks`), its logits as the score map, no attention head yet
(it merges by average until one is trained), the weights saved in it, and in its metadata the
record that rebuilds the network offline (the transformers or smp config; for a factory, the
``package.module:function`` path), the class names and the input normalisation.

A factory checkpoint imports the factory's module when it is loaded: that runs the module's
code, so the app refuses such files as uploads (a file on disk is the user's own choice).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import IMAGENET_MEAN, IMAGENET_STD, CheckpointError, CheckpointMetadata, read_torch_file
from .config import PAPER_SCALES, HeadConfig, ModelConfig, TrunkConfig
from .modeling import MultiScaleNet, build_model

DEFAULT_MERGE = "average"  # until an attention head is trained
TRANSFORMERS_VERSION = "5.25.0"  # the pins of segscale[transformers] and segscale[smp]
SMP_VERSION = "0.6.0"


def _transformers():
    try:
        import transformers
    except ImportError:
        raise ImportError(
            "import-transformers needs Hugging Face transformers: "
            f"`pip install 'segscale[transformers]'` (transformers=={TRANSFORMERS_VERSION})"
        ) from None
    transformers.utils.logging.set_verbosity_error()  # its load reports and progress bars are not ours to show
    transformers.utils.logging.disable_progress_bar()
    return transformers


def _smp():
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        raise ImportError(
            "import-smp needs segmentation_models_pytorch: "
            f"`pip install 'segscale[smp]'` (segmentation-models-pytorch=={SMP_VERSION})"
        ) from None
    return smp


# --------------------------------------------------------------------------------------- shared steps


def read_classes_file(path: str | os.PathLike) -> tuple[str, ...]:
    """Class names from a text file, one a line (index = line number); blank lines end nothing, they are refused."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--classes {path}: no such file; give a text file with one class name a line")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"--classes {path}: not UTF-8 text; give a text file with one class name a line") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ValueError(f"--classes {path}: the file is empty; write one class name a line")
    blank = [number for number, line in enumerate(lines, 1) if not line.strip()]
    if blank:
        raise ValueError(f"--classes {path}: line {blank[0]} is blank; every class needs a name")
    return tuple(line.strip() for line in lines)


def _normalisation(mean, std, what: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"{what}: mean and std need three values each (R, G, B), got {list(mean)} and {list(std)}")
    if min(std) <= 0:
        raise ValueError(f"{what}: std must be positive, got {list(std)}")
    return mean, std


def library_model(
    library: str, record: dict[str, Any], network: nn.Module, num_classes: int, scales, *, where: str
) -> MultiScaleNet:
    """The share-net for ``network``, rebuilt from ``record`` exactly as a checkpoint load does, holding its weights.

    Building from the record (not wrapping ``network``) proves at import time that the
    checkpoint will load: the record rebuilds this network and its weights fit. The trunk
    measures the network's output stride from one forward pass of a small input; it is added
    to the record, so that loading the checkpoint reads it instead of measuring again.
    """
    config = ModelConfig(
        num_classes=num_classes,
        trunk=TrunkConfig(name=library, width=1.0, norm="batch", dropout=0.0, network=json.dumps(record, default=str)),
        head=HeadConfig(kind="shared"),
        scales=scales,
        merge=DEFAULT_MERGE,
    )
    model = build_model(config)
    try:
        model.trunk.network.load_state_dict(network.state_dict(), strict=True)
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        raise CheckpointError(
            f"{where}: its weights do not fit the network its config describes ({lines[-1]})"
        ) from None
    record = {**record, "output_stride": int(model.trunk.output_stride)}
    trunk = dataclasses.replace(config.trunk, network=json.dumps(record, default=str))
    model.config = dataclasses.replace(config, trunk=trunk)
    return model.eval()


def check_class_count(model: MultiScaleNet, classes, *, where: str, hint: str) -> None:
    """The network's logits must have one channel per class name; checked on a small image."""
    with torch.no_grad():
        output = model(torch.zeros(1, 3, 64, 64), scales=(1.0,))
    channels = output.fused.shape[1]
    if channels != len(classes):
        raise ValueError(f"{where}: the network gives {channels} class scores but {len(classes)} class names; {hint}")


def library_metadata(
    model: MultiScaleNet,
    classes,
    mean,
    std,
    *,
    name: str,
    library: str,
    source: dict[str, Any],
    photo_model: bool = True,
) -> CheckpointMetadata:
    from .dataset_palettes import matching_dataset, palette_for_classes

    classes = tuple(str(c) for c in classes)
    dataset = matching_dataset(classes)
    return CheckpointMetadata(
        model=model.config,
        classes=classes,
        palette=palette_for_classes(classes),
        mean=mean,
        std=std,
        # The scales it was fine-tuned at are not recorded by these libraries; state only the set.
        scale_range=(min(model.config.scales), max(model.config.scales)),
        name=name,
        training={
            "imported_from": library,
            "photo_model": photo_model,
            "dataset": f"{len(classes)} classes" + (f" ({dataset}'s names and colours)" if dataset else ""),
            "source": dict(source),
            "output_stride": int(model.trunk.output_stride),  # measured by the trunk (library_model)
            "default_merge_reason": "average until an attention head is trained (segscale train; docs/NETWORKS.md)",
        },
    )


# ------------------------------------------------------------------------------------- transformers


def hub_cache_dir() -> Path:
    """Where huggingface_hub keeps downloaded models ($HF_HUB_CACHE, read now)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def transformers_fetch_command(model_id: str) -> str:
    return f"hf download {model_id}"


def _looks_like_path(source: str) -> bool:
    """A folder, not a model id ("org/name" or "name"): it exists, or it is written like a path."""
    return Path(source).expanduser().exists() or source.startswith((".", "/", "~")) or source.count("/") > 1


def _transformers_config(source: str, *, download: bool):
    transformers = _transformers()
    path = Path(source).expanduser()
    if _looks_like_path(source):
        if not path.exists():
            raise ValueError(f"{source}: no such folder; give a folder written by save_pretrained, or a model id")
        if not path.is_dir():
            raise ValueError(f"{source}: is a file; give the folder save_pretrained wrote (with config.json in it)")
        if not (path / "config.json").is_file():
            raise ValueError(
                f"{source}: not a transformers model folder (no config.json); give the folder that "
                "model.save_pretrained(FOLDER) wrote"
            )
    try:
        return transformers.AutoConfig.from_pretrained(
            str(path) if path.exists() else source, local_files_only=not download
        )
    except OSError as error:
        if path.exists():
            raise ValueError(f"{source}: its config.json cannot be read ({_first_line(error)})") from None
        if not download:
            raise ValueError(
                f"model {source} is not in the Hugging Face cache {hub_cache_dir()}; on a machine with the internet "
                f"run `{transformers_fetch_command(source)}` (or import its save_pretrained folder)"
            ) from None
        raise ValueError(
            f"model {source}: neither in the Hugging Face cache {hub_cache_dir()} nor downloadable "
            f"({_first_line(error)}); check the id, or run `{transformers_fetch_command(source)}` where online"
        ) from None
    except ValueError as error:  # an unknown model_type, a config.json that is not JSON
        raise ValueError(f"{source}: its config.json is not a transformers config ({_first_line(error)})") from None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def transformers_normalisation(source: str, *, download: bool) -> tuple[tuple, tuple, str]:
    """(mean, std, where from) of the image processor's settings, for RGB in 0-1 as segscale feeds it.

    The processor computes (x * rescale_factor - image_mean) / image_std on 0-255 pixels; segscale
    computes (x / 255 - mean) / std, so mean = image_mean / (255 rescale_factor), and likewise std.
    """
    path = Path(source).expanduser()
    settings_file = path / "preprocessor_config.json" if path.is_dir() else None
    if settings_file is None:
        try:
            from huggingface_hub import hf_hub_download

            settings_file = Path(hf_hub_download(source, "preprocessor_config.json", local_files_only=not download))
        except Exception:  # no processor settings published: stated in the card below
            settings_file = None
    if settings_file is None or not settings_file.is_file():
        return IMAGENET_MEAN, IMAGENET_STD, "ImageNet's (no preprocessor_config.json was found)"
    try:
        settings = json.loads(settings_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{settings_file}: not readable JSON ({_first_line(error)})") from None
    factor = float(settings.get("rescale_factor", 1 / 255)) if settings.get("do_rescale", True) else 1.0
    if not settings.get("do_normalize", True):
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    else:
        mean = settings.get("image_mean", IMAGENET_MEAN)
        std = settings.get("image_std", IMAGENET_STD)
        mean = [mean] * 3 if isinstance(mean, int | float) else mean
        std = [std] * 3 if isinstance(std, int | float) else std
    to_unit = 1.0 / (255.0 * factor)
    return (
        tuple(float(v) * to_unit for v in mean),
        tuple(float(v) * to_unit for v in std),
        f"the image processor's settings ({settings_file.name})",
    )


def transformers_classes(config) -> tuple[str, ...]:
    id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
    if sorted(id2label) != list(range(len(id2label))) or not id2label:
        raise ValueError(f"config.id2label must name classes 0..N-1, got keys {sorted(id2label)[:5]}...")
    return tuple(id2label[index].strip() for index in range(len(id2label)))


def import_transformers(
    source: str,
    *,
    scales=PAPER_SCALES,
    download: bool = True,
    mean=None,
    std=None,
) -> tuple[MultiScaleNet, CheckpointMetadata]:
    """(model, metadata) of an AutoModelForSemanticSegmentation network from a folder or the Hugging Face cache."""
    from .modeling.library_networks import transformers_kind

    transformers = _transformers()
    config = _transformers_config(source, download=download)
    kind = transformers_kind(str(getattr(config, "model_type", "?")))  # refuses Mask2Former and the like
    path = Path(source).expanduser()
    location = str(path) if path.exists() else source
    try:
        network, info = transformers.AutoModelForSemanticSegmentation.from_pretrained(
            location, local_files_only=not download, output_loading_info=True
        )
    except (OSError, ValueError, RuntimeError) as error:
        raise ValueError(
            f"{source}: the weights cannot be read ({_first_line(error)}); it needs the model.safetensors "
            "(or pytorch_model.bin) that save_pretrained writes beside config.json"
        ) from None
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        raise ValueError(
            f"{source}: its weights lack {len(missing)} of the {kind.label} semantic segmentation model's "
            f"(e.g. {missing[0]}); it is not a semantic segmentation checkpoint (a backbone or classifier only?)"
        )
    classes = transformers_classes(network.config)
    if mean is None or std is None:
        found_mean, found_std, normalisation_from = transformers_normalisation(source, download=download)
        mean, std = mean or found_mean, std or found_std
    else:
        normalisation_from = "the --mean and --std flags"
    mean, std = _normalisation(mean, std, source)
    record = {"library": "transformers", "version": transformers.__version__, "config": network.config.to_dict()}
    model = library_model("transformers", record, network.eval(), len(classes), scales, where=source)
    source_info = {
        "library": "transformers",
        "version": transformers.__version__,
        "source": str(path.resolve()) if path.exists() else source,
        "model_type": network.config.model_type,
        "class": type(network).__name__,
        "normalisation_from": normalisation_from,
    }
    label = Path(source).name if path.exists() else source
    metadata = library_metadata(
        model,
        classes,
        mean,
        std,
        name=f"{kind.label} {label} (transformers), no attention head yet",
        library="transformers",
        source=source_info,
    )
    return model, metadata


# ---------------------------------------------------------------------------------------------- smp


def import_smp(
    source: str | os.PathLike | None = None,
    *,
    arch: str | None = None,
    encoder: str | None = None,
    num_classes: int | None = None,
    weights: str | os.PathLike | None = None,
    classes=None,
    scales=PAPER_SCALES,
    mean=None,
    std=None,
) -> tuple[MultiScaleNet, CheckpointMetadata]:
    """(model, metadata) of an smp model: its save_pretrained folder, or a state dict with arch, encoder and
    class count."""
    smp = _smp()
    if source is not None:
        path = Path(source)
        if not path.is_dir():
            raise ValueError(f"{source}: no such folder; give the folder an smp model's save_pretrained wrote")
        config_file = path / "config.json"
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = None
        if not isinstance(config, dict) or "_model_class" not in config:
            raise ValueError(
                f"{source}: not an smp model folder (no config.json with _model_class); give the folder "
                "model.save_pretrained(FOLDER) wrote, or use --arch, --encoder, --num-classes and --weights"
            )
        try:
            network = smp.from_pretrained(str(path))
        except Exception as error:  # smp raises whatever its loaders raise
            raise ValueError(f"{source}: the smp model cannot be loaded ({_first_line(error)})") from None
        config = {key: value for key, value in config.items() if not key.startswith("_") or key == "_model_class"}
        where = str(source)
    else:
        missing = [
            flag for flag, value in (("--arch", arch), ("--encoder", encoder), ("--weights", weights)) if not value
        ]
        if missing or not num_classes:
            raise ValueError(
                "import-smp: give a save_pretrained FOLDER, or all of --arch, --encoder, --num-classes and --weights "
                f"(missing: {', '.join(missing + ([] if num_classes else ['--num-classes']))})"
            )
        config = {"_model_class": arch, "encoder_name": encoder, "classes": int(num_classes)}
        try:
            network = smp.create_model(arch=arch, encoder_name=encoder, encoder_weights=None, classes=int(num_classes))
        except KeyError as error:
            raise ValueError(f"--arch {arch}: {error.args[0]}") from None
        except Exception as error:  # an unknown encoder name comes as a KeyError or ValueError, by version
            raise ValueError(f"--encoder {encoder}: {_first_line(error)}") from None
        state = read_torch_file(weights, what="weights file")
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError(f"weights file {weights}: not a state dict (a dict of tensors); save model.state_dict()")
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as error:
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            raise ValueError(
                f"weights file {weights}: does not fit smp {arch} with encoder {encoder} and {num_classes} classes "
                f"({lines[1] if len(lines) > 1 else lines[0]})"
            ) from None
        where = str(weights)
    count = int(config.get("classes", 1))
    if classes is None:
        classes = tuple(f"class {index}" for index in range(count))
    if len(classes) != count:
        raise ValueError(f"{where}: the smp model has {count} classes but --classes names {len(classes)}")
    if mean is None or std is None:
        # ImageNet's statistics, what smp's ImageNet-pretrained encoders expect (smp's own lookup
        # of an encoder's settings may go online, so it is not asked).
        mean, std = mean or IMAGENET_MEAN, std or IMAGENET_STD
        normalisation_from = "ImageNet's (smp's encoders are pretrained with it); pass --mean and --std otherwise"
    else:
        normalisation_from = "the --mean and --std flags"
    mean, std = _normalisation(mean, std, where)
    record = {"library": "smp", "version": smp.__version__, "config": config}
    model = library_model("smp", record, network.eval(), count, scales, where=where)
    source_info = {
        "library": "segmentation_models_pytorch",
        "version": smp.__version__,
        "source": str(Path(where).resolve()),
        "arch": config["_model_class"],
        "encoder": config.get("encoder_name"),
        "normalisation_from": normalisation_from,
    }
    name = f"smp {config['_model_class']} ({config.get('encoder_name')}), no attention head yet"
    return model, library_metadata(model, classes, mean, std, name=name, library="smp", source=source_info)


# ------------------------------------------------------------------------------------------ factory


def import_factory(
    factory: str,
    classes,
    *,
    weights: str | os.PathLike | None = None,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    size_multiple: int = 1,
    scales=PAPER_SCALES,
) -> tuple[MultiScaleNet, CheckpointMetadata]:
    """(model, metadata) of the module ``package.module:function`` returns; its weights, or those in ``weights``."""
    from .modeling.library_networks import build_factory_network

    if size_multiple < 1:
        raise ValueError(f"--size-multiple must be at least 1, got {size_multiple}")
    record = {"library": "factory", "factory": factory, "size_multiple": int(size_multiple)}
    network = build_factory_network(record)
    if weights is not None:
        state = read_torch_file(weights, what="weights file")
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError(f"weights file {weights}: not a state dict (a dict of tensors); save model.state_dict()")
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as error:
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            raise ValueError(
                f"weights file {weights}: does not fit the module {factory} returns "
                f"({lines[1] if len(lines) > 1 else lines[0]})"
            ) from None
    mean, std = _normalisation(mean, std, factory)
    model = library_model("factory", record, network, len(classes), scales, where=factory)
    check_class_count(
        model, classes, where=factory, hint="give --classes a file with one name per class score, in order"
    )
    source_info = {
        "library": "factory",
        "factory": factory,
        "weights": str(Path(weights).resolve()) if weights is not None else "the factory's own",
        "normalisation_from": "the --mean and --std flags",
    }
    metadata = library_metadata(
        model,
        classes,
        mean,
        std,
        name=f"{factory} (factory), no attention head yet",
        library="factory",
        source=source_info,
    )
    return model, metadata


def is_library_network(metadata: CheckpointMetadata) -> bool:
    from .config import LIBRARY_TRUNKS

    return metadata.model.trunk.name in LIBRARY_TRUNKS


def runs_code_on_load(metadata: CheckpointMetadata) -> bool:
    """Whether loading the checkpoint imports a module named in it (a factory checkpoint)."""
    return metadata.model.trunk.name == "factory"
