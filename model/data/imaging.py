"""The one decode path: every consumer (training, evaluation, server, app) turns bytes into pixels here.

Decoding is deliberately strict and bounded: the pixel count is checked from the header before any pixel is
decoded (decompression bombs), truncated files are errors rather than half-grey images, and every colour
mode ends as 8-bit RGB with EXIF orientation applied.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from realcheck.model.errors import ImageDecodeError
from realcheck.model.settings import DEFAULT_MAX_PIXELS, InputSpec

ImageSource = str | Path | bytes | bytearray | memoryview | Image.Image

# Formats Pillow decodes without external delegates; anything else is refused up front.
SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
# Wider than any panorama: a model input from a 1 x 7000 strip is noise, and upscaling it to a crop would
# cost gigabytes.
MAX_ASPECT_RATIO = 16


def is_image_file(path: Path) -> bool:
    """True for a file whose suffix is an image format RealCheck reads."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def open_rgb(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode an image to 8-bit RGB with EXIF orientation applied; the first frame of animations.

    Raises ImageDecodeError (with a message naming the problem) for non-images, unsupported formats,
    truncated or corrupt data and images of more than `max_pixels` pixels.
    """
    return open_image(source, max_pixels)[0]


def open_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[Image.Image, int | None]:
    """`open_rgb`'s image, and the JPEG quality its file was saved at (`jpeg_quality`; None for other
    formats), read from the file's tables before they are lost to the conversion."""
    if isinstance(source, Image.Image):
        image = source
    else:
        image = _open(source, max_pixels)
        if image.format not in SUPPORTED_FORMATS:
            raise ImageDecodeError(
                f"unsupported image format {image.format}; use one of {', '.join(sorted(SUPPORTED_FORMATS))}"
            )
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageDecodeError("image has no pixels")
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"image has too many pixels: {width}x{height} = {width * height:,}, over the limit of {max_pixels:,}"
        )
    check_aspect_ratio(image)  # from the header: a 1 x 50,000,000 strip is refused before it is decoded
    try:
        if getattr(image, "is_animated", False):
            image.seek(0)
        # Truncated files must fail, not decode as partly grey images.
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
        cut_short = _looks_cut_short(image)
        progressive_cut = _progressive_cut_short(source, image)
        quality = jpeg_quality(image)
        image = ImageOps.exif_transpose(image)
        rgb = _to_rgb(image)
    except ImageDecodeError:
        raise
    except Exception as error:
        # Pillow's format plugins raise more than OSError on damaged data (a truncated animated GIF gives
        # IndexError or struct.error), and no damaged file may escape as anything but ImageDecodeError.
        raise ImageDecodeError(f"corrupt or truncated image data ({error})") from error
    if cut_short:
        raise ImageDecodeError(
            "truncated JPEG: its last rows are flat grey, what libjpeg fills in when the data ends early"
        )
    if progressive_cut:
        raise ImageDecodeError(f"truncated progressive JPEG: {progressive_cut}")
    return rgb, quality


# Rows at the bottom of a baseline JPEG that, all flat mid-grey, mean the data ended early: libjpeg fills
# every block it has no data for with zero coefficients (grey 128) and only warns, even when an end
# marker was appended to hide the cut. A real photo has noise in every row.
CUT_SHORT_GREY_ROWS = 4


def _looks_cut_short(image: Image.Image) -> bool:
    if image.format not in {"JPEG", "MPO"} or image.info.get("progressive") or image.info.get("progression"):
        return False
    if image.height < 2 * CUT_SHORT_GREY_ROWS:
        return False
    bottom = np.asarray(image.crop((0, image.height - CUT_SHORT_GREY_ROWS, image.width, image.height)))
    return bool(np.all(np.abs(bottom.astype(np.int16) - 128) <= 1))


