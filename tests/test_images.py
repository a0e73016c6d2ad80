"""Per-image inspection, without Spark: every bad input is a reason, never an exception."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from femo.faces.cascade import decode_gray
from femo.ingest import images
from femo.ingest.images import (
    Header,
    ImageFacts,
    Limits,
    Rejection,
    decode,
    inspect_image,
    perceptual_hash,
    read_header,
    sniff,
)
from femo.ingest.sample import encode, face_like
from femo.platform.settings import IngestSettings, load_settings

ROOT = Path(__file__).resolve().parents[1]


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


# Memory: decoded bytes (pixels x channels x bytes per channel) are bounded, not only pixels ------


def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any decoding (OpenCV's or Pillow's first frame) fail the test."""

    def refuse(*args: object) -> None:
        raise AssertionError("decoded although over the decoded-bytes limit")

    monkeypatch.setattr(cv2, "imdecode", refuse)
    monkeypatch.setattr(images, "first_frame", refuse)


def deep_bgra(height: int, width: int) -> np.ndarray:  # type: ignore[type-arg]
    """16-bit BGRA pixels: a colour gradient, half transparent."""
    ramp = np.linspace(0, 65535, width, dtype=np.uint16)
    bgra = np.empty((height, width, 4), np.uint16)
    bgra[:, :, 0], bgra[:, :, 1], bgra[:, :, 2] = ramp, ramp[::-1], 40_000
    bgra[:, :, 3] = 32_768
    return bgra


def test_a_deep_tiff_within_the_pixel_guard_is_quarantined_by_its_decoded_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 1,200 pixels pass a 1,200-pixel guard; four 16-bit channels make 9,600 decoded bytes.
    data = encode(deep_bgra(30, 40), ".tiff")
    limits = Limits(max_pixels=1_200, max_decoded_bytes=9_000)
    no_decoding(monkeypatch)
    result = rejected(data, limits)
    assert (result.reason, result.detail) == (
        "decoded_too_large",
        "40x30 x 4 channels x 2 bytes = 9600 bytes > 9000",
    )


def test_the_same_picture_in_8_bits_fits_the_bound() -> None:
    deep = deep_bgra(30, 40)
    limits = Limits(max_pixels=1_200, max_decoded_bytes=9_000)
    shallow = facts(encode((deep >> 8).astype(np.uint8), ".tiff"), limits)  # 4,800 bytes
    assert (shallow.width, shallow.height, shallow.channels, shallow.color_space) == (
        40,
        30,
        4,
        "color",
    )


def test_under_the_bound_a_deep_image_measures_as_its_high_bytes() -> None:
    # What the 16-bit image is measured on is its 8-bit copy (the high byte of each sample):
    # the metrics equal those of that 8-bit picture, decoded and measured on its own.
    deep = deep_bgra(30, 40)
    limits = Limits(max_decoded_bytes=9_600)  # exactly its decoded bytes
    got = facts(encode(deep, ".tiff"), limits)
    want = facts(encode((deep >> 8).astype(np.uint8), ".tiff"), limits)
    same = ("channels", "color_space", "brightness", "contrast", "sharpness", "phash")
    assert {k: getattr(got, k) for k in same} == {k: getattr(want, k) for k in same}


def test_a_flat_deep_colour_has_the_brightness_of_its_high_bytes() -> None:
    bgra = np.zeros((16, 16, 4), np.uint16)
    bgra[:, :] = (0x1000, 0x8000, 0xF000, 0xFFFF)  # 8-bit (16, 128, 240) and opaque
    got = facts(encode(bgra, ".tiff"))
    # 0.299 R + 0.587 G + 0.114 B = 148.72, rounded by OpenCV's fixed-point conversion
    assert (got.channels, got.color_space, got.brightness, got.contrast, got.sharpness) == (
        4,
        "color",
        149.0,
        0.0,
        0.0,
    )


def test_a_float_tiff_is_stretched_from_its_minimum_to_its_maximum() -> None:
    checker = np.where(np.indices((64, 64)).sum(axis=0) % 2 == 0, -1.5, 3.0).astype(np.float32)
    got = facts(encode(checker, ".tiff"))
    assert (got.brightness, got.contrast) == (127.5, 127.5)
    assert got.sharpness == pytest.approx(1020.0**2, rel=0.01)  # +-4 x 255 at every pixel


