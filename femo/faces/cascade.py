"""Face detection and crops, pure: OpenCV Haar cascades over decoded bytes. No Spark here.

:func:`find_faces` turns one image's bytes into the rows ``femo.faces`` stores: one per detected
face (largest first), or a single ``no_face`` row, or, under the ``whole_image`` policy (for
already-cropped faces such as FER-2013's), the whole image as the face. Detection runs on a
grayscale copy scaled down by :func:`detection_scale` and boxes are mapped back to original
pixels.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

from femo.ingest.images import first_frame

DETECT: Final = "detect"
WHOLE_IMAGE: Final = "whole_image"
POLICIES: Final = (DETECT, WHOLE_IMAGE)

FACE: Final = "face"
NO_FACE: Final = "no_face"
UNDECODABLE: Final = "undecodable"

Gray = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class DetectorParams:
    """Haar cascade parameters; the seed's values are the defaults."""

    cascade: str = "haarcascade_frontalface_default.xml"
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size: int = 20
    max_side: int = 640
    #: Faces smaller than this share of the image's shorter side are not looked for (0: any).
    min_face_ratio: float = 0.0
    #: ``min_neighbors`` on a downscaled copy (None: the same); a smaller copy yields fewer
    #: overlapping hits per face, so fewer make a detection.
    downscaled_min_neighbors: int | None = None
    #: How many cascade windows wide the smallest wanted face is on the shrunk copy. Of the faces
    #: full resolution finds, one that only just fills the 24-px window is found in about 3 of 4
    #: photos and one 5 % smaller hardly ever; from about 1.75 windows up as often as at full
    #: resolution (``benchmarks/faces.py --photos``): the cascade needs a few scales and places
    #: of its window on a face.
    min_face_windows: float = 1.75

    def as_json(self) -> str:
        """The parameters as a JSON object, stored beside every row."""
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class CropParams:
    """How a face becomes a training crop."""

    size: int = 48
    margin: float = 0.1


@dataclass(frozen=True)
class Box:
    """A face in original pixel coordinates."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        """Pixels covered."""
        return self.w * self.h

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other`` (1.0: the same box, 0.0: disjoint)."""
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1 = min(self.x + self.w, other.x + other.w)
        y1 = min(self.y + self.h, other.y + other.h)
        inter = max(0, x1 - x0) * max(0, y1 - y0)
        union = self.area + other.area - inter
        return inter / union if union else 0.0


def load_cascade(name: str) -> cv2.CascadeClassifier:
    """One of the cascades OpenCV 4.x ships (``cv2.data.haarcascades``).

    Raises:
        ValueError: no such cascade file, or OpenCV cannot load it.
    """
    path = Path(cv2.data.haarcascades) / name  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(str(path))
    if not path.is_file() or cascade.empty():
        raise ValueError(f"cannot load Haar cascade {name} from {path.parent}")
    return cascade


def decode_gray(data: bytes) -> Gray | None:
    """8-bit grayscale pixels of an image's bytes, or None when they do not decode."""
    pixels: npt.NDArray[Any] | None = cv2.imdecode(
        np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE
    )
    if pixels is None or pixels.size == 0:  # a format only Pillow reads (GIF): its first frame
        pixels = first_frame(data)
        if pixels is None or pixels.size == 0:
            return None
        if pixels.ndim == 3:
            code = cv2.COLOR_BGRA2GRAY if pixels.shape[2] == 4 else cv2.COLOR_BGR2GRAY
            pixels = cv2.cvtColor(pixels, code)
    return np.asarray(pixels, dtype=np.uint8)


def detection_scale(height: int, width: int, params: DetectorParams, window: int = 24) -> float:
    """How much to shrink an image before detection (1.0: not at all, never enlarged).

    The copy's longer side is at most ``max_side``; and with ``min_face_ratio`` set, the copy is
    just large enough for the smallest wanted face (that share of the shorter side) to span
    ``min_face_windows`` of the cascade's ``window``: detecting smaller faces would be wasted
    work, and a face that only just fills the window is often missed.
    """
    scale = min(1.0, params.max_side / max(height, width))
    if params.min_face_ratio > 0:
        wanted = window * params.min_face_windows
        scale = min(scale, wanted / (params.min_face_ratio * min(height, width)))
    return scale


