"""Pixel preparation of reference images, as the official SkyReels-A2 / V3 code does it (PIL, uint8).

Every function takes a uint8 array [h, w, 3] (``to_uint8`` makes one from a ComfyUI IMAGE) and
returns the prepared pixels at the target size, so a large photo is resized before anything
is encoded: the only full-size copies are uint8 ones (3 bytes a pixel).

* :func:`pad_resize`: white bars to the target aspect, then a bicubic resize (A2 subjects and
  objects, and the square of the A2 CLIP branch);
* :func:`crop_resize`: a centre crop to the target aspect, then a bicubic resize (A2 background);
* :func:`letterbox`: fit inside the target with LANCZOS, centred on white (V3 R2V);
* :func:`clip_pixels`: A2's CLIP input: white square of 512, then the CLIP image processor
  (shortest edge, centre crop, 1/255, mean / std).

The size arithmetic is the official one, Python floats with ``int()`` truncation.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image

WHITE = 255
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
A2_CLIP_PAD = 512          # the white square every A2 reference is padded to before CLIP
_ROWS_PER_CHUNK = 256      # IMAGE -> uint8 a band of rows at a time (no full-size float copy)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """One ComfyUI IMAGE frame [H, W, C] or [1, H, W, C] (float 0..1) -> uint8 [H, W, C], rounded.

    Converted a band of rows at a time, so a 6000x4000 photo never gets a float copy."""
    if image.dim() == 4:
        if image.shape[0] < 1:
            raise ValueError("the reference IMAGE holds no frame")
        image = image[0]
    if image.dim() != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError("a reference must be an IMAGE [H, W, C] with C in 1, 3, 4; got %s" % list(image.shape))
    out = np.empty(tuple(image.shape), dtype=np.uint8)
    for r in range(0, image.shape[0], _ROWS_PER_CHUNK):
        band = image[r:r + _ROWS_PER_CHUNK].detach().to("cpu", torch.float32).mul(255.0)
        out[r:r + _ROWS_PER_CHUNK] = band.round_().clamp_(0.0, 255.0).to(torch.uint8).numpy()
    return out


def to_rgb(arr: np.ndarray) -> np.ndarray:
    """PIL's ``convert("RGB")``: grey is repeated, alpha is dropped (not composited)."""
    if arr.dtype != np.uint8:
        raise ValueError("expected uint8 pixels, got %s" % arr.dtype)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ValueError("expected pixels [h, w], [h, w, 1], [h, w, 3] or [h, w, 4], got %s" % list(arr.shape))
    if arr.shape[-1] == 1:
        return np.repeat(arr, 3, axis=-1)
    return np.ascontiguousarray(arr[..., :3])


def _resize(arr: np.ndarray, width: int, height: int, method) -> np.ndarray:
    return np.asarray(Image.fromarray(arr).resize((int(width), int(height)), method))


def pad_resize(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """White bars to the aspect height:width (top and bottom, or left and right, equally),
    then a bicubic resize to width x height."""
    arr = to_rgb(arr)
    h, w = arr.shape[:2]
    if h / w < height / width:
        pad = int((((height / width) * w) - h) / 2.0)
        canvas = np.full((h + 2 * pad, w, 3), WHITE, dtype=np.uint8)
        canvas[pad:pad + h] = arr
    else:
        pad = int((((width / height) * h) - w) / 2.0)
        canvas = np.full((h, w + 2 * pad, 3), WHITE, dtype=np.uint8)
        canvas[:, pad:pad + w] = arr
    return _resize(canvas, width, height, Image.Resampling.BICUBIC)


def crop_resize(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """A centre crop to the aspect height:width, then a bicubic resize to width x height."""
    arr = to_rgb(arr)
    h, w = arr.shape[:2]
    if h / w < height / width:
        keep = max(1, int(h / height * width))
        left = (w - keep) // 2
        arr = arr[:, left:left + keep]
    else:
        keep = max(1, int(w / width * height))
        top = (h - keep) // 2
        arr = arr[top:top + keep]
    return _resize(np.ascontiguousarray(arr), width, height, Image.Resampling.BICUBIC)


def letterbox(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Fit inside width x height keeping the aspect (LANCZOS), centred on white."""
    arr = to_rgb(arr)
    h, w = arr.shape[:2]
    ratio = w / h
    if ratio > width / height:
        new_w, new_h = width, int(width / ratio)
    else:
        new_w, new_h = int(height * ratio), height
    new_w, new_h = max(1, new_w), max(1, new_h)  # the official code fails on a zero side
    fitted = _resize(arr, new_w, new_h, Image.Resampling.LANCZOS)
    canvas = np.full((height, width, 3), WHITE, dtype=np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[top:top + new_h, left:left + new_w] = fitted
    return canvas


def clip_pixels(arr: np.ndarray, size: int = 224, pad_to: int = A2_CLIP_PAD,
                mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD) -> torch.Tensor:
    """A2's CLIP input [1, 3, size, size] float32: a white square of ``pad_to``, then the CLIP
    image processor (bicubic shortest edge to ``size``, centre crop, 1/255, mean / std)."""
    square = pad_resize(arr, pad_to, pad_to)
    h, w = square.shape[:2]
    if h <= w:
        new_h, new_w = size, int(size * w / h)
    else:
        new_h, new_w = int(size * h / w), size
    resized = _resize(square, new_w, new_h, Image.Resampling.BICUBIC)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    crop = resized[top:top + size, left:left + size]
    x = (crop.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def to_pm1(arr: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float32 [3, H, W] in [-1, 1] as diffusers' image processor: x/255*2-1."""
    x = torch.from_numpy(np.array(arr, dtype=np.uint8)).permute(2, 0, 1).float() / 255.0
    return x * 2.0 - 1.0


def to_pm1_centered(arr: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float32 [3, H, W] in [-1, 1] as the V3 R2V pipeline: (x/255-0.5)/0.5."""
    x = torch.from_numpy(np.array(arr, dtype=np.uint8)).permute(2, 0, 1).float() / 255.0
    return (x - 0.5) / 0.5
