"""Face detection and crops on real faces and non-faces, without Spark."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
from skimage import data

from femo.faces.cascade import (
    DETECT,
    WHOLE_IMAGE,
    Box,
    CropParams,
    DetectorParams,
    decode_gray,
    detect,
    detection_scale,
    find_faces,
    load_cascade,
)
from femo.faces.detection import detector_version, find_faces_frame, params_of
from femo.ingest.sample import encode, face_like
from femo.platform.settings import FacesSettings

PARAMS = DetectorParams()
CROP = CropParams()


@pytest.fixture(scope="module")
def cascade() -> cv2.CascadeClassifier:
    return load_cascade(PARAMS.cascade)


@pytest.fixture(scope="module")
def astronaut() -> bytes:
    return encode(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), ".png")


def box_of(row: dict) -> Box:  # type: ignore[type-arg]
    return Box(row["bbox_x"], row["bbox_y"], row["bbox_w"], row["bbox_h"])


def test_astronaut_face_is_found_with_a_48px_crop(cascade, astronaut: bytes) -> None:  # type: ignore[no-untyped-def]
    rows = find_faces(astronaut, DETECT, cascade, PARAMS, CROP)
    primary = rows[0]
    assert (primary["status"], primary["face_index"]) == ("face", 0)
    assert primary["faces_in_image"] == len(rows) >= 1
    # Eileen Collins' face sits around x 170-280, y 60-170 of the 512x512 picture.
    assert box_of(primary).iou(Box(175, 65, 95, 95)) > 0.6
    crop = cv2.imdecode(np.frombuffer(primary["crop"], np.uint8), cv2.IMREAD_UNCHANGED)
    assert crop.shape == (48, 48)


def test_downscaled_detection_finds_the_same_face(cascade, astronaut: bytes) -> None:  # type: ignore[no-untyped-def]
    gray = decode_gray(astronaut)
    assert gray is not None
    small = detect(gray, cascade, DetectorParams(max_side=320))[0]
    full = detect(gray, cascade, DetectorParams(max_side=4096))[0]
    assert small.iou(full) > 0.7


#: The settings' defaults (``FacesSettings``, as in ``conf/local.yaml``).
SHRUNK = params_of(FacesSettings())[0]
#: Before issue 15: a 320-px copy, shrunk so a face of a fifth of the shorter side only just
#: fills the 24-px window, 2 neighbours.
OLD = DetectorParams(min_size=0, min_face_ratio=0.2, downscaled_min_neighbors=2, min_face_windows=1)


def test_detection_scale_never_enlarges_and_follows_the_smallest_wanted_face() -> None:
    assert detection_scale(48, 48, OLD) == 1.0  # FER-2013: a fifth is 9.6 px < 24
    assert detection_scale(224, 224, OLD) == pytest.approx(24 / 44.8)
    assert detection_scale(480, 640, OLD) == pytest.approx(24 / 96)  # shorter side counts
    assert detection_scale(4000, 4000, DetectorParams(max_side=320)) == pytest.approx(0.08)
    assert detection_scale(224, 224, DetectorParams(max_side=320)) == 1.0
    # The smallest wanted face spans ``min_face_windows`` windows: 1.5 x 24 px on a tenth of 768
    ratio = DetectorParams(max_side=4000, min_face_ratio=0.1, min_face_windows=1.5)
    assert detection_scale(768, 1024, ratio) == pytest.approx(36 / 76.8)
    assert detection_scale(768, 1024, replace(ratio, max_side=320)) == pytest.approx(320 / 1024)


#: Where Eileen Collins' face is in the 512x512 astronaut picture.
ASTRONAUT_FACE = Box(175, 65, 95, 95)


def test_astronaut_as_a_512px_jpeg_is_found_with_the_default_settings(cascade) -> None:  # type: ignore[no-untyped-def]
    # Issue 15 (5c): her face is 18 % of the side; the old defaults gave no_face on this JPEG.
    jpeg = encode(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), ".jpg")
    rows = find_faces(jpeg, DETECT, cascade, SHRUNK, CROP)
    assert rows[0]["status"] == "face"
    assert sum(box_of(row).iou(ASTRONAUT_FACE) > 0.6 for row in rows) == 1


def _pasted_lfw(index: int, side: int) -> tuple[np.ndarray, Box]:  # type: ignore[type-arg]
    """``lfw_subset`` face ``index`` upscaled to ``side`` px on the 640x480 coffee picture."""
    face = (data.lfw_subset()[index] * 255).astype(np.uint8)
    picture = cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2GRAY), (640, 480))
    x, y = 40 + 11 * index, 60 + 3 * index
    picture[y : y + side, x : x + side] = cv2.resize(face, (side, side), cv2.INTER_CUBIC)
    return picture, Box(x, y, side, side)


def test_lfw_faces_of_a_sixth_of_the_picture_are_found_with_the_default_settings(cascade) -> None:  # type: ignore[no-untyped-def]
    # Issue 15 (5c): faces of 15 to 20 % of the shorter side were missed: of these 20 faces of
    # 80 px in 640x480, the old defaults found 3, full resolution finds 18.
    def found(index: int) -> bool:
        picture, face = _pasted_lfw(index, 80)
        return any(box.iou(face) >= 0.5 for box in detect(picture, cascade, SHRUNK))

    assert sum(found(i) for i in range(20)) >= 17


def test_shrunk_detection_agrees_with_full_resolution_on_the_astronaut(
    cascade, astronaut: bytes
) -> None:  # type: ignore[no-untyped-def]
    gray = decode_gray(astronaut)
    assert gray is not None
    shrunk = detect(gray, cascade, SHRUNK)[0]
    full = detect(gray, cascade, DetectorParams(min_size=0, max_side=4096))[0]
    assert shrunk.iou(full) > 0.7


def test_shrunk_detection_on_224px_lfw_finds_faces_not_non_faces(cascade) -> None:  # type: ignore[no-untyped-def]
    lfw = data.lfw_subset()  # 100 faces, then 100 non-faces, 25x25

    def found(index: int) -> bool:
        img = cv2.resize(
            (lfw[index] * 255).astype(np.uint8), (224, 224), interpolation=cv2.INTER_CUBIC
        )
        return bool(detect(img, cascade, SHRUNK))

    assert sum(found(i) for i in range(100)) >= 80
    assert sum(found(i) for i in range(100, 200)) <= 5


def test_lfw_faces_are_found_and_non_faces_are_not(cascade) -> None:  # type: ignore[no-untyped-def]
    lfw = data.lfw_subset()  # 100 faces, then 100 non-faces, 25x25
    params = DetectorParams(min_neighbors=3)

    def found(index: int) -> bool:
        img = cv2.resize((lfw[index] * 255).astype(np.uint8), (100, 100))
        return find_faces(encode(img, ".png"), DETECT, cascade, params, CROP)[0]["status"] == "face"

    assert sum(found(i) for i in range(100)) >= 80
    assert sum(found(i) for i in range(100, 200)) <= 5


@pytest.mark.parametrize(
    "picture",
    [
        np.zeros((120, 160), np.uint8),
        np.tile(np.arange(160, dtype=np.uint8), (120, 1)),
        np.random.default_rng(3).integers(0, 256, (240, 320), dtype=np.uint8),
    ],
    ids=["black", "gradient", "noise"],
)
def test_non_faces_give_one_no_face_row(cascade, picture: np.ndarray) -> None:  # type: ignore[no-untyped-def, type-arg]
    rows = find_faces(encode(picture, ".png"), DETECT, cascade, PARAMS, CROP)
    assert rows == [
        {
            "status": "no_face",
            "face_index": 0,
            "faces_in_image": 0,
            "detected_faces": 0,
            "bbox_x": None,
            "bbox_y": None,
            "bbox_w": None,
            "bbox_h": None,
            "crop": None,
        }
    ]


def test_whole_image_policy_keeps_the_whole_fer_face(cascade) -> None:  # type: ignore[no-untyped-def]
    fer = encode(face_like(np.random.default_rng(4), 48, color=False), ".jpg")
    (row,) = find_faces(fer, WHOLE_IMAGE, cascade, PARAMS, CROP)
    assert (row["status"], row["faces_in_image"], box_of(row)) == ("face", 1, Box(0, 0, 48, 48))
    assert row["detected_faces"] is not None
    crop = cv2.imdecode(np.frombuffer(row["crop"], np.uint8), cv2.IMREAD_UNCHANGED)
    original = cv2.imdecode(np.frombuffer(fer, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(crop, original)


def test_crop_is_square_clipped_and_resized(cascade) -> None:  # type: ignore[no-untyped-def]
    from femo.faces.cascade import square_crop

    gray = np.full((100, 200), 50, np.uint8)
    gray[:, 150:] = 250
    png = square_crop(gray, Box(160, 10, 40, 80), CropParams(size=32, margin=0.5))
    crop = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert crop.shape == (32, 32)
    # window x 100..260 (the face centred), the part past x 200 repeats the bright edge
    assert crop.mean() == pytest.approx(50 + 200 * 110 / 160, abs=4)


def test_undecodable_bytes(cascade) -> None:  # type: ignore[no-untyped-def]
    (row,) = find_faces(b"not an image", DETECT, cascade, PARAMS, CROP)
    assert row["status"] == "undecodable" and row["crop"] is None


def test_version_follows_parameters() -> None:
    assert detector_version(PARAMS, CROP) == detector_version(DetectorParams(), CropParams())
    assert detector_version(PARAMS, CROP) != detector_version(DetectorParams(min_neighbors=3), CROP)
    assert detector_version(PARAMS, CROP) != detector_version(PARAMS, CropParams(size=64))


def test_frame_core_adds_ids_and_detector(cascade, astronaut: bytes) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    frame = pd.DataFrame(
        {"image_id": ["a", "b"], "policy": [DETECT, WHOLE_IMAGE], "content": [astronaut, astronaut]}
    )
    out = find_faces_frame(frame, PARAMS, CROP, cascade)
    assert set(out["image_id"]) == {"a", "b"}
    assert out["face_id"].is_unique
    assert (out["detector"] == "opencv-haar:haarcascade_frontalface_default.xml").all()
    whole = out[out["policy"] == WHOLE_IMAGE]
    assert len(whole) == 1 and whole.iloc[0]["bbox_w"] == 512


def test_box_iou() -> None:
    a = Box(0, 0, 10, 10)
    assert a.iou(a) == 1.0
    assert a.iou(Box(20, 20, 5, 5)) == 0.0
    assert a.iou(Box(5, 0, 10, 10)) == pytest.approx(50 / 150)
