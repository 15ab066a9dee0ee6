"""``python -m segscale describe``: a checkpoint's architecture,
receptive field and training card (the "How it works" view).

    python -m segscale describe
    python -m segscale describe --checkpoint runs/voc/model.pt --all-layers
    python -m segscale describe --paper --json

Prints every convolution and pooling layer of the trunk, the score head and the attention head
with its kernel, stride, dilation, padding, channels, parameters and the receptive field and
jump after it; then the totals (parameters per part, output stride, receptive field) and the
checkpoint's training card.
"""

from __future__ import annotations

import argparse
import json

from ._inputs import DEFAULT_CHECKPOINT_PATH


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        default=str(DEFAULT_CHECKPOINT_PATH),
        metavar="FILE",
        help=f"the segscale .pt checkpoint to describe (default: {DEFAULT_CHECKPOINT_PATH})",
    )
    parser.add_argument("--all-layers", action="store_true", help="also list ReLU, normalisation and dropout layers")
    parser.add_argument("--paper", action="store_true", help="also show the totals of the paper's full-width model")
    parser.add_argument("--json", action="store_true", help="print everything as JSON instead of text")


def run(args: argparse.Namespace) -> int:
    from ..architecture import architecture_summary, paper_model_summary
    from ..checkpoint import model_from_checkpoint
    from ..checkpoint_cards import training_card

    model, metadata = model_from_checkpoint(args.checkpoint)
    summary = architecture_summary(model)
    paper = paper_model_summary(num_classes=metadata.model.num_classes) if args.paper else None
    card = training_card(metadata)
    if args.json:
        data = {"checkpoint": str(args.checkpoint), "architecture": summary.to_dict(), "training_card": dict(card)}
        if paper is not None:
            data["paper_model"] = {k: v for k, v in paper.to_dict().items() if k != "layers"}
        print(json.dumps(data, indent=2))
        return 0
    print(f"{args.checkpoint}: {metadata.name or '(unnamed)'}")
    print()
    print(summary.to_text(spatial_only=not args.all_layers))
    if paper is not None:
        print()
        print(
            f"the paper's model (width 1, 'paper' head, {{1, 0.75, 0.5}}, these {paper.num_classes} classes): "
            f"{paper.total_parameters:,} parameters (trunk {paper.parameters['trunk']:,}, score head "
            f"{paper.parameters['score head']:,}, attention head {paper.parameters['attention head']:,}); receptive "
            f"field {paper.receptive_field} px, output stride {paper.output_stride}"
        )
    print()
    print("training card")
    width = max(len(name) for name, _ in card)
    for name, value in card:
        print(f"  {name:<{width}}  {value}")
    return 0
