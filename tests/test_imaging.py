"""The one decode path: EXIF orientation, colour modes, damaged files, pixel limits and input fitting."""

from __future__ import annotations

import io
import time
import warnings

import imagegen
import numpy as np
import pytest
from PIL import Image

from realcheck.model.data.imaging import (
    DEFAULT_MAX_PIXELS,
    InputSpec,
    InputTraits,
    condition_copy,
    ensure_min_side,
    fit_to_input,
    is_image_file,
    load_model_input,
    open_image,
    open_rgb,
    read_model_input,
)
from realcheck.model.errors import ImageDecodeError


def encode(image, fmt="PNG", **options):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def pixels(image):
    return np.asarray(image).astype(int)


def animated_gif(colours=((255, 0, 0), (0, 0, 255), (0, 255, 0)), size=16):
    frames = [Image.new("RGB", (size, size), colour) for colour in colours]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


# ------------------------------------------------------------------------------------------- sources


def test_every_source_type_decodes_to_the_same_pixels(tmp_path):
    data = imagegen.image_bytes("real", size=40)
    path = tmp_path / "image.png"
    path.write_bytes(data)
    with Image.open(io.BytesIO(data)) as pil:
        pil.load()
        sources = [path, str(path), data, bytearray(data), memoryview(data), pil]
        decoded = [pixels(open_rgb(source)) for source in sources]
    for array in decoded:
        assert array.shape == (40, 40, 3)
        assert np.array_equal(array, decoded[0])
    assert np.array_equal(decoded[0], imagegen.make_array("real", 40))


def test_is_image_file_ignores_hidden_files_and_other_suffixes(tmp_path):
    assert is_image_file(tmp_path / "a.PNG")
    assert is_image_file(tmp_path / "a.jpg.webp")
    assert not is_image_file(tmp_path / "._a.png")  # macOS AppleDouble companion, not an image
    assert not is_image_file(tmp_path / "notes.txt")
    assert not is_image_file(tmp_path / "a.svg")


# ------------------------------------------------------------------------------------------- orientation


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_orientation_is_applied(fmt):
    # 60x40, red on the left third. Orientation 6 means "rotate 90 degrees clockwise to display",
    # which turns the image 40x60 with the red band on top.
    image = Image.new("RGB", (60, 40), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(image, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt != "PNG" else {}))
    decoded = open_rgb(data)
    assert decoded.size == (40, 60)
    array = pixels(decoded)
    assert array[5, 20, 0] > 200 and array[5, 20, 2] < 60  # top: red
    assert array[55, 20, 2] > 200 and array[55, 20, 0] < 60  # bottom: blue


def test_orientation_reaches_the_model_input_too():
    image = Image.new("RGB", (60, 40), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 40))
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 degrees counter-clockwise: the left (red) band ends at the bottom
    array = load_model_input(encode(image, "JPEG", exif=exif.tobytes(), quality=95), InputSpec(32, "resize"))
    assert array[30, 16, 0] > 200 and array[1, 16, 2] > 200


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_corrupt_exif_does_not_stop_decoding():
    plain = encode(Image.new("RGB", (30, 20), (10, 20, 30)), "JPEG")
    junk = b"Exif\x00\x00MM\x00*\xff\xff\xff\x08garbage"
    segment = b"\xff\xe1" + (len(junk) + 2).to_bytes(2, "big") + junk
    decoded = open_rgb(plain[:2] + segment + plain[2:])
    assert decoded.size == (30, 20)
    assert pixels(decoded)[10, 15].tolist() == pytest.approx([10, 20, 30], abs=3)


# ------------------------------------------------------------------------------------------- colour modes


def test_palette_image_becomes_rgb():
    palette = Image.new("P", (20, 10))
    palette.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    palette.paste(1, (10, 0, 20, 10))
    for fmt in ("PNG", "GIF", "BMP"):
        decoded = open_rgb(encode(palette, fmt))
        assert decoded.mode == "RGB"
        assert pixels(decoded)[0, 0].tolist() == [255, 0, 0]
        assert pixels(decoded)[0, 19].tolist() == [0, 255, 0]


