"""Per-image work, pure: sniff, guard, decode, measure, hash. No Spark here.

:func:`inspect_image` turns the bytes of one file into either an :class:`ImageFacts` (everything
``femo.images`` stores about it) or a :class:`Rejection` with a machine-readable reason. It never
raises on bad bytes: every way a file can be wrong is a reason.

The header is read with Pillow (format and size without decoding the pixels), so the
decompression-bomb guard runs before any pixel is decoded; the pixels are decoded with OpenCV.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

#: Machine-readable quarantine reasons for image bytes.
EMPTY_FILE: Final = "empty_file"
NOT_AN_IMAGE: Final = "not_an_image"
UNSUPPORTED_FORMAT: Final = "unsupported_format"
TOO_MANY_PIXELS: Final = "too_many_pixels"
TOO_SMALL: Final = "too_small"
TRUNCATED: Final = "truncated"
UNDECODABLE: Final = "undecodable"
FILE_TOO_LARGE: Final = "file_too_large"

#: Formats femo decodes, by Pillow's name for them, and the name femo stores.
FORMATS: Final[dict[str, str]] = {
    "JPEG": "jpeg",
    "PNG": "png",
    "GIF": "gif",
    "BMP": "bmp",
    "WEBP": "webp",
    "TIFF": "tiff",
    "PPM": "pnm",
    "ICO": "ico",
    "TGA": "tga",
    "PCX": "pcx",
}

#: Of those, the ones OpenCV cannot decode (web searches return GIFs): Pillow decodes their
#: first frame instead.
PILLOW_DECODED: Final = frozenset({"gif", "ico", "tga", "pcx"})

Pixels = npt.NDArray[Any]

#: Leading bytes of the formats above: a file that has one but no readable header is truncated.
_SIGNATURES: Final = (
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"II*\x00",
    b"MM\x00*",
)

GRAYSCALE: Final = "grayscale"
COLOR: Final = "color"


@dataclass(frozen=True)
class Limits:
    """Guards applied to every image."""

    max_pixels: int = 40_000_000
    min_side: int = 8
    grayscale_tolerance: int = 2


@dataclass(frozen=True)
class Rejection:
    """Why a file is not an acceptable image."""

    reason: str
    detail: str


@dataclass(frozen=True)
class ImageFacts:
    """What femo records about an acceptable image."""

    image_id: str
    format: str
    height: int
    width: int
    channels: int
    color_space: str
    aspect_ratio: float
    file_size_bytes: int
    brightness: float
    contrast: float
    sharpness: float
    phash: int

    def as_dict(self) -> dict[str, Any]:
        """Field name to value."""
        return asdict(self)


def sha256_hex(data: bytes) -> str:
    """Content id: the SHA-256 of the bytes, lower-case hex."""
    return hashlib.sha256(data).hexdigest()


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)


def sniff(data: bytes) -> tuple[str, int, int] | Rejection:
    """Format, width and height from the header only (no pixels decoded)."""
    if not data:
        return Rejection(EMPTY_FILE, "0 bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt, (width, height) = img.format or "", img.size
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        if isinstance(exc, Image.DecompressionBombError):
            return Rejection(TOO_MANY_PIXELS, str(exc).split(" pixels")[0])
        if data.startswith(_SIGNATURES):
            return Rejection(
                TRUNCATED,
                f"image signature {data[:4].hex()} but the header is cut"
                f" short ({len(data)} bytes)",
            )
        kind = "text" if _looks_like_text(data[:256]) else f"bytes {data[:8].hex()}"
        return Rejection(NOT_AN_IMAGE, f"no image signature; starts with {kind}")
    except (OSError, ValueError, SyntaxError) as exc:  # a header Pillow recognises but cannot read
        reason = TRUNCATED if "truncated" in str(exc).lower() else UNDECODABLE
        return Rejection(reason, f"bad header: {exc}")
    if fmt not in FORMATS:
        return Rejection(UNSUPPORTED_FORMAT, f"{fmt or 'unknown'} is not a format femo decodes")
    return FORMATS[fmt], width, height


def _complete(fmt: str, data: bytes) -> bool:
    """Whether the bytes end the way a whole file of ``fmt`` ends."""
    tail = data[-64:]
    if fmt == "jpeg":
        return data.rstrip(b"\x00\r\n ")[-2:] == b"\xff\xd9"
    if fmt == "png":
        return b"IEND" in tail
    if fmt == "gif":
        return data.rstrip(b"\x00")[-1:] == b"\x3b"
    return True


def first_frame(data: bytes) -> Pixels | None:
    """The first frame as OpenCV lays pixels out (gray, BGR or BGRA), or None if Pillow cannot
    decode it."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.seek(0)
            alpha = "A" in img.getbands() or "transparency" in img.info
            if img.mode in ("1", "L", "I", "I;16", "F"):
                return np.asarray(img.convert("L"))
            rgb = np.asarray(img.convert("RGBA" if alpha else "RGB"))
    except (OSError, ValueError, SyntaxError, EOFError):
        return None
    return cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGRA if alpha else cv2.COLOR_RGB2BGR)


