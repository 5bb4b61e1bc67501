"""The example inputs of the A1 landmark-driver workflow: a real face photo and a driving clip.

* ``skyreels_a1_astronaut.png``: the astronaut portrait that scikit-image ships
  (``skimage.data.astronaut()``: Eileen Collins, NASA; public domain), cut to 3:2 around the
  face (330 x 220).
* ``skyreels_a1_astronaut_drive.mp4``: the same photo moved like a head (rotation, sway,
  nodding, a little zoom) with the mouth opening and closing, 24 fps, 3 s, with a voice-like
  buzz whose loudness follows the mouth (so the workflow's kept sound has something to keep).

The clip's motion is :func:`head_motion` (tests measure the control video against it).
Building needs the photo: from scikit-image when installed, else the committed portrait in
``workflows/inputs/`` is reused (its pixels are the same).
"""
from __future__ import annotations

import math
import os
from typing import Dict

import numpy as np

PORTRAIT = "skyreels_a1_astronaut.png"
DRIVING = "skyreels_a1_astronaut_drive.mp4"
CROP = (10, 230, 60, 390)          # y0, y1, x0, x1 of the 512 x 512 astronaut
FPS = 24.0
SECONDS = 3.0
SAMPLE_RATE = 24000
# the head's pivot in the portrait (the nose, in pixels of the 330 x 220 crop)
PIVOT = (163.0, 116.0)
MOUTH = (163.0, 134.0)             # between the lips


def head_motion(t: float) -> Dict[str, float]:
    """The clip's head pose at time t (seconds): roll in degrees (positive = counter-clockwise on
    screen), shift in pixels of the clip, zoom factor, and the mouth opening in pixels."""
    return {
        "roll": 12.0 * math.sin(2 * math.pi * t / 2.0),
        "dx": 14.0 * math.sin(2 * math.pi * t / 3.0),
        "dy": 6.0 * math.sin(2 * math.pi * t / 1.5),
        "zoom": 1.0 + 0.08 * math.sin(2 * math.pi * t / 3.0 + 1.0) - 0.08 * math.sin(1.0),
        "mouth": 7.0 * 0.5 * (1 - math.cos(2 * math.pi * t * 1.25)),
    }


def _astronaut() -> np.ndarray:
    try:
        from skimage import data
    except ImportError:
        from ..main import EXAMPLE_INPUTS

        p = os.path.join(EXAMPLE_INPUTS, PORTRAIT)
        if not os.path.isfile(p):
            raise ImportError("the A1 example portrait is drawn from scikit-image's astronaut photo: "
                              "pip install scikit-image") from None
        from PIL import Image

        return np.asarray(Image.open(p).convert("RGB"))
    y0, y1, x0, x1 = CROP
    return np.ascontiguousarray(data.astronaut()[y0:y1, x0:x1, :3])


def driving_frame(portrait: np.ndarray, t: float) -> np.ndarray:
    """The portrait moved by :func:`head_motion` at time t: an [H, W, 3] uint8 frame."""
    import cv2

    m = head_motion(t)
    h, w = portrait.shape[:2]
    img = portrait
    if m["mouth"] > 0.05:  # the lower lip and chin pulled down, fading with the distance
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        mx, my = MOUTH
        below = np.clip((yy - my + 2) / 4.0, 0, 1)
        fall = np.exp(-(((xx - mx) / 26.0) ** 2) - (((yy - my - 14) / 30.0) ** 2))
        shift = m["mouth"] * below * fall
        img = cv2.remap(portrait, xx, yy - shift, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    a = cv2.getRotationMatrix2D(PIVOT, m["roll"], m["zoom"])
    a[:, 2] += (m["dx"], m["dy"])
    return cv2.warpAffine(img, a, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def voice(frames: int, fps: float = FPS, rate: int = SAMPLE_RATE) -> np.ndarray:
    """[samples] float32: a 140 Hz buzz whose loudness follows the mouth opening."""
    n = int(round(frames / fps * rate))
    t = np.arange(n, dtype=np.float64) / rate
    buzz = sum(np.sin(2 * np.pi * 140.0 * k * t) / k for k in range(1, 8))
    loud = np.array([head_motion(x)["mouth"] for x in t[::rate // 100]]) / 7.0
    loud = np.interp(t, t[::rate // 100], loud)
    return (0.25 * loud * buzz / 2.6).astype(np.float32)


def write_example_inputs(folder: str) -> list:
    import torch
    from PIL import Image

    from ...media.video_io import write_video

    os.makedirs(folder, exist_ok=True)
    portrait = _astronaut()
    p_img = os.path.join(folder, PORTRAIT)
    Image.fromarray(portrait).save(p_img, optimize=True)
    frames = int(round(FPS * SECONDS))
    video = np.stack([driving_frame(portrait, k / FPS) for k in range(frames)])
    images = torch.from_numpy(video).float().div(255.0)
    audio = {"waveform": torch.from_numpy(voice(frames))[None, None], "sample_rate": SAMPLE_RATE}
    p_vid = os.path.join(folder, DRIVING)
    write_video(p_vid, images, FPS, audio=audio, crf=26)
    return [p_img, p_vid]
