"""Per-image inspection, without Spark: every bad input is a reason, never an exception."""

from __future__ import annotations

import hashlib
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from femo.faces.cascade import decode_gray
from femo.ingest.images import ImageFacts, Limits, Rejection, inspect_image, perceptual_hash, sniff
from femo.ingest.sample import encode, face_like


def facts(data: bytes, limits: Limits | None = None) -> ImageFacts:
    result = inspect_image(data, limits)
    assert isinstance(result, ImageFacts), result
    return result


def rejected(data: bytes, limits: Limits | None = None) -> Rejection:
    result = inspect_image(data, limits)
    assert isinstance(result, Rejection), result
    return result


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1)


def test_grayscale_jpeg(rng: np.random.Generator) -> None:
    data = encode(face_like(rng, 48, color=False), ".jpg")
    f = facts(data)
    assert (f.format, f.width, f.height, f.channels, f.color_space) == (
        "jpeg",
        48,
        48,
        1,
        "grayscale",
    )
    assert f.image_id == hashlib.sha256(data).hexdigest()
    assert f.file_size_bytes == len(data)
    assert f.aspect_ratio == 1.0


def test_color_png_with_aspect_ratio(rng: np.random.Generator) -> None:
    img = cv2.resize(face_like(rng, 100, color=True), (150, 100))
    f = facts(encode(img, ".png"))
    assert (f.format, f.width, f.height, f.channels, f.color_space) == ("png", 150, 100, 3, "color")
    assert f.aspect_ratio == 1.5


def test_three_equal_channels_are_grayscale(rng: np.random.Generator) -> None:
    img = cv2.cvtColor(face_like(rng, 64, color=False), cv2.COLOR_GRAY2BGR)
    f = facts(encode(img, ".png"))
    assert (f.channels, f.color_space) == (3, "grayscale")
    # a single tinted pixel beyond the tolerance makes it colour
    img[10, 10] = (0, 0, 255)
    assert facts(encode(img, ".png")).color_space == "color"


def test_alpha_channel_and_16_bit(rng: np.random.Generator) -> None:
    bgra = cv2.cvtColor(face_like(rng, 32, color=True), cv2.COLOR_BGR2BGRA)
    assert facts(encode(bgra, ".png")).channels == 4
    deep = face_like(rng, 32, color=False).astype(np.uint16) * 257
    f = facts(encode(deep, ".png"))
    assert f.channels == 1 and 0 < f.brightness < 255


def test_quality_metrics_follow_the_pixels() -> None:
    flat = np.full((64, 64), 100, np.uint8)
    f = facts(encode(flat, ".png"))
    assert (f.brightness, f.contrast, f.sharpness) == (100.0, 0.0, 0.0)
    checker = (np.indices((64, 64)).sum(axis=0) % 2 * 255).astype(np.uint8)
    g = facts(encode(checker, ".png"))
    assert g.brightness == pytest.approx(127.5)
    assert g.contrast == pytest.approx(127.5)
    assert g.sharpness > 10_000


def test_format_is_sniffed_from_bytes_not_the_name(rng: np.random.Generator) -> None:
    img = face_like(rng, 48, color=False)
    for ext, name in (
        (".png", "png"),
        (".jpg", "jpeg"),
        (".bmp", "bmp"),
        (".tiff", "tiff"),
        (".webp", "webp"),
    ):
        assert facts(encode(img, ext)).format == name


def test_perceptual_hash_survives_recompression_but_not_another_picture(
    rng: np.random.Generator,
) -> None:
    img = face_like(rng, 96, color=False)
    a = facts(encode(img, ".png")).phash
    b = facts(encode(img, ".jpg")).phash
    other = facts(encode(face_like(rng, 96, color=False)[::-1], ".png")).phash
    assert bin((a ^ b) & (2**64 - 1)).count("1") <= 4
    assert bin((a ^ other) & (2**64 - 1)).count("1") > 10
    assert -(2**63) <= a < 2**63