def test_transparent_palette_entry_is_white():
    palette = Image.new("P", (8, 8))
    palette.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    palette.paste(1, (4, 0, 8, 8))
    decoded = pixels(open_rgb(encode(palette, "PNG", transparency=0)))
    assert decoded[0, 0].tolist() == [255, 255, 255]
    assert decoded[0, 7].tolist() == [0, 255, 0]


@pytest.mark.parametrize("fmt,options", [("PNG", {}), ("WEBP", {"lossless": True})])
def test_rgba_is_composited_over_white(fmt, options):
    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((9, 9), (0, 0, 255, 255))
    rgba.putpixel((0, 9), (0, 0, 0, 128))  # half-transparent black
    decoded = open_rgb(encode(rgba, fmt, **options))
    assert decoded.mode == "RGB"
    array = pixels(decoded)
    assert array[0, 0].tolist() == [255, 255, 255]
    assert array[9, 9].tolist() == [0, 0, 255]
    assert np.all(np.abs(array[9, 0] - 127) <= 2)


def test_greyscale_modes_become_rgb_with_equal_channels():
    for image in (Image.new("L", (6, 5), 77), Image.new("LA", (6, 5), (77, 255))):
        array = pixels(open_rgb(encode(image, "PNG")))
        assert array.shape == (5, 6, 3)
        assert np.all(array == 77)
    assert np.all(pixels(open_rgb(encode(Image.new("1", (6, 5), 1), "PNG"))) == 255)


def test_sixteen_bit_greyscale_is_scaled_to_eight_bits():
    values = np.array([[0, 32768, 65535]], dtype=np.uint16).repeat(4, axis=0)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    data = encode(image, "PNG")
    with Image.open(io.BytesIO(data)) as reopened:
        assert reopened.mode.startswith("I")  # the file really is 16-bit
    decoded = open_rgb(data)
    assert decoded.mode == "RGB"
    assert pixels(decoded)[0, :, 0].tolist() == [0, 128, 255]


def test_cmyk_jpeg_becomes_rgb():
    decoded = open_rgb(encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=95))
    assert decoded.mode == "RGB"
    red, green, blue = pixels(decoded)[4, 4]
    assert red > 200 and green < 50 and blue < 50


def test_animated_gif_uses_its_first_frame(tmp_path):
    data = animated_gif()
    with Image.open(io.BytesIO(data)) as check:
        assert check.n_frames == 3
    assert pixels(open_rgb(data))[8, 8].tolist() == [255, 0, 0]
    path = tmp_path / "anim.gif"
    path.write_bytes(data)
    assert pixels(open_rgb(path))[8, 8].tolist() == [255, 0, 0]
    # An already opened image left on a later frame is still read from its first frame.
    with Image.open(io.BytesIO(data)) as opened:
        opened.seek(2)
        assert pixels(open_rgb(opened))[8, 8].tolist() == [255, 0, 0]


# ------------------------------------------------------------------------------------------- damaged input


