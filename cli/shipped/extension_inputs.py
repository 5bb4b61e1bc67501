"""The example clip of the V3 extension workflows: the procedural lake of ``wan_v2_inputs``
(the pack ships no third-party media), 2 s at 24 fps (49 frames), 16:9.  It is longer than
the 33 frames the 5-second shot switch continues from."""
from __future__ import annotations

import os

import torch

from .extension import EXAMPLE_VIDEO
from .wan_v2_inputs import scene

FRAMES = 49


def write_example_inputs(folder: str) -> list:
    from ...media.video_io import write_video

    os.makedirs(folder, exist_ok=True)
    frames = torch.cat([scene(i / (FRAMES - 1), 640, 360) for i in range(FRAMES)], 0)
    p = os.path.join(folder, EXAMPLE_VIDEO)
    write_video(p, frames, 24.0, crf=28)
    return [p]
