"""Drawing SkyReels-A1 control frames with OpenCV, exactly as the official visualizers draw them
(mediapipe's drawing utilities are not needed; the styles are in :mod:`landmark_style`).

Points are normalised (x / width, y / height of the face crop) float32 values:

* a point is drawn only when 0 <= x <= 1 and 0 <= y <= 1; its pixel is
  (min(floor(x W), W - 1), min(floor(y H), H - 1)) in float64; a line is drawn when both ends
  are valid (nothing is clipped);
* markers are NumPy slice assignments, so a marker whose start is negative is not drawn at all
  (an empty slice), as in the official code.

The face-crop canvas is then pasted into a black frame at the crop's place (:func:`paste`).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np

from . import landmark_style as style


def _cv2():
    try:
        import cv2
    except ImportError as e:  # pragma: no cover - opencv is a requirement
        raise ImportError("drawing the A1 control video needs OpenCV: pip install opencv-python-headless") from e
    return cv2


def _pixels(points: np.ndarray, width: int, height: int) -> Tuple[np.ndarray, np.ndarray]:
    """(valid [N] bool, pixels [N, 2] int) of normalised float32 points."""
    p = np.asarray(points, dtype=np.float32)[:, :2]
    valid = (p >= 0).all(axis=1) & (p <= 1).all(axis=1)
    d = p.astype(np.float64)
    px = np.minimum(np.floor(d[:, 0] * width), width - 1)
    py = np.minimum(np.floor(d[:, 1] * height), height - 1)
    pix = np.stack([px, py], axis=1)
    pix[~valid] = 0
    return valid, pix.astype(np.int64)


def draw_lines(canvas: np.ndarray, points: np.ndarray, connections: Sequence[Tuple[int, int, tuple]]) -> np.ndarray:
    """Draws ``connections`` [(a, b, colour)] between normalised ``points`` onto ``canvas`` (in place)."""
    cv2 = _cv2()
    h, w = canvas.shape[:2]
    valid, pix = _pixels(points, w, h)
    for a, b, colour in connections:
        if valid[a] and valid[b]:
            cv2.line(canvas, (int(pix[a, 0]), int(pix[a, 1])), (int(pix[b, 0]), int(pix[b, 1])),
                     tuple(int(c) for c in colour), 1, cv2.LINE_8)
    return canvas


def _block(canvas: np.ndarray, x: int, y: int, lo: int, hi: int, colour) -> None:
    """canvas[y-lo:y+hi, x-lo:x+hi] = colour, with NumPy's slice rules (negative starts included)."""
    canvas[y - lo:y + hi, x - lo:x + hi] = colour


def draw_reference_crop(lmks: np.ndarray, face_hw: Tuple[int, int]) -> np.ndarray:
    """Frame 0 on a black face_h x face_w canvas from the portrait's 478 normalised points."""
    h, w = int(face_hw[0]), int(face_hw[1])
    pts = np.asarray(lmks, dtype=np.float32)[:, :2]
    canvas = np.zeros((h, w, 3), dtype=np.uint8)
    draw_lines(canvas, pts, style.reference_connections())
    marks = [(i, c, style.REFERENCE_PUPIL_HALF) for i, c in style.REFERENCE_PUPILS]
    marks.append((style.REFERENCE_NOSE[0], style.REFERENCE_NOSE[1], style.REFERENCE_NOSE_HALF))
    for idx, colour, half in marks:
        x, y = float(pts[idx, 0]), float(pts[idx, 1])
        if not (0 <= x < 1 and 0 <= y < 1):
            continue
        _block(canvas, int(w * x), int(h * y), half, half, colour)
    return canvas


def draw_retarget_crop(lmk_norm: np.ndarray, pupil_left: Optional[Sequence[int]], pupil_right: Optional[Sequence[int]],
                       face_hw: Tuple[int, int]) -> np.ndarray:
    """Frames 1.. on a black face_h x face_w canvas.

    ``lmk_norm``: the 105 (or 113) retargeted points in :data:`landmark_style.INDEX_MAPPING`
    order, normalised, float32.  ``pupil_left`` / ``pupil_right``: integer pixels of the pupils of
    points 468 / 473 (None: not drawn)."""
    h, w = int(face_hw[0]), int(face_hw[1])
    pts = np.asarray(lmk_norm, dtype=np.float32)[:, :2]
    canvas = np.zeros((h, w, 3), dtype=np.uint8)
    draw_lines(canvas, pts, style.retarget_connections())
    for pupil, colour in ((pupil_left, style.RETARGET_LEFT_PUPIL_COLOUR),
                          (pupil_right, style.RETARGET_RIGHT_PUPIL_COLOUR)):
        if pupil is not None:
            _block(canvas, int(pupil[0]), int(pupil[1]), 1, 2, colour)
    if pts.shape[0] > style.RETARGET_NOSE_POSITION:
        nx, ny = (float(v) for v in pts[style.RETARGET_NOSE_POSITION])
        if math.isfinite(nx) and math.isfinite(ny):
            _block(canvas, int(nx * w), int(ny * h), 2, 3, style.RETARGET_NOSE_COLOUR)
    return canvas


def paste(crop: np.ndarray, frame_hw: Tuple[int, int], y1x1: Tuple[int, int]) -> np.ndarray:
    """A black frame_h x frame_w frame with ``crop`` at (y1, x1) (NumPy slice rules)."""
    frame = np.zeros((int(frame_hw[0]), int(frame_hw[1]), 3), dtype=np.uint8)
    y1, x1 = int(y1x1[0]), int(y1x1[1])
    h, w = crop.shape[:2]
    region = frame[y1:y1 + h, x1:x1 + w]
    region[...] = crop[:region.shape[0], :region.shape[1]]
    return frame