def noisy_image(size=64):
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file_is_an_error_not_a_grey_image(fmt, tmp_path):
    data = encode(noisy_image(), fmt)
    with pytest.raises(ImageDecodeError, match="truncated"):
        open_rgb(data[: len(data) // 2])
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError, match="truncated"):
        open_rgb(path)


def test_every_truncation_of_an_animated_gif_decodes_or_raises_image_decode_error():
    # Pillow's GIF reader raises IndexError or struct.error on some cut points; none may escape.
    data = animated_gif()
    failures = 0
    for length in range(1, len(data)):
        try:
            open_rgb(data[:length])
        except ImageDecodeError:
            failures += 1
    assert failures > 0


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data", "ignore:Truncated File Read")
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF"])
def test_every_truncation_raises_only_image_decode_error(fmt):
    data = encode(noisy_image(24), fmt)
    step = max(1, len(data) // 150)
    refused = 0
    for length in range(1, len(data) - 16, step):
        try:
            open_rgb(data[:length])
        except ImageDecodeError:  # anything else fails the test
            refused += 1
    # Nearly every cut must be refused (a cut inside trailing metadata may still decode in full).
    assert refused >= 0.9 * len(range(1, len(data) - 16, step))


@pytest.mark.parametrize("subsampling", [0, 2], ids=["4:4:4", "4:2:0"])
@pytest.mark.parametrize("kept", [0.3, 0.6, 0.9])
def test_a_cut_jpeg_with_an_end_marker_appended_is_refused_not_scored_half_grey(subsampling, kept):
    buffer = io.BytesIO()
    Image.fromarray(imagegen.make_array("real", 200, seed=3)).save(
        buffer, format="JPEG", quality=90, subsampling=subsampling
    )
    data = buffer.getvalue()
    cut = data[: int(len(data) * kept)] + b"\xff\xd9"  # EOI: the file looks complete to Pillow
    with pytest.raises(ImageDecodeError, match="truncated JPEG"):
        open_rgb(cut)
    assert open_rgb(data).size == (200, 200)


def test_a_photo_with_a_grey_band_that_is_not_flat_still_decodes():
    # Mid-grey with sensor noise at the bottom is a picture, not missing data.
    array = imagegen.make_array("real", 64, seed=4)
    array[-16:] = np.clip(128 + np.random.default_rng(0).normal(0, 4, array[-16:].shape), 0, 255)
    assert open_rgb(encode(Image.fromarray(array.astype(np.uint8)), "JPEG")).size == (64, 64)


def test_damaged_png_header_is_an_image_decode_error():
    data = bytearray(encode(noisy_image(16), "PNG"))
    data[8:12] = (4).to_bytes(4, "big")  # IHDR chunk claims 4 bytes instead of 13
    with pytest.raises(ImageDecodeError):
        open_rgb(bytes(data))


def test_non_image_bytes():
    with pytest.raises(ImageDecodeError, match="not an image"):
        open_rgb(b"this is a text file, not a picture\n" * 10)
    with pytest.raises(ImageDecodeError, match="not an image"):
        open_rgb(b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>')


def test_empty_bytes_and_empty_file(tmp_path):
    with pytest.raises(ImageDecodeError, match="empty"):
        open_rgb(b"")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageDecodeError):
        open_rgb(empty)


def test_missing_file(tmp_path):
    missing = tmp_path / "nowhere.png"
    with pytest.raises(ImageDecodeError, match="no such file") as raised:
        open_rgb(missing)
    assert "nowhere.png" in str(raised.value)
    with pytest.raises(ImageDecodeError, match="no such file"):
        open_rgb(tmp_path)  # a folder is not an image file


@pytest.mark.parametrize("fmt", ["ICO", "PPM", "TGA"])
def test_unsupported_format_is_refused_by_name(fmt, tmp_path):
    path = tmp_path / f"image.{fmt.lower()}"
    Image.new("RGB", (32, 32), (9, 9, 9)).save(path, format=fmt)
    with pytest.raises(ImageDecodeError, match=f"unsupported image format {fmt}") as raised:
        open_rgb(path)
    assert "JPEG" in str(raised.value) and "PNG" in str(raised.value)  # says what would work


# ------------------------------------------------------------------------------------------- pixel limits


def test_pixel_limit_is_inclusive():
    data = encode(Image.new("RGB", (300, 200), (1, 2, 3)), "PNG")
    assert open_rgb(data, max_pixels=60_000).size == (300, 200)
    with pytest.raises(ImageDecodeError, match="over the limit") as raised:
        open_rgb(data, max_pixels=59_999)
    assert "300x200" in str(raised.value)


def test_large_header_small_file_is_refused_before_decoding():
    # 81 megapixels of one grey: under 100 kB on disk, 243 MB once decoded to RGB.
    data = encode(Image.new("L", (9000, 9000), 128), "PNG")
    assert len(data) < 200_000
    assert DEFAULT_MAX_PIXELS < 9000 * 9000
    start = time.perf_counter()
    with pytest.raises(ImageDecodeError, match="over the limit"):
        open_rgb(data)
    with pytest.raises(ImageDecodeError, match="over the limit"):
        open_rgb(data, max_pixels=1_000_000)
    assert time.perf_counter() - start < 1.0


def test_decompression_bomb_is_refused_quickly():
    # 400 megapixels in about 50 kB: Pillow's own bomb check fires at open time.
    data = encode(Image.new("1", (20000, 20000)), "PNG", compress_level=9)
    assert len(data) < 200_000
    start = time.perf_counter()
    with pytest.raises(ImageDecodeError, match="too many pixels"):
        open_rgb(data)
    assert time.perf_counter() - start < 1.0


# ------------------------------------------------------------------------------------------- input fitting


def test_input_spec_validation():
    assert InputSpec() == InputSpec(224, "resize")
    with pytest.raises(ValueError, match="input mode"):
        InputSpec(224, "stretch")
    with pytest.raises(ValueError, match="at least 32"):
        InputSpec(16)
    with pytest.raises(ValueError, match="small-image fill"):
        InputSpec(224, "crop", "stretch")


@pytest.mark.parametrize("mode,fill", [("resize", "upscale"), ("crop", "upscale"), ("crop", "mirror")])
@pytest.mark.parametrize("width,height", [(300, 200), (64, 64), (40, 90), (20, 20), (1, 1), (2, 9)])
def test_model_input_shape_and_dtype(mode, fill, width, height):
    data = encode(Image.fromarray(imagegen.make_array("ai", 48)).resize((width, height)), "PNG")
    array = load_model_input(data, InputSpec(64, mode, fill))
    assert array.shape == (64, 64, 3)
    assert array.dtype == np.uint8


def test_resize_keeps_the_whole_image_and_crop_keeps_native_resolution():
    # A 64x64 white square in the middle of a 256x256 black image.
    image = Image.new("RGB", (256, 256), (0, 0, 0))
    image.paste((255, 255, 255), (96, 96, 160, 160))
    cropped = np.asarray(fit_to_input(image, InputSpec(64, "crop")))
    resized = np.asarray(fit_to_input(image, InputSpec(64, "resize")))
    assert np.all(cropped == 255)
    assert resized[0, 0].tolist() == [0, 0, 0] and resized[32, 32].tolist() == [255, 255, 255]
    assert 0.03 < (resized > 128).mean() < 0.1  # about a sixteenth of the image is white


@pytest.mark.parametrize("quality", [5, 30, 50, 51, 75, 90, 100])
def test_the_jpeg_quality_a_file_was_saved_at_is_read_from_its_tables(quality):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8))
    assert open_image(encode(image, "JPEG", quality=quality))[1] == quality
    assert open_image(encode(image, "PNG"))[1] is None and open_image(encode(image, "WEBP"))[1] is None
    # A JPEG already opened in memory is read the same way; a picture made in memory has no file.
    assert open_image(Image.open(io.BytesIO(encode(image, "JPEG", quality=quality))))[1] == quality
    assert open_image(image)[1] is None


