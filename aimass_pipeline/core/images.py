"""Image files into the contract's pixel columns: one decoder for landing and serving, so a served image is
read exactly as a landed one was.

The pixel count is checked from the header before any pixel is decoded (a decompression bomb declares
billions of pixels in a few hundred bytes); a refused image raises ImageRefused with the rule it broke.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy and Pillow load only where images are read: specs import this module
    import numpy as np

    from aimass_pipeline.core.specs import ImageSpec

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Modes that convert to grey or RGB without guessing a scale (16-bit, float and CMYK do not).
CONVERTIBLE_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA")

NOT_IMAGE = "image.not_image"
CORRUPT = "image.corrupt"
BOMB = "image.bomb"
MODE = "image.mode"
TOO_LARGE = "image.too_large"


@dataclass(frozen=True)
class ImageLimits:
    """What one image and one archive may weigh; over a limit is refused, never decoded."""

    max_image_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 4096 * 4096
    max_archive_bytes: int = 512 * 1024 * 1024
    max_members: int = 200_000


LIMITS = ImageLimits()


class ImageRefused(ValueError):
    """An image that cannot become pixel columns, with the rule it broke."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


def image_format(data: bytes) -> str | None:
    if data.startswith(PNG_MAGIC):
        return "PNG"
    if data.startswith(JPEG_MAGIC):
        return "JPEG"
    return None


def decode(data: bytes, spec: ImageSpec, limits: ImageLimits = LIMITS) -> np.ndarray:
    """The image's values in the contract's range, flat in column order (row, column, channel)."""
    return scale(decode_pixels(data, spec, limits), spec)


def decode_pixels(data: bytes, spec: ImageSpec, limits: ImageLimits = LIMITS) -> np.ndarray:
    """The image's 8-bit pixels in the declared channels and shape, flat; ``scale`` maps them (one image
    or a stack of them at once) to the contract's range."""
    from PIL import Image

    if len(data) > limits.max_image_bytes:
        raise ImageRefused(TOO_LARGE, f"{len(data)} bytes, over the limit of {limits.max_image_bytes}")
    fmt = image_format(data)
    if fmt is None:
        raise ImageRefused(NOT_IMAGE, "neither PNG nor JPEG content (no PNG or JPEG signature)")
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb guard only warns below twice its limit: ours is checked next, exactly.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[fmt])
        width, height = image.size
        if width * height > limits.max_pixels:
            raise ImageRefused(
                BOMB, f"declares {width}x{height} = {width * height} pixels, over {limits.max_pixels}"
            )
        if image.mode not in CONVERTIBLE_MODES:
            raise ImageRefused(MODE, f"mode {image.mode!r} is not one of {', '.join(CONVERTIBLE_MODES)}")
        image.load()
    except ImageRefused:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageRefused(BOMB, str(exc)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRefused(CORRUPT, f"truncated or corrupt {fmt}: {exc}") from None
    return _pixels(image, spec)


def _pixels(image: object, spec: ImageSpec) -> np.ndarray:
    import numpy as np
    from PIL import Image

    rows, cols = spec.shape
    mode = "L" if spec.channels == 1 else "RGB"
    converted = image if image.mode == mode else image.convert(mode)
    if converted.size != (cols, rows):
        converted = converted.resize((cols, rows), Image.Resampling.BILINEAR)
    return np.asarray(converted, dtype=np.uint8).reshape(-1)


def scale(pixels: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """8-bit pixels to the contract's [min, max] (whole numbers for an ``int`` image)."""
    import numpy as np

    values = spec.min + pixels.astype(np.float64) * ((spec.max - spec.min) / 255.0)
    return np.rint(values) if spec.kind == "int" else values


def encode_png(values: np.ndarray, spec: ImageSpec) -> bytes:
    """Values in the contract's range (rows x cols [x channels]) as a PNG that ``decode`` reads back
    exactly when the range has at most 256 whole steps (digits' 0..16 does)."""
    import numpy as np
    from PIL import Image

    scaled = (np.asarray(values, dtype=np.float64) - spec.min) * (255.0 / (spec.max - spec.min))
    pixels = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    rows, cols = spec.shape
    shape = (rows, cols) if spec.channels == 1 else (rows, cols, 3)
    buffer = io.BytesIO()
    Image.fromarray(pixels.reshape(shape)).save(buffer, "PNG")
    return buffer.getvalue()


def image_spec_of(contract: object) -> ImageSpec | None:
    """The image layout a contract's features spell (``ImageSpec.columns``), or None when its features are
    not exactly one image's pixel columns. Ingestion and serving read it from the contract they hold."""
    import re

    from aimass_pipeline.core.specs import ImageSpec

    features = contract.features
    first = re.fullmatch(r"(.+)_0_0(_0)?", features[0].name) if features else None
    if first is None or features[0].kind not in ("int", "float"):
        return None
    last = re.fullmatch(rf"{re.escape(first.group(1))}_(\d+)_(\d+)(?:_(\d+))?", features[-1].name)
    if last is None:
        return None
    try:
        spec = ImageSpec(
            shape=(int(last.group(1)) + 1, int(last.group(2)) + 1),
            prefix=first.group(1),
            kind=features[0].kind,
            min=features[0].min if features[0].min is not None else 0,
            max=features[0].max if features[0].max is not None else 255,
            channels=int(last.group(3)) + 1 if last.group(3) else 1,
            source="files",
        )
    except ValueError:
        return None
    expected = [(c.name, c.kind, c.min, c.max) for c in spec.columns()]
    if expected != [(c.name, c.kind, c.min, c.max) for c in features]:
        return None
    return spec