def _progressive_cut_short(source: ImageSource, image: Image.Image) -> str | None:
    """Why a progressive JPEG was cut short (None when it was not).

    Its scans refine the picture in passes; libjpeg shows whatever passes arrived, only warning (and an end
    marker appended after a cut hides the cut from Pillow). Two checks: a complete file's scans cover, for
    each component, the DC and AC coefficients 1-63 at full precision (successive approximation bit 0);
    and libjpeg-turbo, asked to treat warnings as errors (simplejpeg, strict, at 1/8 scale so it costs
    little), finds no scan whose data stops early.
    """
    if image.format not in {"JPEG", "MPO"} or not (
        image.info.get("progressive") or image.info.get("progression")
    ):
        return None
    if isinstance(source, Image.Image):
        return None
    data = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else Path(source).read_bytes()
    scans = _jpeg_scans(data)
    components = {component for scan in scans for component in scan[0]}
    finished = {
        (component, index)
        for ids, start, end, low in scans
        if low == 0
        for component in ids
        for index in range(start, end + 1)
    }
    if not components or any(
        (component, index) not in finished for component in components for index in range(64)
    ):
        return "its later scans are missing"
    import simplejpeg

    try:
        simplejpeg.decode_jpeg(data, colorspace="GRAY", fastdct=True, min_factor=8, strict=True)
    except ValueError as error:  # other warnings (extraneous bytes, colour spaces) are not cuts
        if "premature end" in str(error).lower():
            return "the data of its last scan ends early"
    return None