def detect(gray: Gray, cascade: cv2.CascadeClassifier, params: DetectorParams) -> list[Box]:
    """Faces in ``gray``, largest first, detected on a copy shrunk by :func:`detection_scale`
    and mapped back to original pixels."""
    height, width = gray.shape
    window = min(cascade.getOriginalWindowSize())
    scale = detection_scale(height, width, params, window)
    neighbors = params.min_neighbors
    if scale < 1.0 and params.downscaled_min_neighbors is not None:
        neighbors = params.downscaled_min_neighbors
    small = (
        gray
        if scale == 1.0
        else cv2.resize(
            gray,
            (max(1, round(width * scale)), max(1, round(height * scale))),
            interpolation=cv2.INTER_AREA,
        )
    )
    min_side = max(1, round(params.min_size * scale))
    found = cascade.detectMultiScale(
        cv2.equalizeHist(small),
        scaleFactor=params.scale_factor,
        minNeighbors=neighbors,
        minSize=(min_side, min_side),
    )
    boxes = [
        Box(round(x / scale), round(y / scale), round(w / scale), round(h / scale))
        for x, y, w, h in (found if len(found) else [])
    ]
    return sorted(boxes, key=lambda b: (-b.area, b.x, b.y))


def square_crop(gray: Gray, box: Box, crop: CropParams) -> bytes:
    """PNG of a square centred on ``box`` (its longer side plus ``margin`` on each side),
    resized to ``crop.size`` x ``crop.size`` grayscale. Where the square leaves the image, the
    edge pixels are repeated, so the face is never stretched."""
    side = max(1, round(max(box.w, box.h) * (1 + 2 * crop.margin)))
    x0 = round(box.x + box.w / 2 - side / 2)
    y0 = round(box.y + box.h / 2 - side / 2)
    pad = max(0, -x0, -y0, x0 + side - gray.shape[1], y0 + side - gray.shape[0])
    padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else gray
    patch = padded[y0 + pad : y0 + pad + side, x0 + pad : x0 + pad + side]
    resized = cv2.resize(patch, (crop.size, crop.size), interpolation=cv2.INTER_AREA)
    ok, png = cv2.imencode(".png", resized)
    if not ok:  # pragma: no cover - encoding a small uint8 array does not fail
        raise ValueError("could not encode the crop")
    return bytes(png.tobytes())


def find_faces(
    data: bytes,
    policy: str,
    cascade: cv2.CascadeClassifier,
    params: DetectorParams,
    crop: CropParams,
) -> list[dict[str, Any]]:
    """The ``faces`` rows of one image: one per face (index 0 the largest), or one row with
    status ``no_face`` / ``undecodable`` and no crop.

    Under ``whole_image`` the whole image is the face; ``detected_faces`` still records what the
    detector finds there, as a check.
    """
    gray = decode_gray(data)
    if gray is None:
        return [_row(UNDECODABLE, None, 0, 0, None, None)]
    boxes = detect(gray, cascade, params)
    if policy == WHOLE_IMAGE:
        height, width = gray.shape
        whole = Box(0, 0, width, height)
        return [
            _row(
                FACE, whole, 0, 1, square_crop(gray, whole, CropParams(crop.size, 0.0)), len(boxes)
            )
        ]
    if not boxes:
        return [_row(NO_FACE, None, 0, 0, None, 0)]
    return [
        _row(FACE, box, index, len(boxes), square_crop(gray, box, crop), len(boxes))
        for index, box in enumerate(boxes)
    ]


def _row(
    status: str, box: Box | None, index: int, faces: int, crop: bytes | None, detected: int | None
) -> dict[str, Any]:
    return {
        "status": status,
        "face_index": index,
        "faces_in_image": faces,
        "detected_faces": detected,
        "bbox_x": box.x if box else None,
        "bbox_y": box.y if box else None,
        "bbox_w": box.w if box else None,
        "bbox_h": box.h if box else None,
        "crop": crop,
    }
