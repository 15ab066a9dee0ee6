"""Turning whatever a caller holds into the HxWx3 uint8 RGB array the model reads.

:func:`as_rgb_array` accepts PIL images and numpy arrays; :func:`load_image` reads the bytes of
an image file, with every format quirk (EXIF orientation, animation, CMYK, 16 bits,
transparency, truncation, decompression bombs) handled in that one place. The size limits
live here too so that the Predictor, the app and the command line agree on them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_MAX_SIDE = 2048  # longer sides are scaled down before prediction
MIN_SIDE = 16  # below this the coarsest scales have no output cell left to look at


class ImageError(ValueError):
    """An image that cannot be used, with a message a person can act on."""


def as_rgb_array(image) -> np.ndarray:
    """PIL image or (H, W, 3) / (H, W) uint8 array -> (H, W, 3) uint8 RGB, C-contiguous.

    Transparent pixels are composited on white; greyscale is repeated to three channels.
    """
    if isinstance(image, Image.Image):
        return np.array(pil_to_rgb(image), dtype=np.uint8)  # a writable copy, which torch can wrap
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ImageError(f"image arrays must be uint8 RGB (H, W, 3); got dtype {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ImageError(f"image arrays must be (H, W, 3) RGB; got shape {array.shape}")
    if array.shape[2] == 4:
        array = pil_to_rgb(Image.fromarray(array, mode="RGBA"))
    if not array.flags.writeable:
        array = array.copy()
    return np.ascontiguousarray(array, dtype=np.uint8)


def pil_to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB, compositing transparency (RGBA, LA, palette with transparency) on white."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit or float greyscale: stretch the used range to 8 bits instead of clipping to white.
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = np.zeros_like(values) if high <= low else (values - low) * (255.0 / (high - low))
        return Image.fromarray(scaled.round().astype(np.uint8), mode="L").convert("RGB")
    return image.convert("RGB")


def check_min_size(rgb: np.ndarray) -> None:
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ImageError(
            f"the image is {width}x{height} pixels; segscale needs at least {MIN_SIDE} pixels on each side"
        )


def capped_size(height: int, width: int, max_side: int | None = DEFAULT_MAX_SIDE) -> tuple[int, int]:
    """(height, width) after :func:`cap_longest_side`: the longest side at most ``max_side``."""
    if max_side is None or max(height, width) <= max_side:
        return height, width
    factor = max_side / max(height, width)
    return max(1, round(height * factor)), max(1, round(width * factor))


def cap_longest_side(
    rgb: np.ndarray, max_side: int | None = DEFAULT_MAX_SIDE, resample: Image.Resampling = Image.Resampling.BILINEAR
) -> tuple[np.ndarray, bool]:
    """Scale down so the longest side is at most ``max_side``. Returns (image, was_scaled).

    Pillow's bilinear filter widens with the reduction, so this averages rather than aliases. ``resample``: the
    gallery's photos are reduced with BOX, the area average they are made smaller with in the first place.
    """
    height, width = capped_size(*rgb.shape[:2], max_side)
    if (height, width) == tuple(rgb.shape[:2]):
        return rgb, False
    return np.array(Image.fromarray(rgb).resize((width, height), resample)), True


# ----------------------------------------------------------------------------- files from people

# Decoded pixels above this are refused before decoding: 64 megapixels is more than a 61 MP
# full-frame camera writes, and 192 MB as RGB; a file declaring more is a mistake or a bomb.
# An explicit limit of our own, checked on the header, rather than Pillow's global
# Image.MAX_IMAGE_PIXELS (89 MP, a warning only below twice that), which we do not touch.
MAX_PIXELS = 64_000_000

# What the app and the command line read. Pillow can open more (EPS through Ghostscript, say,
# which runs an interpreter on the file), so the formats it may try are named explicitly.
# Pillow's JPEG opener also returns the MPO variant many phones write (a JPEG followed by a
# preview image); its format then reads "MPO".
READABLE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
READABLE_DESCRIPTION = "PNG, JPEG, WebP, BMP, TIFF or GIF"

# File name extensions and the formats they announce; only used to add a notice when they disagree.
_EXTENSION_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".jfif": "JPEG",
    ".mpo": "MPO",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".dib": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".gif": "GIF",
}
_FORMAT_NAMES = {
    "JPEG": "JPEG",
    "MPO": "JPEG",
    "PNG": "PNG",
    "WEBP": "WebP",
    "BMP": "BMP",
    "TIFF": "TIFF",
    "GIF": "GIF",
}
# Leading bytes of files people upload by mistake, to say what the file is instead of "not an image".
_OTHER_KINDS = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"<svg", "an SVG drawing, which segscale does not rasterise"),
    (b"<?xml", "an XML or SVG file, which segscale does not rasterise"),
    (b"\x1f\x8b", "a gzip archive"),
)


@dataclass(frozen=True)
class LoadedImage:
    """An image file read for prediction.

    Attributes:
        rgb: (H, W, 3) uint8, upright, opaque, at most ``max_side`` on its longest side.
        notices: sentences for a person about what was changed on the way ("The image was
            4000x3000; its longest side was scaled to 2048."); empty when nothing was.
        original_size: (H, W) as decoded and turned upright, before any scaling down.
        format: the format the content is in ("PNG", "JPEG", ...), whatever the file name says.
    """

    rgb: np.ndarray
    notices: tuple[str, ...]
    original_size: tuple[int, int]
    format: str

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of :attr:`rgb`."""
        return tuple(self.rgb.shape[:2])  # type: ignore[return-value]


def load_image(
    data: bytes, name: str | None = None, max_side: int | None = DEFAULT_MAX_SIDE, max_pixels: int = MAX_PIXELS
) -> LoadedImage:
    """Read image file bytes into an upright, opaque RGB array, or say plainly why not.

    Every format quirk is handled here and nowhere else:

    * the content decides the format, not the name (a JPEG called ``.png`` is read as a JPEG,
      with a notice); only :data:`READABLE_FORMATS` are tried;
    * EXIF orientation is applied, so photos are upright;
    * animated GIF, WebP and PNG: the first frame;
    * CMYK, palette, greyscale and 16-bit images become 8-bit RGB (16-bit greyscale has its
      used range stretched to 0-255, see :func:`pil_to_rgb`);
    * transparency (RGBA, LA, palette with a transparent colour) is composited on white;
    * a longest side above ``max_side`` is scaled down to it, with a notice.

    Refused with :class:`ImageError`: empty or non-image bytes; files declaring more than
    ``max_pixels`` pixels (decompression bombs), checked on the header before any decoding;
    truncated files, because half an image padded with grey would be segmented as if it
    were real (Pillow's ``LOAD_TRUNCATED_IMAGES`` is left at its default, False); images below
    :data:`MIN_SIDE` on a side.

    Args:
        data: the file's bytes.
        name: the file name, used only for messages and the extension notice.
        max_side: cap on the longest side (None: never scale down).
        max_pixels: largest width x height accepted.
    """
    from PIL import ImageOps, UnidentifiedImageError

    what = "The file" if not name else "This file"
    if not data:
        raise ImageError(f"{what} is empty (0 bytes). Choose an image file ({READABLE_DESCRIPTION}).")
    try:
        image = Image.open(io.BytesIO(data), formats=READABLE_FORMATS)
    except Image.DecompressionBombError as error:
        raise ImageError(_bomb_message(error, max_pixels)) from None
    except UnidentifiedImageError:
        raise ImageError(_not_an_image_message(data, what)) from None
    except (OSError, SyntaxError, ValueError) as error:
        # A recognised format whose header is broken (Pillow raises SyntaxError for some).
        raise ImageError(
            f"{what} starts like an image but its header cannot be read ({error}). "
            f"It may be damaged; save it again as PNG or JPEG."
        ) from None

    with image:
        fmt = image.format or "unknown"
        width, height = image.size
        if width * height > max_pixels:
            raise ImageError(
                f"The image declares {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), more than the "
                f"{max_pixels / 1e6:.0f} megapixels segscale decodes; it is refused so that it cannot exhaust memory "
                "(a so-called decompression bomb). Scale it down before uploading."
            )
        notices: list[str] = []
        expected = _EXTENSION_FORMATS.get(Path(name).suffix.lower()) if name else None
        if name and expected is None and Path(name).suffix:
            notices.append(
                f"The file name ends in {Path(name).suffix!s} but the file holds a {_FORMAT_NAMES.get(fmt, fmt)} "
                "image; it was read as that."
            )
        elif expected is not None and _FORMAT_NAMES.get(expected) != _FORMAT_NAMES.get(fmt, fmt):
            notices.append(
                f"The file name says {_FORMAT_NAMES[expected]} but the file holds a {_FORMAT_NAMES.get(fmt, fmt)} "
                "image; it was read as that."
            )
        frames = getattr(image, "n_frames", 1)
        if frames > 1 and fmt != "MPO":  # an MPO's second frame is a preview, not animation
            notices.append(f"The image is animated ({frames} frames); only the first frame is used.")
        # The raw mode says "RGB;16B" for 48-bit PNGs, which Pillow decodes to 8-bit RGB; it is
        # gone once the image is loaded.
        rawmode = next((str(tile[3]) for tile in image.tile if len(tile) > 3), "")
        try:
            image.seek(0)
            image.load()
        except Image.DecompressionBombError as error:
            raise ImageError(_bomb_message(error, max_pixels)) from None
        except OSError as error:
            if "truncated" in str(error).lower():
                raise ImageError(
                    f"{what} is cut off: it ends before the image data does (an interrupted download or copy?). "
                    "Only part of the image could be decoded, so it is not used; upload the complete file."
                ) from None
            raise ImageError(
                f"{what} is a {_FORMAT_NAMES.get(fmt, fmt)} image that cannot be decoded ({error})."
            ) from None
        except (SyntaxError, ValueError, EOFError) as error:
            raise ImageError(
                f"{what} is a {_FORMAT_NAMES.get(fmt, fmt)} image that cannot be decoded ({error})."
            ) from None

        notices.extend(_mode_notices(image, rawmode))
        try:
            upright = ImageOps.exif_transpose(image)
        except Exception:  # a malformed EXIF block: keep the pixels as stored rather than refuse the photo
            upright = image
            notices.append("The photo's orientation tag could not be read; it is shown as stored.")
        else:
            if upright.size != image.size or _orientation(image) not in (None, 1):
                notices.append("The photo's EXIF orientation was applied, so it is shown upright.")
        rgb = np.array(pil_to_rgb(upright), dtype=np.uint8)

    check_min_size(rgb)
    original_size = tuple(rgb.shape[:2])
    rgb, scaled = cap_longest_side(rgb, max_side)
    if scaled:
        notices.append(
            f"The image was {original_size[1]}x{original_size[0]}; its longest side was scaled to {max_side} "
            f"(now {rgb.shape[1]}x{rgb.shape[0]})."
        )
    return LoadedImage(rgb=np.ascontiguousarray(rgb), notices=tuple(notices), original_size=original_size, format=fmt)  # type: ignore[arg-type]


def _orientation(image: Image.Image) -> int | None:
    try:
        return image.getexif().get(0x0112)
    except Exception:
        return None


def _mode_notices(image: Image.Image, rawmode: str) -> list[str]:
    """What :func:`pil_to_rgb` changes when it turns this decoded image into 8-bit RGB, in words."""
    mode = image.mode
    notices = []
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        alpha = image.convert("RGBA").getchannel("A")
        if alpha.getextrema()[0] < 255:
            notices.append("The image has transparent areas; they were filled with white.")
    if mode == "CMYK":
        notices.append("The image is in CMYK (print) colours; it was converted to RGB, so colours may shift a little.")
    elif mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        notices.append("The image is 16-bit greyscale; its range of grey values was stretched to 8 bits.")
    elif mode == "F":
        notices.append("The image holds floating-point values; their range was stretched to 8-bit grey.")
    elif mode in ("L", "1", "LA"):
        notices.append("The image is greyscale; the model sees it as grey RGB.")
    elif ";16" in rawmode:
        notices.append("The image has 16 bits per channel; it was reduced to 8 bits per channel.")
    return notices


def _bomb_message(error: BaseException, max_pixels: int) -> str:
    return (
        f"The image declares more pixels than segscale decodes (at most {max_pixels / 1e6:.0f} megapixels): {error} "
        "It is refused so that it cannot exhaust memory. Scale it down before uploading."
    )


def _not_an_image_message(data: bytes, what: str) -> str:
    head = data[:512].lstrip()
    for magic, kind in _OTHER_KINDS:
        if head[: len(magic)].lower() == magic.lower():
            return f"{what} is {kind}, not an image. Choose a {READABLE_DESCRIPTION} file."
    if head[:4] in (b"\x00\x00\x00\x18", b"\x00\x00\x00\x1c", b"\x00\x00\x00 ") and b"ftyp" in head[:16]:
        return f"{what} looks like HEIC/AVIF or a video, which segscale cannot read. Convert it to PNG or JPEG."
    try:
        head.decode("utf-8")
        looks_like_text = bool(head)
    except UnicodeDecodeError:
        looks_like_text = False
    if looks_like_text:
        return f"{what} holds text, not an image. Choose a {READABLE_DESCRIPTION} file."
    return f"{what} is not an image segscale can read. Choose a {READABLE_DESCRIPTION} file."


# ----------------------------------------------------------------------------- label images

IGNORE_LABEL = 255  # a label image's "not annotated" value (PASCAL VOC's border), left out of every score
LABEL_FORMATS = ("PNG", "BMP", "TIFF", "GIF")  # lossless only: JPEG would blur the class indices at every edge


def load_label_image(data: bytes, name: str, classes, palette, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a ground-truth label image into (H, W) int64 class indices, or say plainly why not.

    Accepted: a palette ("P" mode) PNG whose indices are the classes (as PASCAL VOC's and
    segscale's own ``*_labels.png``); a greyscale PNG holding the class index in each pixel;
    an RGB PNG painted in the checkpoint's class colours. 255 means "not annotated" and is
    ignored. ``size`` (H, W) is the image's size as decoded; the labels must match it.
    """
    from PIL import UnidentifiedImageError

    if not data:
        raise ImageError(f"label image {name} is empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data), formats=READABLE_FORMATS)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        detail = (
            _not_an_image_message(data, "It")
            if isinstance(error, UnidentifiedImageError)
            else f"it cannot be decoded ({error})."
        )
        raise ImageError(f"label image {name}: {detail}") from None
    if image.format not in LABEL_FORMATS:
        raise ImageError(
            f"label image {name} is a {_FORMAT_NAMES.get(image.format, image.format)}; its lossy compression changes "
            "class indices along every edge. Save the labels as PNG (palette or greyscale class indices)."
        )
    classes, palette = tuple(classes), [tuple(int(v) for v in rgb) for rgb in palette]
    if image.mode in ("P", "L", "I", "I;16", "I;16B", "I;16L"):
        labels = np.asarray(image).astype(np.int64)
    elif image.mode in ("RGB", "RGBA"):
        labels = _labels_from_colours(np.asarray(image.convert("RGB")), palette, name)
    else:
        raise ImageError(
            f"label image {name} is in mode {image.mode}; give a palette PNG or a greyscale PNG of class indices"
        )
    if size is not None and tuple(labels.shape) != tuple(size):
        raise ImageError(
            f"label image {name} is {labels.shape[1]}x{labels.shape[0]}, the image {size[1]}x{size[0]}; "
            "the labels must have the image's size"
        )
    unknown = sorted(set(np.unique(labels).tolist()) - set(range(len(classes))) - {IGNORE_LABEL})
    if unknown:
        shown = ", ".join(str(v) for v in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise ImageError(
            f"label image {name} holds the value{'s' if len(unknown) > 1 else ''} {shown}, but this checkpoint's "
            f"classes are 0 to {len(classes) - 1} ({', '.join(classes)}), with {IGNORE_LABEL} for pixels to ignore"
        )
    return labels


def _labels_from_colours(rgb: np.ndarray, palette, name: str) -> np.ndarray:
    """(H, W, 3) colours -> class indices by the checkpoint's palette; an unknown colour is an error."""
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    lookup = {(r << 16) | (g << 8) | b: index for index, (r, g, b) in enumerate(palette)}
    lookup.setdefault((255 << 16) | (255 << 8) | 255, IGNORE_LABEL)  # white: not annotated, unless a class is white
    values, inverse = np.unique(codes, return_inverse=True)
    missing = [int(v) for v in values if int(v) not in lookup]
    if missing:
        shown = ", ".join(f"({v >> 16}, {(v >> 8) & 255}, {v & 255})" for v in missing[:3])
        raise ImageError(
            f"label image {name} is in colour and uses {len(missing)} colour{'s' if len(missing) > 1 else ''} that are "
            f"no class's (e.g. {shown}); paint it in the checkpoint's "
            "class colours or save class indices as a palette PNG"
        )
    return np.array([lookup[int(v)] for v in values], dtype=np.int64)[inverse].reshape(codes.shape)