def test_perceptual_hash_bit_order() -> None:
    # Left half bright, right half dark: the first DCT row carries the energy.
    img = np.zeros((32, 32), np.uint8)
    img[:, :16] = 255
    value = perceptual_hash(img)
    assert value == perceptual_hash(img.copy())
    assert value != perceptual_hash(img.T.copy())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty_file"),
        (b"just some text\nin a file named .jpg\n", "not_an_image"),
        (bytes(range(256)) * 8, "not_an_image"),
    ],
)
def test_non_images(data: bytes, reason: str) -> None:
    assert rejected(data).reason == reason


def test_text_is_named_as_text() -> None:
    assert "text" in rejected(b"hello").detail


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_truncated_files(rng: np.random.Generator, ext: str) -> None:
    data = encode(face_like(rng, 96, color=True), ext)
    for cut in (len(data) // 2, len(data) - 20, 40):
        assert rejected(data[:cut]).reason == "truncated", (ext, cut)


def test_tiny_images_are_too_small() -> None:
    result = rejected(encode(np.zeros((1, 1), np.uint8), ".png"))
    assert (result.reason, result.detail) == ("too_small", "1x1 is under 8 px a side")


def test_pixel_limit_is_checked_from_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(np.zeros((300, 400), np.uint8), ".png")

    def no_decode(*args: object) -> None:
        raise AssertionError("decoded although over the pixel limit")

    monkeypatch.setattr(cv2, "imdecode", no_decode)
    result = rejected(data, Limits(max_pixels=100_000))
    assert result.reason == "too_many_pixels"
    assert result.detail == "400x300 = 120000 pixels > 100000"


def test_sniff_reads_only_the_header(rng: np.random.Generator) -> None:
    data = encode(face_like(rng, 64, color=True), ".png")
    assert sniff(data) == ("png", 64, 64)
    assert sniff(data[:100]) == ("png", 64, 64)  # the header alone is enough


def pillow_bytes(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


@pytest.mark.parametrize(("fmt", "name"), [("GIF", "gif"), ("TGA", "tga"), ("PCX", "pcx")])
def test_formats_opencv_cannot_decode_are_decoded_by_pillow(
    rng: np.random.Generator, fmt: str, name: str
) -> None:
    # Web image searches return GIFs; OpenCV 4.10 decodes none of these formats.
    bgr = face_like(rng, 64, color=True)
    data = pillow_bytes(Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)), fmt)
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) is None
    got = facts(data)
    assert (got.format, got.width, got.height, got.color_space) == (name, 64, 64, "color")
    assert decode_gray(data) is not None and decode_gray(data).shape == (64, 64)


def test_an_animated_gif_is_its_first_frame() -> None:
    first = Image.new("L", (32, 24), color=20)
    second = Image.new("L", (32, 24), color=230)
    data = pillow_bytes(first, "GIF", save_all=True, append_images=[second], duration=100)
    got = facts(data)
    # A palette picture: three channels decoded, grayscale judged on the pixels.
    assert (got.format, got.width, got.height, got.color_space) == ("gif", 32, 24, "grayscale")
    assert got.brightness == pytest.approx(20, abs=1)
    assert float(decode_gray(data).mean()) == pytest.approx(20, abs=1)


def test_a_transparent_gif_keeps_its_alpha() -> None:
    image = Image.new("P", (16, 16), color=1)
    image.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    image.paste(0, (0, 0, 8, 16))  # the left half in the transparent colour
    data = pillow_bytes(image, "GIF", transparency=0)
    got = facts(data)
    assert (got.format, got.channels, got.color_space) == ("gif", 4, "color")


def test_a_cut_gif_is_truncated(rng: np.random.Generator) -> None:
    bgr = face_like(rng, 64, color=True)
    data = pillow_bytes(Image.fromarray(bgr), "GIF")
    assert rejected(data[: len(data) // 2]).reason == "truncated"


def test_every_decoded_format_lands_under_an_extension() -> None:
    # A downloaded image is landed as <id>.<extension of its format>.
    from femo.ingest.images import FORMATS
    from femo.sources.fetch import EXTENSIONS

    assert set(FORMATS.values()) <= set(EXTENSIONS)