def test_an_image_meets_the_first_condition_that_holds_for_it():
    spec = InputSpec(96, "crop")
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (80, 120, 3), dtype=np.uint8))
    traits = [read_model_input(data, spec)[1] for data in (
        encode(image, "JPEG", quality=40),  # short side 80 > 64: not small; q40: heavily compressed
        encode(image, "JPEG", quality=60),
        encode(image.resize((60, 40)), "JPEG", quality=40),  # both: small decides
        encode(image, "PNG"),
    )]  # fmt: skip
    assert traits == [InputTraits(False, 40), InputTraits(False, 60), InputTraits(True, 40), InputTraits()]
    assert [t.condition for t in traits] == ["compressed_image", None, "small_image", None]
    assert (
        read_model_input(encode(image.resize((60, 40)), "PNG"), InputSpec(96, "resize"))[1].condition is None
    )


def test_the_copies_a_condition_rule_is_fitted_on_meet_its_condition():
    spec = InputSpec(384, "crop")
    photo = encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (600, 900, 3), dtype=np.uint8)))
    for condition in ("small_image", "compressed_image"):
        copy = condition_copy(condition, spec.size)
        assert read_model_input(copy.apply(photo), spec)[1].condition == condition
    assert (
        condition_copy("compressed_image", 384).max_side,
        condition_copy("small_image", 384).max_side,
    ) == (512, 256)
    with pytest.raises(ValueError, match="no such image condition"):
        condition_copy("blurry", 384)


