"""Per-image work, pure: sniff, guard, decode, measure, hash. No Spark here.

:func:`inspect_image` turns the bytes of one file into either an :class:`ImageFacts` (everything
``femo.images`` stores about it) or a :class:`Rejection` with a machine-readable reason. It never
raises on bad bytes: every way a file can be wrong is a reason.

The header is read with Pillow (format, size, channels and sample depth without decoding the
pixels), so the decompression-bomb guard and the memory guard (the bytes the decoded pixels would
take) run before any pixel is decoded; the pixels are decoded with OpenCV. The working copies are
8-bit, made block by block from the decoded pixels (no full-size float copy), so measuring an
image costs no more than decoding it: about twice its decoded bytes, however deep its samples.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, TiffImagePlugin, UnidentifiedImageError

if TYPE_CHECKING:
    from femo.platform.settings import IngestSettings

#: Machine-readable quarantine reasons for image bytes.
EMPTY_FILE: Final = "empty_file"
NOT_AN_IMAGE: Final = "not_an_image"
UNSUPPORTED_FORMAT: Final = "unsupported_format"
TOO_MANY_PIXELS: Final = "too_many_pixels"
TOO_SMALL: Final = "too_small"
TRUNCATED: Final = "truncated"
UNDECODABLE: Final = "undecodable"
FILE_TOO_LARGE: Final = "file_too_large"
DECODED_TOO_LARGE: Final = "decoded_too_large"

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
    #: Largest decoded image, in bytes (width x height x channels x bytes per channel).
    max_decoded_bytes: int = 200_000_000

    @classmethod
    def from_settings(cls, ingest: IngestSettings, min_side: int | None = None) -> Limits:
        """The guards the ``ingest`` settings name; ``min_side`` overrides theirs."""
        return cls(
            max_pixels=ingest.max_pixels,
            min_side=ingest.min_side if min_side is None else min_side,
            grayscale_tolerance=ingest.grayscale_tolerance,
            max_decoded_bytes=ingest.max_decoded_bytes,
        )


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


@dataclass(frozen=True)
class Header:
    """What an image's header declares, read without decoding a pixel."""

    format: str
    width: int
    height: int
    #: Channels the decoder produces (a palette expands to BGR, BGRA with a transparent colour).
    channels: int
    #: Bytes per channel of the decoded pixels: 1 for 8-bit, 2 for 16-bit, 4 or 8 for float.
    sample_bytes: int

    @property
    def decoded_bytes(self) -> int:
        """Bytes the decoded pixels take: width x height x channels x bytes per channel."""
        return self.width * self.height * self.channels * self.sample_bytes


#: TIFF tag of the bits per sample (one value per channel).
_BITS_PER_SAMPLE: Final = 258
#: A PNM header's comments, from ``#`` to the end of the line.
_PNM_COMMENT: Final = re.compile(rb"#[^\r\n]*")
#: A PNM header (magic, width, height, largest value) fits in this many bytes unless it carries
#: long comments; then the depth is taken to be the deepest PNM has.
_PNM_HEADER_BYTES: Final = 1024


