"""Example reference images of the A2 / V3 R2V workflows: a person, a teddy bear, a forest, a mug.

Drawn procedurally from simple shapes (no third-party media); ``python . build-workflows
--inputs`` rewrites them.  The subjects stand on white, as reference photos usually do; the
forest fills its frame, as a background does.
"""
from __future__ import annotations

import os
from typing import List

import torch

SUBJECT = "skyreels_ref_person.png"
OBJECT = "skyreels_ref_teddy.png"
BACKGROUND = "skyreels_ref_forest.png"
PRODUCT = "skyreels_ref_mug.png"


def _grid(width: int, height: int):
    y = torch.linspace(0, 1, height).view(height, 1).expand(height, width)
    x = torch.linspace(0, 1, width).view(1, width).expand(height, width)
    return x, y


def _paint(img: torch.Tensor, where: torch.Tensor, rgb) -> None:
    img[where] = torch.tensor(rgb, dtype=torch.float32)


def _ellipse(x, y, cx, cy, rx, ry):
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0


def person(width: int = 384, height: int = 576) -> torch.Tensor:
    """A standing man in a green jacket and jeans, on white: IMAGE [1, H, W, 3]."""
    x, y = _grid(width, height)
    img = torch.ones(height, width, 3)
    _paint(img, (abs(x - 0.5) < 0.07 + 0.02 * (y - 0.6)) & (y > 0.55) & (y < 0.97), (0.2, 0.27, 0.45))  # legs
    _paint(img, (abs(x - 0.5) < 0.012) & (y > 0.6), (1.0, 1.0, 1.0))                                       # gap
    _paint(img, (abs(x - 0.5) < 0.2 - 0.05 * (y - 0.25)) & (y > 0.25) & (y < 0.6), (0.25, 0.45, 0.3))      # jacket
    _paint(img, (abs(x - 0.28) < 0.05) & (y > 0.27) & (y < 0.58), (0.22, 0.4, 0.27))                       # arms
    _paint(img, (abs(x - 0.72) < 0.05) & (y > 0.27) & (y < 0.58), (0.22, 0.4, 0.27))
    _paint(img, _ellipse(x, y, 0.5, 0.15, 0.1, 0.09), (0.87, 0.7, 0.58))                                 # face
    _paint(img, _ellipse(x, y, 0.5, 0.1, 0.105, 0.05) & (y < 0.11), (0.25, 0.17, 0.1))                     # hair
    _paint(img, _ellipse(x, y, 0.46, 0.15, 0.012, 0.01) | _ellipse(x, y, 0.54, 0.15, 0.012, 0.01), (0.1, 0.1, 0.1))
    _paint(img, (abs(x - 0.5) < 0.035) & (abs(y - 0.195) < 0.006), (0.6, 0.3, 0.3))                        # mouth
    _paint(img, (abs(x - 0.5) < 0.05) & (y > 0.95) & (y < 0.985) & (abs(x - 0.5) > 0.015), (0.15, 0.1, 0.08))
    return img.unsqueeze(0)