def test_crop_of_a_small_image_upsamples_instead_of_padding():
    # 40x40: black top half, white bottom half. A crop that padded would leave black corners.
    image = Image.new("RGB", (40, 40), (0, 0, 0))
    image.paste((255, 255, 255), (0, 20, 40, 40))
    cropped = np.asarray(fit_to_input(image, InputSpec(64, "crop")))
    assert cropped.shape == (64, 64, 3)
    assert cropped[63, 0].tolist() == [255, 255, 255] and cropped[63, 63].tolist() == [255, 255, 255]
    assert cropped[0, 0].tolist() == [0, 0, 0]


def test_mirror_fill_shows_a_small_image_at_native_resolution():
    # Random pixels: any resampling would change them; mirroring keeps every one and reflects the edges.
    pixels = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    window = np.asarray(fit_to_input(Image.fromarray(pixels), InputSpec(64, "crop", "mirror")))
    assert window.shape == (64, 64, 3)
    top, left = (64 - 40) // 2, (64 - 50) // 2
    np.testing.assert_array_equal(window[top : top + 40, left : left + 50], pixels)
    # reflected about the edge row and column
    np.testing.assert_array_equal(window[top - 1, left : left + 50], pixels[1])
    np.testing.assert_array_equal(window[top : top + 40, left - 3], pixels[:, 3])


def test_mirror_fill_leaves_a_large_image_as_the_upscale_fill_does():
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (90, 120, 3), dtype=np.uint8))
    mirrored = np.asarray(fit_to_input(image, InputSpec(64, "crop", "mirror")))
    np.testing.assert_array_equal(mirrored, np.asarray(fit_to_input(image, InputSpec(64, "crop"))))


def test_ensure_min_side_keeps_the_aspect_ratio():
    assert ensure_min_side(Image.new("RGB", (40, 80)), 64).size == (64, 128)
    assert ensure_min_side(Image.new("RGB", (100, 70)), 64).size == (100, 70)
    assert ensure_min_side(Image.new("RGB", (40, 80)), 64, "mirror").size == (64, 80)


@pytest.mark.parametrize("mode", ["resize", "crop"])
@pytest.mark.parametrize("width,height", [(1, 7000), (7000, 1), (1, 5_000_000), (100, 1601)])
def test_strips_are_refused_before_any_resampling(mode, width, height):
    # A 1 x 7000 PNG is 112 bytes; upscaling it to a 256-px crop would need gigabytes.
    strip = Image.new("L", (width, height))
    with pytest.raises(ImageDecodeError, match="aspect ratio over 16:1"):
        fit_to_input(strip, InputSpec(256, mode))
    with pytest.raises(ImageDecodeError, match="aspect ratio"):
        ensure_min_side(strip, 256)
    with pytest.raises(ImageDecodeError, match="aspect ratio"):
        ensure_min_side(strip, 256, "mirror")


def test_a_wide_panorama_within_the_limit_is_scored():
    assert fit_to_input(Image.new("RGB", (1600, 100)), InputSpec(64, "crop")).size == (64, 64)