def _whole_bytes(bits: int) -> int:
    """Bytes a decoder stores a sample of ``bits`` bits in: 1, 2, 4 or 8."""
    return 1 << max(0, (bits + 7) // 8 - 1).bit_length()


def _decoded_channels(img: Image.Image) -> int:
    """Channels OpenCV (or :func:`first_frame`) decodes an image of this Pillow header into: a
    palette or a gray image with alpha becomes BGR(A); CMYK counts four (a TIFF keeps them)."""
    bands = img.getbands()
    alpha = "A" in bands or "transparency" in img.info
    if not (alpha or len(bands) >= 3 or "P" in bands):
        return len(bands)
    return max(len(bands), 4 if alpha else 3)


def _sample_bytes(img: Image.Image, data: bytes) -> int:
    """Bytes per channel of the decoded pixels, as the header declares them. Only TIFF, PNG and
    PNM decode deeper than 8 bits (to 16-bit integers, or 32- or 64-bit floats for TIFF)."""
    if isinstance(img, TiffImagePlugin.TiffImageFile):
        bits = img.tag_v2.get(_BITS_PER_SAMPLE, 1)
        return _whole_bytes(max(bits) if isinstance(bits, tuple) else int(bits))
    if img.format == "PNG":  # IHDR, always the first chunk: bit depth at byte 24
        return _whole_bytes(data[24] if len(data) > 24 else 16)
    if img.format == "PPM":
        if data[1:2] in (b"f", b"F"):  # PFM: 32-bit floats
            return 4
        if data[1:2] in (b"1", b"4"):  # bitmaps
            return 1
        tokens = _PNM_COMMENT.sub(b" ", data[:_PNM_HEADER_BYTES]).split()
        maxval = int(tokens[3]) if len(tokens) > 3 and tokens[3].isdigit() else 65535
        return _whole_bytes(maxval.bit_length())
    return 1


def read_header(data: bytes) -> Header | Rejection:
    """Format, size, channels and sample depth from the header only (no pixels decoded)."""
    if not data:
        return Rejection(EMPTY_FILE, "0 bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt, (width, height) = img.format or "", img.size
                channels, sample_bytes = _decoded_channels(img), _sample_bytes(img, data)
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
    return Header(FORMATS[fmt], width, height, channels, sample_bytes)


def sniff(data: bytes) -> tuple[str, int, int] | Rejection:
    """Format, width and height from the header only (no pixels decoded)."""
    header = read_header(data)
    if isinstance(header, Rejection):
        return header
    return header.format, header.width, header.height


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
    """The first frame as OpenCV lays pixels out (gray, BGR or BGRA, 8-bit, read-only), or None
    if Pillow cannot decode it. Pillow writes the bytes in OpenCV's channel order itself: no
    reordered copy of the frame is made."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.seek(0)
            alpha = "A" in img.getbands() or "transparency" in img.info
            if img.mode in ("1", "L", "I", "I;16", "F"):
                mode, order = "L", "L"
            else:
                mode, order = ("RGBA", "BGRA") if alpha else ("RGB", "BGR")
            frame = img.convert(mode)
            img.close()  # the frame as stored (a palette) is no longer needed
            raw = frame.tobytes("raw", order)
            width, height = frame.size
    except (OSError, ValueError, SyntaxError, EOFError):
        return None
    pixels = np.frombuffer(raw, np.uint8)
    return pixels.reshape((height, width) if order == "L" else (height, width, len(order)))


def decode(data: bytes, fmt: str) -> Pixels | None:
    """The pixels of an image of format ``fmt`` (as :func:`read_header` names it): OpenCV's
    decoder, or Pillow's first frame for :data:`PILLOW_DECODED`; None when it cannot be
    decoded."""
    if fmt in PILLOW_DECODED:
        return first_frame(data)
    pixels: Pixels | None = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return pixels


#: Pixels per block of rows that the working copies are computed in (wider temporaries, such
#: as the float64 of a float image, exist for one block at a time).
_BLOCK_PIXELS: Final = 1 << 18


def _row_blocks(pixels: Pixels) -> Iterator[slice]:
    """Slices of whole rows of ``pixels``, each about :data:`_BLOCK_PIXELS` pixels."""
    rows = max(1, _BLOCK_PIXELS // max(1, pixels.shape[1]))
    return (slice(top, top + rows) for top in range(0, pixels.shape[0], rows))


def _to_uint8(pixels: Pixels) -> Pixels:
    """8-bit copy of 16-bit or float pixels (metrics are on the 0-255 scale): the high byte of
    16-bit samples, float samples stretched from their minimum to their maximum. Made block by
    block, so no full-size temporary wider than the result exists."""
    if pixels.dtype == np.uint8:
        return pixels
    out = np.empty(pixels.shape, np.uint8)
    if pixels.dtype == np.uint16:
        for rows in _row_blocks(pixels):
            out[rows] = pixels[rows] >> 8
        return out
    low, high = float(pixels.min()), float(pixels.max())
    scale = 255.0 / ((high - low) or 1.0)
    for rows in _row_blocks(pixels):
        block = pixels[rows].astype(np.float64)
        block -= low
        block *= scale
        out[rows] = block
    return out


def _channel_spread(bgr: Pixels) -> int:
    """Largest difference between the blue and green, or green and red, of any pixel."""
    spread = 0
    for rows in _row_blocks(bgr):
        b, g, r = (bgr[rows, :, i].astype(np.int16) for i in range(3))
        spread = max(spread, int(np.abs(b - g).max()), int(np.abs(g - r).max()))
    return spread


def _gray_and_space(pixels: Pixels, tolerance: int) -> tuple[Pixels, int, str]:
    """Grayscale copy, channel count and colour space (judged on the pixels, not the header)."""
    if pixels.ndim == 2:
        return pixels, 1, GRAYSCALE
    channels = pixels.shape[2]
    if channels == 1:
        return pixels[:, :, 0], 1, GRAYSCALE
    if channels == 4:  # the alpha is skipped, not copied away
        gray = cv2.cvtColor(pixels, cv2.COLOR_BGRA2GRAY)
    else:
        gray = cv2.cvtColor(np.ascontiguousarray(pixels[:, :, :3]), cv2.COLOR_BGR2GRAY)
    spread = _channel_spread(pixels)
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


def _too_large(header: Header, limit: int, prefix: str = "") -> Rejection | None:
    """A ``decoded_too_large`` rejection when the pixels ``header`` describes exceed ``limit``
    bytes, with the figures; None when they fit."""
    if header.decoded_bytes <= limit:
        return None
    return Rejection(
        DECODED_TOO_LARGE,
        f"{prefix}{header.width}x{header.height} x {header.channels} channels"
        f" x {header.sample_bytes} bytes = {header.decoded_bytes} bytes > {limit}",
    )


def inspect_image(data: bytes, limits: Limits | None = None) -> ImageFacts | Rejection:
    """Everything femo records about one file's bytes, or why it is rejected.

    The guards on pixels and decoded bytes are read from the header, before decoding; the
    decoded bytes are checked again on the pixels, for a header that declared less than its
    decoder produced.
    """
    limits = limits or Limits()
    header = read_header(data)
    if isinstance(header, Rejection):
        return header
    fmt, width, height = header.format, header.width, header.height
    if width * height > limits.max_pixels:
        return Rejection(
            TOO_MANY_PIXELS, f"{width}x{height} = {width * height} pixels > {limits.max_pixels}"
        )
    if min(width, height) < limits.min_side:
        return Rejection(TOO_SMALL, f"{width}x{height} is under {limits.min_side} px a side")
    too_large = _too_large(header, limits.max_decoded_bytes)
    if too_large:
        return too_large
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
    decoded = Header(fmt, width, height, pixels.size // (width * height), pixels.itemsize)
    too_large = _too_large(decoded, limits.max_decoded_bytes, prefix="decoded to ")
    if too_large:
        return too_large
    pixels = _to_uint8(pixels)  # the decoded pixels, if deeper, are freed here
    gray, channels, space = _gray_and_space(pixels, limits.grayscale_tolerance)
    del pixels  # only the grayscale copy is measured
    mean, std = cv2.meanStdDev(gray)
    # The Laplacian of 8-bit pixels lies in [-1020, 1020]: 16-bit integers hold it exactly, at a
    # quarter of the memory of float64 (and meanStdDev sums integers exactly either way).
    _, edges = cv2.meanStdDev(cv2.Laplacian(gray, cv2.CV_16S))
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
