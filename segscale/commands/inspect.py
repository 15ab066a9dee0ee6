"""``python -m segscale inspect``: the pixel inspector without a browser -- Eq. 1 and Eq. 2 with one pixel's numbers.

    python -m segscale inspect photo.jpg --pixel 120 200
    python -m segscale inspect --sample val:3 --pixel 64 90 --top-k 4 --class star --json

The model runs in float32 (no bf16 autocast), as on the app's Pixel inspector page, so the
digits agree with it. For the grid cell nearest the pixel it prints h^s for every scale, the softmax of Eq. 2 step by
step, f^s_c of the top classes, g_c = sum_s w^s f^s_c term by term, the winner of every scale
and of every merge (attention, average, max), and the label at the pixel itself. For a hierarchical
model (a gate head) it writes out the chain of gates instead of Eq. 2: a^s per scale from the finest down, the
running prediction at each step and the effective weights as products of gates, as the app's page does. ROW and COL
are in the image as predicted (after any ``--max-side`` scaling, which is reported).
"""

from __future__ import annotations

import argparse
import json

from ._inputs import add_image_arguments, add_model_arguments, load_predictor, read_input


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_image_arguments(parser)
    parser.add_argument(
        "--pixel",
        type=int,
        nargs=2,
        required=True,
        metavar=("ROW", "COL"),
        help="the pixel to explain: row and column from the top left, from 0 (required)",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--top-k", type=int, default=3, metavar="K", help="classes to show, highest fused score first (default: 3)"
    )
    parser.add_argument(
        "--class",
        dest="class_name",
        metavar="NAME",
        help="a class to show as well, if not among the top-k (default: none)",
    )
    parser.add_argument("--json", action="store_true", help="print the breakdown as JSON instead of text")


def run(args: argparse.Namespace) -> int:
    from ..diagnostics import pixel_breakdown

    if args.top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {args.top_k}")
    source = read_input(args)
    predictor = load_predictor(args, max_side=args.max_side, float32=True)  # the same digits as the page's
    merge = args.merge or predictor.inspection_merge
    scales, merge = predictor.check_request(args.scales, merge, image_size=source.original_size)
    if args.class_name is not None and args.class_name not in predictor.classes:
        raise ValueError(
            f"unknown class {args.class_name!r}; this checkpoint's classes: {', '.join(predictor.classes)}"
        )
    prediction = predictor.predict(source.rgb, scales=scales, merge=merge)
    row, col = args.pixel
    breakdown = pixel_breakdown(prediction, row, col, predictor.classes, top_k=args.top_k, chosen_class=args.class_name)
    if args.json:
        data = {
            "image": source.name,
            "checkpoint": str(args.checkpoint),
            "notices": list(source.notices),
            **breakdown.to_dict(),
        }
        if len(prediction.scales) > 1:
            from ..diagnostics.ablation import pixel_without

            without = pixel_without(prediction, row, col)
            names = predictor.classes
            data["without_scale"] = {
                m: {str(s): names[label] for s, label in zip(without.scales, without.without[m])}
                for m in without.merges
            }
        if source.ground_truth is not None:
            truth = int(source.ground_truth[row, col])
            data["ground_truth"] = predictor.classes[truth] if truth < len(predictor.classes) else None
        print(json.dumps(data, indent=2))
        return 0
    for notice in source.notices:
        print(f"note: {notice} ROW and COL refer to the image as predicted.")
    print(f"{source.name} · {predictor.metadata.name or args.checkpoint.name} · numbers in float32")
    print(breakdown.to_text())
    print("")
    if len(prediction.scales) > 1:
        from ..diagnostics.ablation import pixel_without

        print(pixel_without(prediction, row, col).to_text(predictor.classes))
    else:
        from ..diagnostics.ablation import SINGLE_SCALE_ABLATION

        print(f"without each scale: {SINGLE_SCALE_ABLATION}")
    if source.ground_truth is not None:
        truth = int(source.ground_truth[row, col])
        print(f"ground truth at the pixel: {predictor.classes[truth] if truth < len(predictor.classes) else 'ignore'}")
    return 0