@pytest.mark.parametrize("side", [9000, 20000])  # under and over Pillow's own bomb limit (179 MP)
def test_every_bomb_gets_the_same_message_and_no_raw_warning(side):
    data = encode(Image.new("1", (side, side)), "PNG", compress_level=9)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(
            ImageDecodeError, match=r"image has too many pixels: .*over the limit of 50,000,000"
        ):
            open_rgb(data)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


# Decoding memory is measured in child processes: one makes the files, each decode runs alone in another.
MAKE_HOSTILE_IMAGES = """
import sys
from PIL import Image
folder, side = sys.argv[1], 7071  # 50 megapixels: just under the pixel limit
Image.new("I;16", (side, side), 1000).save(f"{folder}/grey16.png")
Image.new("F", (side, side), 0.5).save(f"{folder}/float.tif", compression="tiff_deflate")
Image.new("RGBA", (side, side), (10, 20, 30, 128)).save(f"{folder}/alpha.png")
Image.new("P", (side, side), 3).save(f"{folder}/palette.png", transparency=3)
Image.new("L", (1, 50_000_000)).save(f"{folder}/strip.png")
Image.new("RGB", (side, side), (90, 120, 150)).save(f"{folder}/progressive.jpg", quality=95, progressive=True)
"""
DECODE_AND_MEASURE = """
import resource, sys
from realcheck.model.errors import ImageDecodeError
from realcheck.model.data.imaging import open_rgb
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    size = open_rgb(data).size
except ImageDecodeError as error:
    size = str(error)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024, size)
"""


def test_decoding_any_mode_at_the_pixel_limit_costs_at_most_600_mb(tmp_path):
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", MAKE_HOSTILE_IMAGES, str(tmp_path)], check=True, timeout=300)
    for name in ("grey16.png", "float.tif", "alpha.png", "palette.png", "progressive.jpg", "strip.png"):
        done = subprocess.run(
            [sys.executable, "-c", DECODE_AND_MEASURE, str(tmp_path / name)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        grown_mb, _, outcome = done.stdout.strip().partition(" ")
        assert done.returncode == 0 and int(grown_mb) <= 600, (name, done.stdout, done.stderr[-2000:])
        if name == "strip.png":  # refused from its header, before a pixel is decoded
            assert "aspect ratio" in outcome and int(grown_mb) < 50, outcome
        else:
            assert outcome == "(7071, 7071)", outcome


def progressive_jpeg(subsampling: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(imagegen.make_array("real", 200, seed=3)).save(
        buffer, format="JPEG", quality=90, progressive=True, subsampling=subsampling
    )
    return buffer.getvalue()


@pytest.mark.parametrize("subsampling", [0, 2], ids=["4:4:4", "4:2:0"])
def test_a_progressive_jpeg_that_lost_whole_scans_is_refused(subsampling):
    data = progressive_jpeg(subsampling)
    assert open_rgb(data).size == (200, 200)
    last_scan = data.rindex(b"\xff\xda")
    for cut in (data[:last_scan], data[: data.index(b"\xff\xda", data.index(b"\xff\xda") + 2)]):
        with pytest.raises(ImageDecodeError, match="truncated progressive JPEG: its later scans are missing"):
            open_rgb(cut + b"\xff\xd9")  # EOI appended: the file looks complete to Pillow


@pytest.mark.parametrize("subsampling", [0, 2], ids=["4:4:4", "4:2:0"])
def test_a_progressive_jpeg_cut_inside_its_last_scan_is_refused(subsampling):
    data = progressive_jpeg(subsampling)
    last_scan = data.rindex(b"\xff\xda")
    cut = (
        data[: (last_scan + len(data)) // 2] + b"\xff\xd9"
    )  # every scan header there, the last one's data half
    with pytest.raises(ImageDecodeError, match="the data of its last scan ends early"):
        open_rgb(cut)
