"""The input video of a SkyReels-V3 extension, made ready as the official ``process_video`` does.

* The last n frames are the prefix (25 for single shot; 9 / 17 / 25 / 33 for shot switching),
  the frames before them are the earlier video.
* The size is the bucket of the video's aspect at the chosen resolution
  (:mod:`media.aspect_buckets`), unless a size is given.
* Both parts are resized with PyTorch's default (legacy) nearest filter, as the official
  code does, on 8-bit values: ComfyUI IMAGE frames are quantised to uint8 first, so a video
  loaded from a file reaches the VAE exactly as in the official pipeline.

Deliberate difference: the official code needs *more* than n frames (it stacks an empty
"earlier" list otherwise); a video of exactly n frames is accepted here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch

from ..media.aspect_buckets import bucket_size
from ..media.frames import resize_frames


@dataclass
class ExtensionInput:
    prefix: torch.Tensor     # IMAGE [n, H, W, 3]: the last n frames at the working size (uint8 values / 255)
    earlier: torch.Tensor    # IMAGE [T - n, H, W, 3]: the frames before them, same size
    width: int
    height: int

    @property
    def video(self) -> torch.Tensor:
        """The whole input at the working size."""
        return torch.cat([self.earlier, self.prefix], dim=0)


def quantize(frames: torch.Tensor) -> torch.Tensor:
    """IMAGE -> the same frames rounded to 8 bits (what a video file holds), float32 in [0, 1]."""
    return (frames.float().clamp(0, 1) * 255).round() / 255


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    return (frames.float().clamp(0, 1) * 255).round().to(torch.uint8)


def to_model_video(frames: torch.Tensor) -> torch.Tensor:
    """uint8 IMAGE-like [T, H, W, 3] -> [1, 3, T, H, W] in [-1, 1], as the official pipeline
    builds the VAE input (``u / (255 / 2) - 1`` in float32)."""
    return (frames.permute(3, 0, 1, 2).unsqueeze(0).float() / (255.0 / 2.0) - 1.0)


def split_prefix(frames: torch.Tensor, n: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(the last ``n`` frames, the frames before them)."""
    if frames.dim() != 4 or frames.shape[-1] != 3:
        raise ValueError("the video must be an IMAGE [frames, height, width, 3], got %s" % list(frames.shape))
    if frames.shape[0] < n:
        raise ValueError("the video has %d frames; this extension continues from its last %d, so it needs at "
                         "least %d" % (frames.shape[0], n, n))
    cut = frames.shape[0] - n
    return frames[cut:], frames[:cut]


def working_size(height: int, width: int, resolution="720P", size: Tuple[int, int] = (0, 0)) -> Tuple[int, int]:
    """(height, width): ``size`` = (width, height) when given (non-zero), else the bucket of
    the input's aspect at ``resolution`` (a name or a table)."""
    w, h = size
    if w or h:
        if not (w and h):
            raise ValueError("give both width and height, or neither (0 = the official bucket)")
        if w % 16 or h % 16:
            raise ValueError("width and height must be multiples of 16, got %dx%d" % (w, h))
        return int(h), int(w)
    return bucket_size(height, width, resolution)


def prepare_input(video: torch.Tensor, n: int, resolution="720P", size: Tuple[int, int] = (0, 0)) -> ExtensionInput:
    """The prefix and the earlier frames of ``video`` (IMAGE [T, H, W, 3]) at the working size."""
    prefix, earlier = split_prefix(video, n)
    height, width = working_size(int(video.shape[1]), int(video.shape[2]), resolution, size)
    return ExtensionInput(prefix=_resize(prefix, width, height), earlier=_resize(earlier, width, height),
                          width=width, height=height)


def _resize(frames: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Nearest resize, then 8 bits (the same as the other way round: nearest only picks pixels)."""
    if frames.shape[0] == 0:
        return frames.new_zeros((0, height, width, 3), dtype=torch.float32)
    return quantize(resize_frames(frames, width, height, "nearest-legacy"))