def decode(data: bytes, fmt: str) -> Pixels | None:
    """The pixels of an image of format ``fmt`` (as :func:`sniff` names it): OpenCV's decoder,
    or Pillow's first frame for :data:`PILLOW_DECODED`; None when it cannot be decoded."""
    if fmt in PILLOW_DECODED:
        return first_frame(data)
    pixels: Pixels | None = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return pixels


def _to_uint8(pixels: Pixels) -> Pixels:
    """8-bit copy of 16-bit or float pixels (metrics are on the 0-255 scale)."""
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        return (pixels >> 8).astype(np.uint8)
    values = pixels.astype(np.float64)
    low, span = float(values.min()), float(np.ptp(values)) or 1.0
    return ((values - low) * (255.0 / span)).astype(np.uint8)


def _gray_and_space(pixels: Pixels, tolerance: int) -> tuple[Pixels, int, str]:
    """Grayscale copy, channel count and colour space (judged on the pixels, not the header)."""
    if pixels.ndim == 2:
        return pixels, 1, GRAYSCALE
    channels = pixels.shape[2]
    if channels == 1:
        return pixels[:, :, 0], 1, GRAYSCALE
    bgr = pixels[:, :, :3]
    b, g, r = (bgr[:, :, i].astype(np.int16) for i in range(3))
    spread = max(int(np.abs(b - g).max()), int(np.abs(g - r).max()))
    gray = cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2GRAY)
    return gray, channels, GRAYSCALE if spread <= tolerance else COLOR


def perceptual_hash(gray: Pixels) -> int:
    """64-bit DCT perceptual hash (pHash) as a signed 64-bit integer.

    The image is shrunk to 32x32, transformed with a 2-D DCT, and each of the 8x8 lowest
    frequencies becomes one bit: set when above their median. Near-duplicates differ in few bits
    (``bit_count(a ^ b)`` in SQL).
    """
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    packed = np.packbits(low > np.median(low))  # 8 bytes, first bit most significant
    return int(np.frombuffer(packed.tobytes(), dtype=">i8")[0])


def inspect_image(data: bytes, limits: Limits | None = None) -> ImageFacts | Rejection:
    """Everything femo records about one file's bytes, or why it is rejected."""
    limits = limits or Limits()
    sniffed = sniff(data)
    if isinstance(sniffed, Rejection):
        return sniffed
    fmt, width, height = sniffed
    if width * height > limits.max_pixels:
        return Rejection(
            TOO_MANY_PIXELS, f"{width}x{height} = {width * height} pixels > {limits.max_pixels}"
        )
    if min(width, height) < limits.min_side:
        return Rejection(TOO_SMALL, f"{width}x{height} is under {limits.min_side} px a side")
    if not _complete(fmt, data):
        return Rejection(TRUNCATED, f"{fmt} data ends before the end-of-image marker")
    pixels = decode(data, fmt)
    if pixels is None or pixels.size == 0:
        return Rejection(UNDECODABLE, f"could not decode this {fmt}")
    if pixels.shape[0] != height or pixels.shape[1] != width:
        return Rejection(
            UNDECODABLE,
            f"header says {width}x{height}, pixels are " f"{pixels.shape[1]}x{pixels.shape[0]}",
        )
    gray, channels, space = _gray_and_space(_to_uint8(pixels), limits.grayscale_tolerance)
    mean, std = cv2.meanStdDev(gray)
    _, edges = cv2.meanStdDev(cv2.Laplacian(gray, cv2.CV_64F))
    return ImageFacts(
        image_id=sha256_hex(data),
        format=fmt,
        height=height,
        width=width,
        channels=channels,
        color_space=space,
        aspect_ratio=round(width / height, 6),
        file_size_bytes=len(data),
        brightness=float(mean[0][0]),
        contrast=float(std[0][0]),
        sharpness=float(edges[0][0]) ** 2,
        phash=perceptual_hash(gray),
    )