def teddy(width: int = 448, height: int = 448) -> torch.Tensor:
    """A brown teddy bear on white."""
    x, y = _grid(width, height)
    img = torch.ones(height, width, 3)
    fur, light = (0.55, 0.35, 0.18), (0.78, 0.6, 0.42)
    for cx in (0.33, 0.67):
        _paint(img, _ellipse(x, y, cx, 0.16, 0.08, 0.08), fur)                         # ears
        _paint(img, _ellipse(x, y, cx, 0.16, 0.04, 0.04), light)
        _paint(img, _ellipse(x, y, 0.5 + 1.3 * (cx - 0.5), 0.6, 0.09, 0.14), fur)      # arms
        _paint(img, _ellipse(x, y, 0.5 + 0.7 * (cx - 0.5), 0.87, 0.11, 0.09), fur)     # legs
    _paint(img, _ellipse(x, y, 0.5, 0.65, 0.2, 0.25), fur)                             # body
    _paint(img, _ellipse(x, y, 0.5, 0.68, 0.12, 0.15), light)                          # belly
    _paint(img, _ellipse(x, y, 0.5, 0.3, 0.19, 0.17), fur)                             # head
    _paint(img, _ellipse(x, y, 0.5, 0.36, 0.08, 0.06), light)                          # muzzle
    _paint(img, _ellipse(x, y, 0.5, 0.33, 0.03, 0.02), (0.1, 0.07, 0.05))              # nose
    _paint(img, _ellipse(x, y, 0.42, 0.26, 0.02, 0.02) | _ellipse(x, y, 0.58, 0.26, 0.02, 0.02), (0.05, 0.05, 0.05))
    _paint(img, (abs(x - 0.5) < 0.12) & (abs(y - 0.45) < 0.015), (0.75, 0.15, 0.2))     # ribbon
    return img.unsqueeze(0)


def forest(width: int = 960, height: int = 544) -> torch.Tensor:
    """A forest clearing: sky, a row of pines, grass and a path."""
    x, y = _grid(width, height)
    img = torch.stack([0.55 + 0.3 * y, 0.75 + 0.15 * y, 0.95 - 0.1 * y], -1).clone()
    _paint(img, y > 0.62, (0.3, 0.52, 0.22))
    path = (y > 0.62) & (abs(x - 0.5) < 0.03 + 0.25 * (y - 0.62))
    _paint(img, path, (0.62, 0.5, 0.35))
    for i in range(13):
        cx = (i + 0.5) / 13 + 0.02 * ((i * 7) % 3 - 1)
        top = 0.12 + 0.08 * ((i * 5) % 4) / 3
        half = 0.05 * (y - top) / (0.66 - top)
        shade = 0.18 + 0.06 * ((i * 3) % 4) / 3
        _paint(img, (y > top) & (y < 0.66) & (abs(x - cx) < half) & ~path, (0.08, shade + 0.1, 0.1))
        _paint(img, (abs(x - cx) < 0.008) & (y > 0.62) & (y < 0.7) & ~path, (0.35, 0.22, 0.12))
    return img.clamp(0, 1).unsqueeze(0)


def mug(width: int = 512, height: int = 416) -> torch.Tensor:
    """A blue ceramic mug with a white stripe, on white."""
    x, y = _grid(width, height)
    img = torch.ones(height, width, 3)
    body = (abs(x - 0.45) < 0.22) & (y > 0.22) & (y < 0.85)
    _paint(img, _ellipse(x, y, 0.72, 0.52, 0.12, 0.18) & ~_ellipse(x, y, 0.72, 0.52, 0.065, 0.11), (0.15, 0.3, 0.65))
    _paint(img, body | _ellipse(x, y, 0.45, 0.85, 0.22, 0.05), (0.18, 0.35, 0.72))
    _paint(img, body & (abs(y - 0.45) < 0.03), (0.95, 0.95, 0.95))
    _paint(img, _ellipse(x, y, 0.45, 0.22, 0.22, 0.05), (0.12, 0.25, 0.55))
    _paint(img, _ellipse(x, y, 0.45, 0.225, 0.19, 0.035), (0.35, 0.2, 0.1))  # coffee
    _paint(img, body & (abs(x - 0.32) < 0.02) & (y > 0.28) & (y < 0.8), (0.4, 0.55, 0.85))  # highlight
    return img.unsqueeze(0)


def write_example_inputs(folder: str) -> List[str]:
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    out = []
    for name, draw in ((SUBJECT, person), (OBJECT, teddy), (BACKGROUND, forest), (PRODUCT, mug)):
        arr = (draw()[0] * 255).round().byte().numpy()
        path = os.path.join(folder, name)
        Image.fromarray(arr).save(path, optimize=True)
        out.append(path)
    return out
