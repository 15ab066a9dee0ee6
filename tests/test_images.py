"""load_image: every format quirk a user's photo may have, on files built here, in memory."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from segscale.images import DEFAULT_MAX_SIDE, MAX_PIXELS, MIN_SIDE, ImageError, LoadedImage, load_image


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def raw_png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes = b"") -> bytes:
    """A PNG written byte by byte: any header, whatever the (possibly missing) pixel data."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows, 9))
        + png_chunk(b"IEND", b"")
    )


@pytest.fixture
def photo() -> np.ndarray:
    """A 40x64 image whose top-left quarter is red, so orientation is visible."""
    rgb = np.full((40, 64, 3), 90, dtype=np.uint8)
    rgb[:20, :32] = (255, 0, 0)
    return rgb


def test_plain_png_round_trip(photo):
    loaded = load_image(encode(Image.fromarray(photo), "PNG"), "photo.png")
    assert isinstance(loaded, LoadedImage)
    np.testing.assert_array_equal(loaded.rgb, photo)
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.flags.c_contiguous
    assert loaded.notices == () and loaded.format == "PNG"
    assert loaded.original_size == loaded.size == (40, 64)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "BMP", "TIFF", "GIF"])
def test_every_listed_format_reads(photo, fmt):
    loaded = load_image(encode(Image.fromarray(photo), fmt), f"photo.{fmt.lower()}")
    assert loaded.size == (40, 64) and loaded.format == fmt
    assert not any("name" in notice for notice in loaded.notices)


def test_exif_rotated_jpeg_is_shown_upright(photo):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned; display rotated 90 degrees clockwise
    data = encode(Image.fromarray(photo), "JPEG", exif=exif, quality=95)
    loaded = load_image(data, "phone.jpg")
    assert loaded.size == (64, 40)  # width and height swapped
    # The red quarter, top-left as stored, is top-right once turned clockwise.
    assert loaded.rgb[5, 35:, 0].mean() > 200 and loaded.rgb[5, :5, 0].mean() < 150
    assert any("orientation" in notice for notice in loaded.notices)


def test_cmyk_jpeg_becomes_rgb(photo):
    data = encode(Image.fromarray(photo).convert("CMYK"), "JPEG", quality=95)
    loaded = load_image(data, "print.jpg")
    assert loaded.rgb.shape == (40, 64, 3)
    assert np.abs(loaded.rgb.astype(int) - photo).mean() < 20
    assert any("CMYK" in notice for notice in loaded.notices)


def test_16_bit_greyscale_png_is_stretched_not_clipped():
    ramp = np.linspace(1000, 3000, 32 * 48).reshape(32, 48).astype(np.uint16)
    loaded = load_image(encode(Image.fromarray(ramp), "PNG"), "depth.png")
    assert loaded.rgb.min() == 0 and loaded.rgb.max() == 255  # not all near-black as 8-bit clipping would give
    assert (loaded.rgb[..., 0] == loaded.rgb[..., 2]).all()
    assert any("16-bit" in notice for notice in loaded.notices)


def test_16_bit_rgb_png_is_reduced_to_8_bits():
    height, width = 20, 24
    values = np.zeros((height, width, 3), dtype=">u2")
    values[..., 0] = 65535  # full red
    rows = b"".join(b"\x00" + values[i].tobytes() for i in range(height))
    loaded = load_image(raw_png(width, height, 16, 2, rows), "deep.png")
    assert (loaded.rgb[..., 0] == 255).all() and (loaded.rgb[..., 1:] == 0).all()
    assert any("16 bits per channel" in notice for notice in loaded.notices)


def test_greyscale_is_repeated_to_three_channels(photo):
    grey = Image.fromarray(photo).convert("L")
    loaded = load_image(encode(grey, "PNG"), "grey.png")
    np.testing.assert_array_equal(loaded.rgb[..., 0], np.asarray(grey))
    assert (loaded.rgb[..., 0] == loaded.rgb[..., 1]).all()
    assert any("greyscale" in notice for notice in loaded.notices)


def test_palette_png_with_transparency_is_composited_on_white():
    palette_image = Image.new("P", (32, 32), 0)
    palette_image.putpalette([0, 0, 255] + [255, 0, 0] + [0, 0, 0] * 254)
    palette_image.paste(1, (0, 0, 16, 32))  # left half index 1 (red), right half index 0 (blue)
    data = encode(palette_image, "PNG", transparency=0)  # index 0 transparent
    loaded = load_image(data, "sprite.png")
    assert (loaded.rgb[:, :16] == (255, 0, 0)).all()
    assert (loaded.rgb[:, 16:] == 255).all()  # the transparent blue is white
    assert any("transparent" in notice for notice in loaded.notices)


