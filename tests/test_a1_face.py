"""SkyReels-A1 face pipeline: portrait framing, the LMedS alignment's outlier rejection, the
MediaPipe 5 points on the example portrait, and a clear error without a face."""
import os

import numpy as np
import pytest

from skyreels_pack.cli.shipped import a1_inputs
from skyreels_pack.models.a1.face_align import (FFHQ_TEMPLATE_512, align_face, estimate_similarity_lmeds,
                                                 least_squares_similarity)
from skyreels_pack.models.a1.portrait import center_face, frame_portrait

MEDIAPIPE_TASK = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "models", "mediapipe",
                                               "face_landmarker_v2_with_blendshapes.task"))


def test_frame_portrait_crops_wide_and_pads_tall_images():
    tall = np.full((300, 100, 3), 200, np.uint8)
    out = frame_portrait(tall, 720, 480)
    assert out.shape == (480, 720, 3)
    # pad = int((1.5 * 300 - 100) / 2) = 175 black columns each side of 100: 450 wide -> x 1.6
    assert out[:, :270].max() == 0 and out[:, -270:].max() == 0 and out[:, 290:430].min() == 200
    wide = np.zeros((100, 400, 3), np.uint8)
    wide[:, 125:275] = 255  # the centre 150 columns survive the crop to 3:2
    out = frame_portrait(wide, 720, 480)
    assert out[:, 10:-10].min() == 255
    assert center_face(np.zeros((480, 720, 3), np.uint8)).shape == (512, 512, 3)


def test_lmeds_rejects_an_outlier_where_least_squares_does_not():
    rng = np.random.default_rng(3)
    angle, scale, shift = 0.2, 0.45, np.array([123.0, 57.0])
    R = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    # points whose image under the similarity M^-1 ... i.e. template = R p + shift exactly
    points = (np.linalg.solve(R, (FFHQ_TEMPLATE_512 - shift).T).T + rng.normal(0, 0.05, (5, 2)))
    points[4] += (35.0, -20.0)  # a mouth corner far off
    M = estimate_similarity_lmeds(points.astype(np.float32))
    assert np.allclose(M[:, :2], R, atol=2e-3) and np.allclose(M[:, 2], shift, atol=0.5)
    plain = least_squares_similarity(points, FFHQ_TEMPLATE_512)
    assert np.abs(plain[:, 2] - shift).max() > 2.0
    face, M2 = align_face(np.zeros((480, 720, 3), np.uint8), points)
    assert face.shape == (512, 512, 3) and np.allclose(M2, M)
    assert tuple(face[0, 0]) == (132, 133, 135)  # outside the image: facexlib's grey (BGR 135,133,132)


def test_mediapipe_points_on_the_example_portrait():
    pytest.importorskip("mediapipe")
    if not os.path.isfile(MEDIAPIPE_TASK):
        pytest.skip("no MediaPipe face landmarker at %s" % MEDIAPIPE_TASK)
    from skyreels_pack.models.a1.face_detect import FaceLandmarks, NoFaceError

    det = FaceLandmarks(MEDIAPIPE_TASK)
    try:
        portrait = a1_inputs.draw_portrait()
        pts = det.five_points(portrait)
        cx, cy = a1_inputs.CX, a1_inputs.CY
        eyes = np.array([[cx - a1_inputs.EYE_DX, cy + a1_inputs.EYE_Y], [cx + a1_inputs.EYE_DX, cy + a1_inputs.EYE_Y]])
        assert np.abs(pts[:2] - eyes).max() < 8, pts  # the eye on the image's left first
        assert pts[3, 0] < cx < pts[4, 0] and pts[3, 1] > pts[2, 1] > pts[0, 1]
        face, M = align_face(portrait, pts)
        mapped = (M[:, :2] @ pts[:2].T).T + M[:, 2]
        assert np.abs(mapped - FFHQ_TEMPLATE_512[:2]).max() < 12  # the eyes land on the template's eyes
        with pytest.raises(NoFaceError, match="no face was found"):
            det.five_points(np.full((480, 720, 3), 90, np.uint8))
    finally:
        det.close()
    with pytest.raises(ValueError, match="not a MediaPipe FaceLandmarker"):
        FaceLandmarks(os.path.join(os.path.dirname(MEDIAPIPE_TASK), "blaze_face_short_range.tflite"))
