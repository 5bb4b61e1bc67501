"""The example inputs the shipped workflows load (a start image, an end image, a short clip).

They are drawn procedurally (a lake at dawn, the same scene a little later), so the pack
ships no third-party media; ``python . build-workflows`` rewrites them.
"""
from __future__ import annotations

import math
import os

import torch

WIDTH, HEIGHT = 960, 544


def scene(t: float, width: int = WIDTH, height: int = HEIGHT) -> torch.Tensor:
    """IMAGE [1, H, W, 3] of a simple landscape; t in [0, 1] moves the sun and the boat."""
    y = torch.linspace(0, 1, height).view(height, 1)
    x = torch.linspace(0, 1, width).view(1, width)
    sky = torch.stack([(0.55 + 0.4 * y).expand(height, width), (0.45 + 0.3 * y).expand(height, width),
                       (0.35 + 0.2 * (1 - y)).expand(height, width)], -1).clone()
    horizon = 0.55
    ridge = horizon - 0.12 * torch.sin(x * 7.0 + 1.3).abs() - 0.05 * torch.sin(x * 17.0)
    mountain = (y < horizon) & (y > ridge)
    img = sky
    img[mountain.expand(height, width)] = torch.tensor([0.25, 0.27, 0.35])
    water = (y >= horizon).expand(height, width)
    shimmer = 0.04 * torch.sin(x * 90 + y * 40 + t * 6.0)
    wcol = torch.stack([0.2 + 0.3 * (1 - y) + shimmer, 0.3 + 0.25 * (1 - y) + shimmer, (0.45 + 0.2 * (1 - y)).expand(height, width)], -1)
    img = torch.where(water.unsqueeze(-1), wcol.expand(height, width, 3), img)
    sx, sy = 0.3 + 0.3 * t, 0.35 - 0.1 * t
    sun = ((x - sx) ** 2 + ((y - sy) * height / width) ** 2).sqrt() < 0.04
    img[sun.expand(height, width)] = torch.tensor([1.0, 0.85, 0.5])
    bx = 0.55 + 0.15 * t
    boat = (abs(x - bx) < 0.05) & (y > 0.66) & (y < 0.69 + 0.01 * math.sin(t * 3))
    img[boat.expand(height, width)] = torch.tensor([0.35, 0.2, 0.1])
    return img.clamp(0, 1).unsqueeze(0)


def write_example_inputs(folder: str) -> list:
    from PIL import Image

    from ...media.video_io import write_video

    os.makedirs(folder, exist_ok=True)
    out = []
    for name, t in (("skyreels_example_start.png", 0.0), ("skyreels_example_end.png", 1.0)):
        arr = (scene(t)[0] * 255).round().byte().numpy()
        p = os.path.join(folder, name)
        Image.fromarray(arr).save(p, optimize=True)
        out.append(p)
    frames = torch.cat([scene(i / 32, 480, 272) for i in range(33)], 0)
    p = os.path.join(folder, "skyreels_example_clip.mp4")
    write_video(p, frames, 24.0, crf=28)
    out.append(p)
    return out