def test_rgba_is_composited_on_white_by_alpha():
    rgba = np.zeros((24, 24, 4), dtype=np.uint8)
    rgba[..., 2] = 255  # blue
    rgba[:, :12, 3] = 255  # left opaque
    rgba[:, 12:, 3] = 0  # right fully transparent
    loaded = load_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"), "cut-out.png")
    assert (loaded.rgb[:, :12] == (0, 0, 255)).all()
    assert (loaded.rgb[:, 12:] == 255).all()
    assert any("transparent" in notice for notice in loaded.notices)


def test_opaque_rgba_needs_no_notice(photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    loaded = load_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"), "opaque.png")
    np.testing.assert_array_equal(loaded.rgb, photo)
    assert loaded.notices == ()


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (32, 32), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    loaded = load_image(data, "anim.gif")
    assert (loaded.rgb == (255, 0, 0)).all()
    assert any("animated (3 frames)" in notice for notice in loaded.notices)


def test_animated_webp_gives_its_first_frame():
    frames = [Image.new("RGB", (32, 32), colour) for colour in ((0, 255, 0), (255, 0, 255))]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    loaded = load_image(data, "anim.webp")
    assert (loaded.rgb == (0, 255, 0)).all()
    assert any("animated" in notice for notice in loaded.notices)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files_are_refused(fmt):
    noise = np.random.default_rng(0).integers(0, 256, size=(96, 96, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), fmt)
    with pytest.raises(ImageError, match="cut off"):
        load_image(data[: len(data) * 2 // 3], f"half.{fmt.lower()}")


def test_decompression_bomb_header_is_refused_before_decoding():
    # 100000 x 100000 one-bit pixels declared, a few bytes on disk: Pillow's own guard trips.
    with pytest.raises(ImageError, match="megapixels"):
        load_image(raw_png(100_000, 100_000, 1, 0), "bomb.png")


def test_images_above_our_pixel_limit_are_refused_on_the_header():
    # 9000 x 8000 = 72 MP: under Pillow's hard limit, over ours; refused without decoding 216 MB.
    side = 8000
    assert 9000 * side > MAX_PIXELS
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(raw_png(9000, side, 1, 0), "huge.png")
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(raw_png(64, 64, 8, 0, b"".join(b"\x00" + bytes(64) for _ in range(64))), max_pixels=1000)


def test_huge_images_are_capped_with_a_notice():
    wide = Image.new("RGB", (3000, 1000), (10, 200, 30))
    loaded = load_image(encode(wide, "PNG"), "panorama.png")
    assert loaded.size == (683, DEFAULT_MAX_SIDE) and loaded.original_size == (1000, 3000)
    assert "The image was 3000x1000; its longest side was scaled to 2048 (now 2048x683)." in loaded.notices
    assert load_image(encode(wide, "PNG"), max_side=None).size == (1000, 3000)


def test_tiny_images_are_refused_with_the_minimum():
    with pytest.raises(ImageError, match=f"at least {MIN_SIDE} pixels"):
        load_image(encode(Image.new("RGB", (300, 8)), "PNG"), "strip.png")


def test_empty_bytes():
    with pytest.raises(ImageError, match="empty"):
        load_image(b"", "nothing.png")


def test_text_named_png_is_refused_as_text():
    with pytest.raises(ImageError, match="holds text, not an image"):
        load_image(b"hello, I am a shopping list\n", "list.png")


@pytest.mark.parametrize(
    "data, kind",
    [(b"%PDF-1.7\n...", "PDF"), (b"PK\x03\x04rest", "ZIP"), (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG")],
)
def test_other_kinds_of_file_are_named(data, kind):
    with pytest.raises(ImageError, match=kind):
        load_image(data, "upload.png")


def test_binary_junk_is_refused():
    junk = bytes(np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8))
    with pytest.raises(ImageError, match="not an image"):
        load_image(junk, "junk.png")


def test_wrong_extension_trusts_the_content(photo):
    data = encode(Image.fromarray(photo), "JPEG", quality=95)
    loaded = load_image(data, "actually-a-jpeg.png")
    assert loaded.format == "JPEG" and loaded.size == (40, 64)
    assert any("says PNG but the file holds a JPEG" in notice for notice in loaded.notices)


def test_formats_outside_the_list_are_not_tried(photo):
    # Pillow reads PPM, but the app does not offer it; only READABLE_FORMATS are tried.
    with pytest.raises(ImageError):
        load_image(encode(Image.fromarray(photo), "PPM"), "photo.ppm")


def test_messages_never_carry_a_traceback():
    with pytest.raises(ImageError) as caught:
        load_image(b"\x89PNG\r\n\x1a\n garbage", "broken.png")
    assert "Traceback" not in str(caught.value) and str(caught.value)