@pytest.mark.parametrize(("transparency", "channels"), [(None, 3), (0, 4)])
def test_a_gif_is_bounded_before_pillow_decodes_it(
    monkeypatch: pytest.MonkeyPatch, transparency: int | None, channels: int
) -> None:
    image = Image.new("P", (64, 64), color=1)
    image.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    image.paste(0, (0, 0, 32, 64))  # the left half in colour 0 (transparent, if it is)
    options = {} if transparency is None else {"transparency": transparency}
    data = pillow_bytes(image, "GIF", **options)
    decoded = 64 * 64 * channels  # a palette decodes to BGR, or BGRA with a transparent colour
    assert facts(data, Limits(max_decoded_bytes=decoded)).channels == channels
    no_decoding(monkeypatch)
    result = rejected(data, Limits(max_decoded_bytes=decoded - 1))
    assert result.reason == "decoded_too_large"
    assert (
        result.detail == f"64x64 x {channels} channels x 1 bytes = {decoded} bytes > {decoded - 1}"
    )


def test_what_a_decoder_makes_beyond_its_header_is_bounded_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A header that declares less than its decoder produces (say, an unusual TIFF) is caught on
    # the pixels, before any working copy of them is made.
    data = encode(np.zeros((30, 40), np.uint8), ".png")  # declares 1,200 bytes
    monkeypatch.setattr(images, "decode", lambda *_: np.zeros((30, 40, 4), np.uint16))
    result = rejected(data, Limits(max_decoded_bytes=5_000))
    assert (result.reason, result.detail) == (
        "decoded_too_large",
        "decoded to 40x30 x 4 channels x 2 bytes = 9600 bytes > 5000",
    )


def pnm(magic: bytes, maxval: int, samples: np.ndarray) -> bytes:  # type: ignore[type-arg]
    """A binary PNM with a comment in its header and big-endian samples."""
    height, width = samples.shape[:2]
    dtype = ">u2" if maxval > 255 else "u1"
    head = b"%s\n# made by a test\n%d %d\n%d\n" % (magic, width, height, maxval)
    return head + samples.astype(dtype).tobytes()


def header_cases() -> dict[str, bytes]:
    """Images whose decoded size the header must state exactly, by how they are made."""
    bgr = face_like(np.random.default_rng(2), 24, color=True)
    rgb = Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    palette = rgb.convert("P")
    return {
        "png 16-bit gray": encode(bgr[:, :, 0].astype(np.uint16) * 257, ".png"),
        "png 16-bit BGR": encode(bgr.astype(np.uint16) * 257, ".png"),
        "png palette": pillow_bytes(palette, "PNG"),
        "png palette + transparency": pillow_bytes(palette, "PNG", transparency=0),
        "png gray + alpha": pillow_bytes(rgb.convert("LA"), "PNG"),
        "png 1-bit": pillow_bytes(rgb.convert("1"), "PNG"),
        "tiff 16-bit BGRA": encode(deep_bgra(24, 24), ".tiff"),
        "tiff float gray": encode(bgr[:, :, 0].astype(np.float32), ".tiff"),
        "tiff palette": pillow_bytes(palette, "TIFF"),
        "tiff CMYK": pillow_bytes(rgb.convert("CMYK"), "TIFF"),
        "ppm 16-bit": pnm(b"P6", 1000, bgr.astype(np.uint16) * 3),
        "pgm 8-bit": pnm(b"P5", 255, bgr[:, :, 0]),
        "bmp palette": pillow_bytes(palette, "BMP"),
        "jpeg gray": encode(bgr[:, :, 0], ".jpg"),
        "webp BGRA": encode(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA), ".webp"),
        "gif": pillow_bytes(rgb, "GIF"),
        "tga RGBA": pillow_bytes(rgb.convert("RGBA"), "TGA"),
        "pcx": pillow_bytes(rgb, "PCX"),
    }


@pytest.mark.parametrize("name", sorted(header_cases()))
def test_the_header_states_the_decoded_bytes(name: str) -> None:
    data = header_cases()[name]
    header = read_header(data)
    assert isinstance(header, Header), header
    pixels = decode(data, header.format)
    assert pixels is not None
    assert header.decoded_bytes == pixels.nbytes, (header, pixels.dtype, pixels.shape)


def test_the_decoded_bytes_limit_comes_from_the_settings() -> None:
    local = load_settings(ROOT / "conf" / "local.yaml", environ={}).ingest
    assert Limits.from_settings(local) == Limits()  # the shipped file states the defaults
    tight = IngestSettings.model_validate({"max_decoded_bytes": 1_000, "min_side": 4})
    assert Limits.from_settings(tight).max_decoded_bytes == 1_000
    assert Limits.from_settings(tight, min_side=1).min_side == 1


def test_the_default_bound_admits_8_bit_images_the_pixel_guard_admits() -> None:
    limits = Limits()
    side = int(limits.max_pixels**0.5)
    assert Header("png", side, side, 4, 1).decoded_bytes <= limits.max_decoded_bytes  # RGBA
    assert Header("tiff", 8000, 5000, 4, 2).decoded_bytes > limits.max_decoded_bytes  # 40 MP
