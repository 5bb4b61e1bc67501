"""The example inputs of the SkyReels-A1 workflow: a portrait and a ready control video.

Both are drawn procedurally (no third-party media): a cartoon face that MediaPipe's face
landmarker finds, and a control video in the style of the A1 landmark driver: eyes, brows and
lips as coloured lines on black, frame 0 the portrait's own landmarks, then 100 driving
frames at 12 fps (enough for 3 windows of 49 frames) in which the mouth talks, the eyes
blink and the head sways.
"""
from __future__ import annotations

import math
import os
from typing import List, Tuple

import numpy as np

PORTRAIT = "skyreels_a1_example_portrait.png"
CONTROL = "skyreels_a1_example_control.mp4"
WIDTH, HEIGHT = 720, 480
CONTROL_SCALE = 2            # the control video is drawn at half size (the sampler frames it)
DRIVING_FRAMES = 100
FPS = 12.0

# Face geometry of the portrait at 720 x 480 (pixels).
CX, CY = WIDTH // 2, HEIGHT // 2 + 10
EYE_DX, EYE_Y = 48, -25
MOUTH_Y, MOUTH_W = 80, 45


def draw_portrait(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """[H, W, 3] uint8: a simple face on a blue-grey background."""
    from PIL import Image, ImageDraw, ImageFilter

    img = Image.new("RGB", (width, height), (70, 90, 120))
    d = ImageDraw.Draw(img)
    cx, cy = CX, CY
    fw, fh = 120, 160
    d.ellipse([cx - fw - 15, cy - fh - 30, cx + fw + 15, cy + fh - 60], fill=(60, 40, 25))     # hair
    d.rectangle([cx - 45, cy + fh - 40, cx + 45, height], fill=(200, 150, 120))               # neck
    d.ellipse([cx - fw, cy - fh, cx + fw, cy + fh], fill=(225, 180, 150))                     # face
    for side in (-1, 1):
        x, y = cx + side * EYE_DX, cy + EYE_Y
        d.ellipse([x - 26, y - 12, x + 26, y + 12], fill=(245, 245, 245))
        d.ellipse([x - 11, y - 11, x + 11, y + 11], fill=(80, 50, 30))
        d.ellipse([x - 5, y - 5, x + 5, y + 5], fill=(10, 10, 10))
        d.line([x - 30, y - 30, x + 30, y - 34], fill=(60, 40, 25), width=7)
    d.polygon([(cx, cy - 15), (cx - 18, cy + 40), (cx + 18, cy + 40)], fill=(205, 155, 125))  # nose
    d.ellipse([cx - 22, cy + 32, cx - 6, cy + 46], fill=(150, 100, 80))
    d.ellipse([cx + 6, cy + 32, cx + 22, cy + 46], fill=(150, 100, 80))
    d.chord([cx - MOUTH_W, cy + 60, cx + MOUTH_W, cy + 100], 0, 180, fill=(170, 60, 60))       # mouth
    d.line([cx - MOUTH_W, cy + MOUTH_Y, cx + MOUTH_W, cy + MOUTH_Y], fill=(120, 40, 40), width=3)
    return np.asarray(img.filter(ImageFilter.GaussianBlur(2)))


def _ellipse_points(cx: float, cy: float, rx: float, ry: float, n: int = 16) -> List[Tuple[float, float]]:
    return [(cx + rx * math.cos(2 * math.pi * k / n), cy + ry * math.sin(2 * math.pi * k / n)) for k in range(n + 1)]


def draw_control_frame(t: float, talk: float, blink: float, sway: float, scale: int = CONTROL_SCALE) -> np.ndarray:
    """One landmark frame [H/scale, W/scale, 3] uint8; talk / blink in [0, 1], sway in pixels."""
    from PIL import Image, ImageDraw

    w, h = WIDTH // scale, HEIGHT // scale
    img = Image.new("RGB", (w, h), (0, 0, 0))
    d = ImageDraw.Draw(img)

    def p(x, y):
        return ((x + sway) / scale, y / scale)

    cx, cy = CX, CY
    for side, eye_col, brow_col, pupil in ((-1, (10, 200, 180), (10, 220, 180), (10, 200, 250)),
                                          (1, (180, 200, 10), (180, 220, 10), (250, 200, 10))):
        x, y = cx + side * EYE_DX, cy + EYE_Y
        open_ry = 10 * (1 - 0.85 * blink)
        d.line([p(*q) for q in _ellipse_points(x, y, 24, open_ry)], fill=eye_col, width=1)
        d.line([p(x - 30, y - 30 - 4 * talk), p(x, y - 34 - 4 * talk), p(x + 30, y - 34)], fill=brow_col, width=1)
        if blink < 0.5:
            px, py = p(x + 3 * math.sin(t), y)
            d.rectangle([px - 1, py - 1, px + 1, py + 1], fill=pupil)
    nx, ny = p(cx, cy + 35)
    d.rectangle([nx - 2, ny - 2, nx + 1, ny + 1], fill=(200, 200, 200))
    open_y = 4 + 16 * talk
    my = cy + MOUTH_Y
    outer_top = [p(cx + MOUTH_W * u, my - 6 - 3 * (1 - u * u)) for u in np.linspace(-1, 1, 11)]
    outer_bottom = [p(cx + MOUTH_W * u, my + open_y * (1 - u * u) + 4) for u in np.linspace(-1, 1, 11)]
    inner_top = [p(cx + 0.8 * MOUTH_W * u, my - 1) for u in np.linspace(-1, 1, 9)]
    inner_bottom = [p(cx + 0.8 * MOUTH_W * u, my + open_y * (1 - u * u)) for u in np.linspace(-1, 1, 9)]
    d.line(outer_top, fill=(20, 80, 100), width=1)
    d.line(outer_bottom, fill=(10, 180, 20), width=1)
    d.line(inner_top, fill=(120, 100, 200), width=1)
    d.line(inner_bottom, fill=(100, 100, 30), width=1)
    return np.asarray(img)


def control_frames(driving: int = DRIVING_FRAMES) -> np.ndarray:
    """[1 + driving, H/2, W/2, 3] uint8: the portrait's landmarks, then the driving frames."""
    frames = [draw_control_frame(0.0, 0.0, 0.0, 0.0)]
    for i in range(driving):
        t = i / FPS
        talk = 0.5 + 0.5 * math.sin(2 * math.pi * 1.7 * t) if (i // 18) % 3 != 2 else 0.0
        blink = 1.0 if i % 29 in (0, 1) else 0.0
        frames.append(draw_control_frame(t, talk, blink, 10 * math.sin(2 * math.pi * 0.25 * t)))
    return np.stack(frames)


def write_example_inputs(folder: str) -> list:
    import torch
    from PIL import Image

    from ...media.video_io import write_video

    os.makedirs(folder, exist_ok=True)
    portrait = os.path.join(folder, PORTRAIT)
    Image.fromarray(draw_portrait()).save(portrait, optimize=True)
    control = os.path.join(folder, CONTROL)
    frames = torch.from_numpy(control_frames()).float() / 255.0
    write_video(control, frames, FPS, crf=23)
    return [portrait, control]
