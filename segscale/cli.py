"""``python -m segscale COMMAND``: the command-line twins of the app's views, training and benchmarks.

Each command lives in its own module with ``add_arguments(parser)`` and ``run(args) -> int``;
only the chosen command's module is imported, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). Order is the order of `--help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "predict": ("segscale.commands.predict", "predict images and write every map and the side-by-side figure"),
    "inspect": ("segscale.commands.inspect", "Eq. 1 and Eq. 2 with the numbers of one pixel (pixel inspector)"),
    "compare": ("segscale.commands.compare", "attention, average and max pooling on one image (merge comparison)"),
    "diagnose": ("segscale.commands.diagnose", "attention weight per scale against object size, over many images"),
    "describe": ("segscale.commands.describe", "a checkpoint's architecture, receptive field and training card"),
    "checkpoints": (
        "segscale.commands.checkpoints",
        "what each checkpoint file is: trunk, head, scales, data, metrics",
    ),
    "shapes": ("segscale.commands.shapes", "generate ScaleShapes images, or write a split in the PASCAL VOC layout"),
    "train": ("segscale.commands.train", "train a model (ScaleShapes, PASCAL VOC, PASCAL-Person-Part)"),
    "train-head": (
        "segscale.commands.train_head",
        "an attention head on a frozen network: PASCAL VOC fetched if asked, then trained",
    ),
    "evaluate": ("segscale.commands.evaluate", "mIoU, per-class IoU, pixel accuracy and IoU by object size"),
    "fetch-weights": (
        "segscale.commands.fetch_weights",
        "download a torchvision model's weights into the torch hub cache",
    ),
    "import-torchvision": (
        "segscale.commands.import_torchvision",
        "a torchvision segmentation model as a segscale checkpoint",
    ),
    "import-transformers": (
        "segscale.commands.import_transformers",
        "a Hugging Face transformers segmentation model (SegFormer, UperNet, ...) as a segscale checkpoint",
    ),
    "import-smp": ("segscale.commands.import_smp", "a segmentation_models_pytorch model as a segscale checkpoint"),
    "import-network": (
        "segscale.commands.import_network",
        "any module from --factory package.module:function as a segscale checkpoint (loading it runs that module)",
    ),
    "bench": ("segscale.commands.bench", "latency, throughput and memory of the fast path against the naive baseline"),
}

# Errors that mean "the input is wrong" (a bad flag value, file, image, checkpoint or device),
# shown as one line and exit code 2 rather than a traceback. ImageError is a ValueError;
# CheckpointError is added in main (imported late, so that --help needs no torch).
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)

# What `--help` tells people to type: the README's first command installs the requirements,
# not the package, so the `segscale` script may not exist; `python -m segscale` always does.
RUN_AS = "python -m segscale"


def build_parser(prog: str = "segscale") -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Attention to Scale (Chen et al., CVPR 2016): train, inspect and benchmark multi-scale segmentation."
        ),
        epilog=(
            f"Run `{RUN_AS} COMMAND --help` for a command's options (`segscale COMMAND` works too after "
            "`pip install -e .`). The app: `streamlit run app.py`. SEGSCALE_DEBUG=1 shows tracebacks and "
            "torch's own error text."
        ),
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    commands = {name: subparsers.add_parser(name, help=text, description=text) for name, (_, text) in COMMANDS.items()}
    return parser, commands


def user_error_message(error: BaseException) -> str:
    """One line saying what is wrong: the error's own message, or for an OSError the file and the reason."""
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror}"
    text = " ".join(str(error).split()) or type(error).__name__
    return text


def main(argv: list[str] | None = None, prog: str = "segscale") -> int:
    """Run one command; bad input ends in ``PROG COMMAND: error: ...`` on stderr and exit code 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    parser, commands = build_parser(prog)
    module = None
    if chosen in COMMANDS:
        module = importlib.import_module(COMMANDS[chosen][0])
        module.add_arguments(commands[chosen])
    args = parser.parse_args(argv)
    if module is None:
        parser.print_help()
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    from .checkpoint import CheckpointError, debug_enabled

    try:
        return int(module.run(args) or 0)
    except (CheckpointError, *USER_ERRORS) as error:
        if debug_enabled():
            raise
        commands[chosen].exit(2, f"{prog} {chosen}: error: {user_error_message(error)}\n")
    except KeyboardInterrupt:
        print(f"{prog} {chosen}: interrupted", file=sys.stderr)
        return 130
    return 0
