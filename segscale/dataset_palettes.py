"""Class colours for any number of classes: Cityscapes' and ADE20K's published palettes where the names match.

A network imported from another library comes with class names only. People who trained on
Cityscapes or ADE20K know those datasets' colours (road is purple, sky blue), so
:func:`palette_for_classes` gives a class its dataset's colour when its name is one of that
dataset's, and every other class a colour of a generated palette, distinct from those used.
The tables are the datasets' published ones (Cityscapes' ``labels.py`` for its 19 train ids;
ADE20K's SceneParsing colours, 150 classes, as mmsegmentation and the Hugging Face model
cards use them).
"""

from __future__ import annotations

from .palette import RGB, voc_color_map

CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip
CITYSCAPES_COLOURS: tuple[RGB, ...] = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60), (255, 0, 0),
    (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
)  # fmt: skip
ADE20K_CLASSES: tuple[str, ...] = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path",
    "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase",
    "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm",
    "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light",
    "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver", "airplane",
    "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster",
    "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool",
    "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank",
    "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture",
    "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor",
    "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)  # fmt: skip
ADE20K_COLOURS: tuple[RGB, ...] = (
    (120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3), (120, 120, 80), (140, 140, 140),
    (204, 5, 255), (230, 230, 230), (4, 250, 7), (224, 5, 255), (235, 255, 7), (150, 5, 61), (120, 120, 70),
    (8, 255, 51), (255, 6, 82), (143, 255, 140), (204, 255, 4), (255, 51, 7), (204, 70, 3), (0, 102, 200),
    (61, 230, 250), (255, 6, 51), (11, 102, 255), (255, 7, 71), (255, 9, 224), (9, 7, 230), (220, 220, 220),
    (255, 9, 92), (112, 9, 255), (8, 255, 214), (7, 255, 224), (255, 184, 6), (10, 255, 71), (255, 41, 10),
    (7, 255, 255), (224, 255, 8), (102, 8, 255), (255, 61, 6), (255, 194, 7), (255, 122, 8), (0, 255, 20),
    (255, 8, 41), (255, 5, 153), (6, 51, 255), (235, 12, 255), (160, 150, 20), (0, 163, 255), (140, 140, 140),
    (250, 10, 15), (20, 255, 0), (31, 255, 0), (255, 31, 0), (255, 224, 0), (153, 255, 0), (0, 0, 255),
    (255, 71, 0), (0, 235, 255), (0, 173, 255), (31, 0, 255), (11, 200, 200), (255, 82, 0), (0, 255, 245),
    (0, 61, 255), (0, 255, 112), (0, 255, 133), (255, 0, 0), (255, 163, 0), (255, 102, 0), (194, 255, 0),
    (0, 143, 255), (51, 255, 0), (0, 82, 255), (0, 255, 41), (0, 255, 173), (10, 0, 255), (173, 255, 0),
    (0, 255, 153), (255, 92, 0), (255, 0, 255), (255, 0, 245), (255, 0, 102), (255, 173, 0), (255, 0, 20),
    (255, 184, 184), (0, 31, 255), (0, 255, 61), (0, 71, 255), (255, 0, 204), (0, 255, 194), (0, 255, 82),
    (0, 10, 255), (0, 112, 255), (51, 0, 255), (0, 194, 255), (0, 122, 255), (0, 255, 163), (255, 153, 0),
    (0, 255, 10), (255, 112, 0), (143, 255, 0), (82, 0, 255), (163, 255, 0), (255, 235, 0), (8, 184, 170),
    (133, 0, 255), (0, 255, 92), (184, 0, 255), (255, 0, 31), (0, 184, 255), (0, 214, 255), (255, 0, 112),
    (92, 255, 0), (0, 224, 255), (112, 224, 255), (70, 184, 160), (163, 0, 255), (153, 0, 255), (71, 255, 0),
    (255, 0, 163), (255, 204, 0), (255, 0, 143), (0, 255, 235), (133, 255, 0), (255, 0, 235), (245, 0, 255),
    (255, 0, 122), (255, 245, 0), (10, 190, 212), (214, 255, 0), (0, 204, 255), (20, 0, 255), (255, 255, 0),
    (0, 153, 255), (0, 41, 255), (0, 255, 204), (41, 0, 255), (41, 255, 0), (173, 0, 255), (0, 245, 255),
    (71, 0, 255), (122, 0, 255), (0, 255, 184), (0, 92, 255), (184, 255, 0), (0, 133, 255), (255, 214, 0),
    (25, 194, 194), (102, 255, 0), (92, 0, 255),
)  # fmt: skip

# name -> its dataset's colour table, looked up by normalised name.
DATASET_PALETTES: dict[str, tuple[tuple[str, ...], tuple[RGB, ...]]] = {
    "Cityscapes": (CITYSCAPES_CLASSES, CITYSCAPES_COLOURS),
    "ADE20K": (ADE20K_CLASSES, ADE20K_COLOURS),
}


def _normalised(name: str) -> str:
    return " ".join(str(name).replace("_", " ").replace("-", " ").lower().split())


def matching_dataset(classes) -> str | None:
    """The dataset whose class names match most of ``classes`` (at least half of them), or None."""
    names = [_normalised(name) for name in classes]
    best, best_count = None, 0
    for dataset, (dataset_classes, _) in DATASET_PALETTES.items():
        known = {_normalised(name) for name in dataset_classes}
        count = sum(name in known for name in names)
        if count > best_count:
            best, best_count = dataset, count
    return best if names and best_count * 2 >= len(names) else None


def generated_palette(count: int, avoid=()) -> tuple[RGB, ...]:
    """``count`` distinct colours: PASCAL VOC's bit-spread colour map, skipping colours in ``avoid``.

    VOC's map gives 2^24 distinct entries, so this is distinct at any class count; its first
    entries are the familiar VOC colours.
    """
    avoid = {tuple(int(v) for v in colour) for colour in avoid}
    colours: list[RGB] = []
    index = 0
    while len(colours) < count:
        block = voc_color_map(index + 256)[index:]
        for colour in block:
            if colour not in avoid:
                colours.append(colour)
                avoid.add(colour)
                if len(colours) == count:
                    break
        index += 256
    return tuple(colours)


def palette_for_classes(classes) -> tuple[RGB, ...]:
    """One colour per class: the matching dataset's colour where the name is its class, generated elsewhere."""
    classes = list(classes)
    dataset = matching_dataset(classes)
    known: dict[str, RGB] = {}
    if dataset is not None:
        names, colours = DATASET_PALETTES[dataset]
        known = {_normalised(name): colour for name, colour in zip(names, colours)}
    chosen: list[RGB | None] = []
    used: set[RGB] = set()
    for name in classes:
        colour = known.get(_normalised(name))
        if colour in used:  # the same name twice: the second gets a colour of its own
            colour = None
        chosen.append(colour)
        if colour is not None:
            used.add(colour)
    spare = iter(generated_palette(sum(colour is None for colour in chosen), avoid=used))
    return tuple(colour if colour is not None else next(spare) for colour in chosen)
