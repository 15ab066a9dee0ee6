"""``python -m segscale shapes``: write ScaleShapes in the PASCAL VOC layout, or a contact sheet.

    python -m segscale shapes --split val --count 100 --out data/scaleshapes
    python -m segscale shapes --split train --count 12 --preview sheet.png

The VOC folder reads like PASCAL VOC 2012 (JPEGImages, SegmentationClass, ImageSets), so the
VOC loader and evaluation read it unchanged; Objects/<id>.json adds each object's class,
extent, centre and visible pixels for the analyses by object size.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..data.scaleshapes import CLASSES, PALETTE, SPLITS, ScaleShapesConfig, generate_sample, write_voc_layout
from ..progress_bar import progress_bar

TILE_HEIGHT = 200  # px of one image (and its label) on the contact sheet
GAP = 6
TEXT_ROW = 14


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ScaleShapesConfig()
    parser.add_argument("--split", default="val", help=f"which split to generate: {', '.join(SPLITS)} (default: val)")
    parser.add_argument("--count", type=int, default=12, metavar="N", help="number of images (default: 12)")
    parser.add_argument("--start", type=int, default=0, metavar="INDEX", help="index of the first image (default: 0)")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write the split into this folder in the PASCAL VOC layout (default: none)",
    )
    parser.add_argument(
        "--preview",
        type=Path,
        metavar="PNG",
        help="write a contact sheet (image | label pairs) to this PNG (default: none)",
    )
    parser.add_argument(
        "--columns", type=int, default=3, metavar="N", help="image/label pairs per row of the sheet (default: 3)"
    )
    parser.add_argument(
        "--min-side",
        type=int,
        default=defaults.min_side,
        metavar="PX",
        help=f"smallest image width or height in pixels (default: {defaults.min_side})",
    )
    parser.add_argument(
        "--max-side",
        type=int,
        default=defaults.max_side,
        metavar="PX",
        help=f"largest image width or height in pixels (default: {defaults.max_side})",
    )
    parser.add_argument(
        "--max-objects",
        type=int,
        default=defaults.max_objects,
        metavar="N",
        help=f"most objects in one image (default: {defaults.max_objects})",
    )


def run(args: argparse.Namespace) -> int:
    if args.split not in SPLITS:
        raise ValueError(f"unknown split {args.split!r}; valid: {', '.join(SPLITS)}")
    if args.out is None and args.preview is None:
        raise ValueError("nothing to do: give --out DIR (VOC layout) and/or --preview PNG (contact sheet)")
    if args.count < 1:
        raise ValueError(f"--count must be at least 1, got {args.count}")
    if args.start < 0:
        raise ValueError(f"--start must be >= 0, got {args.start}")
    if args.columns < 1:
        raise ValueError(f"--columns must be at least 1, got {args.columns}")
    config = ScaleShapesConfig(min_side=args.min_side, max_side=args.max_side, max_objects=args.max_objects)

    if args.preview is not None:
        if args.preview.suffix.lower() != ".png":
            raise ValueError(f"--preview must name a .png file, got {args.preview}")
        samples = [generate_sample(args.split, i, config) for i in range(args.start, args.start + args.count)]
        sheet = contact_sheet([s.image for s in samples], [s.label for s in samples], args.columns)
        try:
            args.preview.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(sheet).save(args.preview)
        except OSError as error:
            raise ValueError(f"cannot write {args.preview}: {error.strerror or error}") from error
        print(f"wrote a contact sheet of {args.count} {args.split} images to {args.preview}")

    if args.out is not None:
        if args.out.exists() and not args.out.is_dir():
            raise ValueError(f"--out {args.out} exists and is not a folder")
        with progress_bar(args.count, args.split, unit="img") as bar:
            root = write_voc_layout(
                args.out,
                args.split,
                args.count,
                config,
                start=args.start,
                progress=lambda done, total: bar.update(done - bar.n),
            )
        print(f"wrote {args.count} {args.split} images to {root} (PASCAL VOC layout)")
    return 0


def colour_labels(label: np.ndarray) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8 PALETTE colours (unknown indices white)."""
    lookup = np.full((256, 3), 255, dtype=np.uint8)
    lookup[: len(PALETTE)] = PALETTE
    return lookup[label]


def contact_sheet(images: list[np.ndarray], labels: list[np.ndarray], columns: int = 3) -> np.ndarray:
    """Image | coloured label pairs in a grid, with a legend of the classes: (H, W, 3) uint8.

    Each pair is scaled to a common height (nearest neighbour for labels, so they stay hard)
    and keeps its aspect ratio; the caption under a pair gives its original size.
    """
    if len(images) != len(labels) or not images:
        raise ValueError(f"need as many labels as images (and at least one); got {len(images)} and {len(labels)}")
    pairs = []
    for image, label in zip(images, labels):
        height, width = label.shape
        size = (max(1, round(width * TILE_HEIGHT / height)), TILE_HEIGHT)
        left = Image.fromarray(image).resize(size, Image.Resampling.BILINEAR)
        right = Image.fromarray(colour_labels(label)).resize(size, Image.Resampling.NEAREST)
        pair = Image.new("RGB", (2 * size[0] + GAP // 2, TILE_HEIGHT + TEXT_ROW), (255, 255, 255))
        pair.paste(left, (0, 0))
        pair.paste(right, (size[0] + GAP // 2, 0))
        ImageDraw.Draw(pair).text((2, TILE_HEIGHT + 1), f"{width}x{height}", fill=(0, 0, 0))
        pairs.append(pair)
    rows = [pairs[i : i + columns] for i in range(0, len(pairs), columns)]
    sheet_width = max(sum(p.width for p in row) + GAP * (len(row) + 1) for row in rows)
    legend_height = 2 * TEXT_ROW
    sheet_height = legend_height + sum(TILE_HEIGHT + TEXT_ROW + GAP for _ in rows) + GAP
    sheet = Image.new("RGB", (sheet_width, sheet_height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    x = GAP
    for name, colour in zip(CLASSES, PALETTE):
        draw.rectangle([x, 8, x + 12, 20], fill=colour, outline=(0, 0, 0))
        draw.text((x + 16, 8), name, fill=(0, 0, 0))
        x += 24 + 7 * len(name)
    y = legend_height + GAP
    for row in rows:
        x = GAP
        for pair in row:
            sheet.paste(pair, (x, y))
            x += pair.width + GAP
        y += TILE_HEIGHT + TEXT_ROW + GAP
    return np.asarray(sheet)
