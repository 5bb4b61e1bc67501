"""Where the face is: MediaPipe's FaceLandmarker (the ``face_landmarker_v2_with_blendshapes.task``
the SkyReels-A1 release ships in its ``mediapipe/`` folder), run from a local file.

The official A1 scripts take the 5 alignment points from facexlib's retinaface (a model it
downloads at run time).  We take them from the 478 FaceLandmarker points instead: the iris
centres 468 and 473 (the eye on the image's left first), the nose tip 4 and the mouth corners
61 and 291.  The LMedS fit (``face_align``) then rejects points that disagree, as it does for
retinaface's.  The same landmarks serve the landmark driver (mediapipe is imported lazily: a
missing package gives a one-line message).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

FIVE_POINTS = (468, 473, 4, 61, 291)


class NoFaceError(ValueError):
    """No face was found in an image."""


def _mediapipe():
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError as e:
        raise ImportError("face detection needs the mediapipe package: pip install mediapipe (%s)" % e) from e
    return mp, BaseOptions, vision


@dataclass
class FaceResult:
    """One face: ``points`` [478, 3] normalised (x / width, y / height, z) float64 as MediaPipe
    returns them, ``blendshapes`` [52] scores (None unless asked for), the image ``size`` (h, w)."""
    points: np.ndarray
    blendshapes: Optional[np.ndarray]
    size: Tuple[int, int]

    def pixels(self) -> np.ndarray:
        """[478, 2] float64 pixel (x, y)."""
        h, w = self.size
        return self.points[:, :2] * np.array([w, h], dtype=np.float64)


class FaceLandmarks:
    """A MediaPipe FaceLandmarker from a ``.task`` file; ``landmarks(rgb)`` -> [478, 2] pixels or None.

    ``min_confidence``: the face detection and presence thresholds (MediaPipe's default 0.5; the
    official A1 driver uses 0.1); ``blendshapes``: also return the 52 blendshape scores."""

    def __init__(self, model_path: str, min_confidence: float = 0.5, blendshapes: bool = False):
        if not os.path.isfile(model_path):
            raise FileNotFoundError("face landmark model not found: %s" % model_path)
        if not model_path.lower().endswith(".task"):
            raise ValueError("%s is not a MediaPipe FaceLandmarker .task file (the A1 release ships "
                             "mediapipe/face_landmarker_v2_with_blendshapes.task)" % os.path.basename(model_path))
        self.model_path = model_path
        self.min_confidence = float(min_confidence)
        self.blendshapes = bool(blendshapes)
        self._landmarker = None

    def _open(self):
        if self._landmarker is None:
            mp, BaseOptions, vision = _mediapipe()
            with open(self.model_path, "rb") as f:
                data = f.read()
            options = vision.FaceLandmarkerOptions(base_options=BaseOptions(model_asset_buffer=data), num_faces=1,
                                                   running_mode=vision.RunningMode.IMAGE,
                                                   min_face_detection_confidence=self.min_confidence,
                                                   min_face_presence_confidence=self.min_confidence,
                                                   output_face_blendshapes=self.blendshapes)
            try:
                self._landmarker = vision.FaceLandmarker.create_from_options(options)
            except Exception as e:
                raise ValueError("%s could not be opened as a MediaPipe FaceLandmarker (%s)"
                                 % (os.path.basename(self.model_path), str(e).splitlines()[0] if str(e) else e)) from e
        return self._landmarker

    def detect(self, image_rgb: np.ndarray) -> Optional[FaceResult]:
        """The most prominent face of an [H, W, 3] uint8 RGB image, or None."""
        mp, _, _ = _mediapipe()
        img = np.ascontiguousarray(np.asarray(image_rgb, dtype=np.uint8)[..., :3])
        result = self._open().detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=img))
        if not result.face_landmarks:
            return None
        pts = np.array([[p.x, p.y, p.z] for p in result.face_landmarks[0]], dtype=np.float64)
        shapes = None
        if self.blendshapes and getattr(result, "face_blendshapes", None):
            shapes = np.array([c.score for c in result.face_blendshapes[0]], dtype=np.float32)
        return FaceResult(pts, shapes, (img.shape[0], img.shape[1]))

    def landmarks(self, image_rgb: np.ndarray) -> Optional[np.ndarray]:
        """[478, 2] float64 pixel (x, y) of the most prominent face, or None."""
        face = self.detect(image_rgb)
        return None if face is None else face.pixels()

    def five_points(self, image_rgb: np.ndarray) -> np.ndarray:
        """[5, 2] float32 alignment points; raises :class:`NoFaceError` when there is no face."""
        lmk = self.landmarks(image_rgb)
        if lmk is None or lmk.shape[0] <= max(FIVE_POINTS):
            raise NoFaceError("no face was found in the portrait; use a photo with a clearly visible, roughly "
                              "frontal face, or set the face detector to 'none' for a portrait already cropped "
                              "to the face")
        return lmk[list(FIVE_POINTS)].astype(np.float32)

    def close(self) -> None:
        if self._landmarker is not None:
            try:
                self._landmarker.close()
            finally:
                self._landmarker = None

    def __del__(self):  # the task's own destructor raises at interpreter shutdown
        try:
            self.close()
        except Exception:
            pass