def _jpeg_scans(data: bytes) -> list[tuple[tuple[int, ...], int, int, int]]:
    """(component ids, Ss, Se, Al) of each scan (SOS) of a JPEG, walking marker segments and skipping the
    entropy-coded data between them (stuffed 0xFF00 bytes and restart markers are part of it)."""
    scans = []
    position = 2  # after SOI
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return scans
        marker = data[position + 1]
        if marker == 0xD9:  # EOI
            return scans
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        segment = data[position + 4 : position + 2 + length]
        position += 2 + length
        if marker != 0xDA:
            continue
        count = segment[0] if segment else 0
        ids = tuple(segment[1 + 2 * index] for index in range(count) if 1 + 2 * index < len(segment))
        tail = segment[1 + 2 * count : 4 + 2 * count]
        if len(tail) == 3:
            scans.append((ids, tail[0], min(tail[1], 63), tail[2] & 0x0F))
        while True:  # the entropy-coded data runs to the next marker that is not a stuffed byte or RSTn
            position = data.find(b"\xff", position)
            if position < 0 or position + 1 >= len(data):
                return scans
            following = data[position + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                position += 1 if following == 0xFF else 2
                continue
            break
    return scans


def _open(source: ImageSource, max_pixels: int) -> Image.Image:
    try:
        # Pillow warns on stderr above its own limit; RealCheck's lower limit is checked right after.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if isinstance(source, (bytes, bytearray, memoryview)):
                if len(source) == 0:
                    raise ImageDecodeError("empty file: no image data")
                return Image.open(io.BytesIO(bytes(source)))
            path = Path(source)
            if not path.is_file():
                raise ImageDecodeError(f"no such file: {path}")
            return Image.open(path)
    except UnidentifiedImageError as error:
        raise ImageDecodeError(
            "not an image, or a format RealCheck cannot read (it reads JPEG, PNG, WebP, GIF, BMP and TIFF)"
        ) from error
    except Image.DecompressionBombError as error:
        # The same wording as RealCheck's own check, whichever limit fired first.
        raise ImageDecodeError(
            f"image has too many pixels: more than {2 * Image.MAX_IMAGE_PIXELS:,}, over the limit of {max_pixels:,}"
        ) from error
    except ImageDecodeError:
        raise
    except Exception as error:  # OSError, and ValueError from a damaged header ("Truncated IHDR chunk")
        raise ImageDecodeError(f"corrupt or truncated image data, cannot read it ({error})") from error


# Rows converted at a time: the conversions' temporaries stay a few MB whatever the image's size.
CONVERT_ROWS = 256
HIGH_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency is composited over white as browsers show it.

    Memory stays near the decoded image plus the RGB result, whatever the mode: high-bit and transparent
    images are converted a strip of rows at a time, never as whole-image float or RGBA copies.
    """
    if image.mode == "RGB":
        return image
    if image.mode in HIGH_BIT_MODES:
        image = _high_bit_to_grey(image)
    if image.mode == "P" and "transparency" not in image.info:
        return image.convert("RGB")
    if image.mode in ALPHA_MODES or image.mode == "P":
        return _over_white(image)
    return image.convert("RGB")


def _strips(height: int):
    for top in range(0, height, CONVERT_ROWS):
        yield top, min(height, top + CONVERT_ROWS)


def _high_bit_to_grey(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer or float grey -> 8-bit grey, scaled by the mode's range (or 255 when the
    values fit in 8 bits, as some encoders write them)."""
    width, height = image.size
    peak = 65535.0
    if not image.mode.startswith("I;16"):
        highest = image.getextrema()[1]
        peak = 255.0 if highest is None or highest <= 255 else 65535.0
    grey = Image.new("L", (width, height))
    for top, bottom in _strips(height):
        strip = np.array(image.crop((0, top, width, bottom)), dtype=np.float32)  # a writable copy
        np.nan_to_num(strip, copy=False, nan=0.0, posinf=peak, neginf=0.0)
        strip *= 255.0 / peak
        strip += 0.5
        np.clip(strip, 0, 255, out=strip)
        grey.paste(Image.fromarray(strip.astype(np.uint8), "L"), (0, top))
    return grey


def _over_white(image: Image.Image) -> Image.Image:
    """Transparent pixels composited over white, a strip at a time."""
    width, height = image.size
    rgb = Image.new("RGB", (width, height))
    for top, bottom in _strips(height):
        rgba = np.asarray(image.crop((0, top, width, bottom)).convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3:4] / 255.0
        strip = np.clip(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)
        rgb.paste(Image.fromarray(strip, "RGB"), (0, top))
    return rgb


def fit_to_input(image: Image.Image, spec: InputSpec) -> Image.Image:
    """Resize (mode `resize`) or centre-crop at native resolution (mode `crop`) to spec.size square.

    Raises ImageDecodeError for an image too elongated to score (see `check_aspect_ratio`).
    """
    check_aspect_ratio(image)
    size = spec.size
    if spec.mode == "resize":
        if image.size == (size, size):
            return image
        return image.resize((size, size), Image.Resampling.BILINEAR)
    image = ensure_min_side(image, size, spec.fill)
    left = (image.width - size) // 2
    top = (image.height - size) // 2
    return image.crop((left, top, left + size, top + size))


def check_aspect_ratio(image: Image.Image) -> None:
    """Refuse, before any resampling, an image whose long side is over MAX_ASPECT_RATIO times its short side."""
    width, height = image.size
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise ImageDecodeError(
            f"image is {width}x{height} pixels: an aspect ratio over {MAX_ASPECT_RATIO}:1 cannot be scored"
        )


def ensure_min_side(image: Image.Image, size: int, fill: str = "upscale") -> Image.Image:
    """Make both sides at least `size` (crops need that much image): `upscale` resamples the image, keeping its
    aspect ratio; `mirror` reflects it at each short edge, half each side, and resamples nothing."""
    check_aspect_ratio(image)
    short = min(image.size)
    if short >= size:
        return image
    if fill == "mirror":
        pad_y, pad_x = max(0, size - image.height), max(0, size - image.width)
        pixels = np.pad(
            np.asarray(image),
            ((pad_y // 2, pad_y - pad_y // 2), (pad_x // 2, pad_x - pad_x // 2), (0, 0)),
            mode="reflect" if short > 1 else "edge",
        )
        return Image.fromarray(pixels)
    scale = size / short
    new_size = (max(size, round(image.width * scale)), max(size, round(image.height * scale)))
    return image.resize(new_size, Image.Resampling.BILINEAR)


def small_side(window: int) -> int:
    """The shorter side at or under which an image is small for a window: two thirds of it (256 px for 384)."""
    return max(16, window * 2 // 3)


def is_small(size: tuple[int, int], spec: InputSpec) -> bool:
    """Whether an image of `size` (width, height) is small: `spec.fill` has to grow it 1.5 times or more to
    fill the window.

    Such an image scores differently (upscaling reads as a real photo's smoothness), so a model may hold a
    decision rule of its own for it. An image only a little under the window scores as larger ones do: on
    the cross-collection protocol, giving those the small-image rule too caught no more AI images and called
    one more real photo AI.
    """
    return spec.mode == "crop" and min(size) <= small_side(spec.size)


# The IJG's luminance quantisation table at quality 50 (libjpeg, Pillow and most encoders scale it by quality).
_IJG_LUMA = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
     14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    dtype=np.float64,
)  # fmt: skip
# The sum of that table scaled as libjpeg scales it, for each quality 1-100.
_IJG_LUMA_SUMS = np.array(
    [
        np.clip(np.floor((_IJG_LUMA * (5000 / q if q < 50 else 200 - 2 * q) + 50) / 100), 1, 255).sum()
        for q in range(1, 101)
    ]
)


def jpeg_quality(image: Image.Image) -> int | None:
    """The JPEG quality (1-100) an opened file was saved at, estimated from its luminance quantisation table:
    the IJG quality whose scaled table has the nearest sum (exact for libjpeg's tables, the nearest for an
    encoder's own). None when it is not a JPEG."""
    luma = (getattr(image, "quantization", None) or {}).get(0)
    if image.format not in {"JPEG", "MPO"} or not luma:
        return None
    return int(np.argmin(np.abs(_IJG_LUMA_SUMS - float(np.sum(luma))))) + 1


# At or under this estimated JPEG quality a file is heavily compressed: lost detail and block edges move its
# score, so a model may hold a decision rule of its own for it. The cross-collection protocol's 512:40 tier
# is; its 768:60 tier and the collections' own q90 files are not.
HEAVY_COMPRESSION_QUALITY = 50
# The conditions a model may hold a decision rule of its own for (metadata `<condition>_rule`), in the order
# they are tried: the first that holds picks the rule.
IMAGE_CONDITIONS = ("small_image", "compressed_image")


@dataclass(frozen=True)
class InputTraits:
    """What about an image moves its score: small for the model's window (`is_small`), and the JPEG quality
    its file was saved at (`jpeg_quality`, None for other formats)."""

    small: bool = False
    jpeg_quality: int | None = None

    @property
    def condition(self) -> str | None:
        """The first of IMAGE_CONDITIONS that holds for the image, or None."""
        if self.small:
            return "small_image"
        if self.jpeg_quality is not None and self.jpeg_quality <= HEAVY_COMPRESSION_QUALITY:
            return "compressed_image"
        return None


def read_model_input(
    source: ImageSource, spec: InputSpec, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, InputTraits]:
    """Decode one image into the model's input, a uint8 array of shape (size, size, 3), and its traits."""
    image, quality = open_image(source, max_pixels)
    traits = InputTraits(is_small(image.size, spec), quality)
    return np.asarray(fit_to_input(image, spec), dtype=np.uint8), traits


def load_model_input(
    source: ImageSource, spec: InputSpec, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode one image into the model's input: uint8 array of shape (size, size, 3)."""
    return read_model_input(source, spec, max_pixels)[0]


@dataclass(frozen=True)
class WebDegradation:
    """What a photo goes through on the web: shrunk to `max_side` pixels, then re-saved as JPEG `quality`."""

    max_side: int
    quality: int

    def __post_init__(self) -> None:
        if self.max_side < 16 or not 1 <= self.quality <= 100:
            raise ValueError(
                f"degradation needs a longest side of at least 16 px and JPEG quality 1-100, "
                f"got {self.max_side}:{self.quality}"
            )

    @classmethod
    def parse(cls, text: str) -> WebDegradation:
        """`768:60` -> longest side at most 768 px, JPEG quality 60."""
        try:
            side, quality = (int(part) for part in text.split(":"))
        except ValueError:
            raise ValueError(f"expected MAX_SIDE:QUALITY such as 768:60, got {text!r}") from None
        return cls(side, quality)

    def __str__(self) -> str:
        return f"longest side <= {self.max_side} px, JPEG quality {self.quality}"

    def apply(self, source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
        """The degraded copy of an image, as JPEG bytes."""
        image = open_rgb(source, max_pixels)
        if max(image.size) > self.max_side:
            image = image.copy()
            image.thumbnail((self.max_side, self.max_side), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=self.quality)
        return buffer.getvalue()


def model_conditions(spec: InputSpec) -> tuple[str, ...]:
    """The IMAGE_CONDITIONS an image can meet for a model of `spec` (small ones only in crop mode)."""
    return tuple(c for c in IMAGE_CONDITIONS if c != "small_image" or spec.mode == "crop")


def condition_copy(condition: str, window: int) -> WebDegradation:
    """The copies a model's rule for `condition` (IMAGE_CONDITIONS) is fitted on, each of which meets it.

    `small_image`: shrunk to `small_side` on the longer side and saved as JPEG q75 (for a 384-px window, the
    cross-collection protocol's thumbnail tier, 256:75). `compressed_image`: a third over the window on the
    longer side and saved as JPEG q40 (for 384 px, the protocol's 512:40 tier).
    """
    if condition == "small_image":
        return WebDegradation(small_side(window), 75)
    if condition == "compressed_image":
        return WebDegradation(window * 4 // 3, 40)
    raise ValueError(f"no such image condition: {condition!r}; expected one of {IMAGE_CONDITIONS}")
