"""Pixel-size rules of the SkyReels / Wan models, and cropping / resizing of IMAGE frames.

* Width and height must be multiples of 16 (VAE /8, patch 2): :func:`snap_size`.
* Frame counts must be 4k+1 (the causal VAE keeps frame 0 and packs 4 frames per latent):
  :func:`snap_frames`.
* Image-to-video (spec §4.4): a portrait image swaps the requested W/H (:func:`orient_like`),
  then the image is center-cropped to the target aspect and resized (:func:`center_crop_resize`).
* Video extension (spec §4.5.5) reads the input video resized to W x H without crop
  (:func:`resize_frames`).
* SkyReels-A1 drives at 12 fps: :func:`resample_indices` / :func:`resample_frames` pick the
  source frames the official scripts pick (float64 times, truncated; frames are dropped and
  repeated even for 12, 24 and 30 fps sources).

Everything works on ComfyUI IMAGE tensors ``[B, H, W, C]`` float in [0, 1] (video frames are the
batch) and is pure torch: ``torch.nn.functional.interpolate`` (antialiased when shrinking) for
bilinear / bicubic, a separable windowed-sinc matrix for lanczos.  ``nearest-legacy`` is
PyTorch's default ``nearest`` (source index ``floor(dst * in / out)``), which the official
SkyReels-V3 extension code uses; ``nearest`` samples pixel centres (``nearest-exact``).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

SIZE_MULTIPLE = 16
FRAME_STEP = 4
RESIZE_METHODS = ("bicubic", "bilinear", "lanczos", "nearest", "nearest-legacy")
SIZE_MODES = ("round", "floor", "ceil", "refuse")
FRAME_MODES = ("round", "floor", "ceil", "refuse")

# frames per interpolate call: bounds the temporary memory of long videos
_RESIZE_CHUNK = 16


# --------------------------------------------------------------------------- size rules


def _snap_one(value: int, multiple: int, mode: str) -> int:
    if mode == "floor":
        snapped = (value // multiple) * multiple
    elif mode == "ceil":
        snapped = -(-value // multiple) * multiple
    else:  # round; ties go up
        snapped = ((value + multiple // 2) // multiple) * multiple
    return max(snapped, multiple)


def _neighbours(value: int, multiple: int) -> str:
    low = max((value // multiple) * multiple, multiple)
    high = low + multiple if low < value else low
    return "%d" % low if low == high else "%d or %d" % (low, high)


def snap_size(width: int, height: int, multiple: int = SIZE_MULTIPLE, mode: str = "round") -> Tuple[int, int]:
    """Return ``(width, height)`` made multiples of ``multiple`` (16 for the SkyReels/Wan models).

    mode: ``"round"`` to the nearest multiple (ties go up), ``"floor"`` down (what the official
    I2V pipeline does), ``"ceil"`` up, or ``"refuse"``: return the size unchanged when it already
    fits, else raise ValueError naming the sizes to use.  The result is never below ``multiple``.
    """
    if mode not in SIZE_MODES:
        raise ValueError("size mode must be one of %s, got %r" % (", ".join(SIZE_MODES), mode))
    if int(multiple) < 1:
        raise ValueError("multiple must be a positive integer, got %r" % (multiple,))
    multiple = int(multiple)
    for name, value in (("width", width), ("height", height)):
        if int(value) != value or value < 1:
            raise ValueError("%s must be a positive integer, got %r" % (name, value))
    width, height = int(width), int(height)
    if mode == "refuse":
        bad = [(name, v) for name, v in (("width", width), ("height", height)) if v % multiple]
        if bad:
            parts = ["%s %d (use %s)" % (name, v, _neighbours(v, multiple)) for name, v in bad]
            raise ValueError("size %dx%d must be a multiple of %d: %s; e.g. %dx%d"
                             % (width, height, multiple, "; ".join(parts),
                                _snap_one(width, multiple, "round"), _snap_one(height, multiple, "round")))
        return width, height
    return _snap_one(width, multiple, mode), _snap_one(height, multiple, mode)


def snap_frames(n: int, mode: str = "round", step: int = FRAME_STEP) -> int:
    """Return a frame count of the form ``step*k + 1`` (4k+1: 1, 5, ..., 93, 97, ...).

    mode: ``"round"`` to the nearest valid count (ties go up, e.g. 95 -> 97, 96 -> 97,
    94 -> 93), ``"floor"`` down, ``"ceil"`` up, or ``"refuse"``: return ``n`` when valid, else
    raise ValueError("frames must be 4k+1 (e.g. 93 or 97), got 96").
    """
    if mode not in FRAME_MODES:
        raise ValueError("frame mode must be one of %s, got %r" % (", ".join(FRAME_MODES), mode))
    if int(n) != n or n < 1:
        raise ValueError("frame count must be a positive integer, got %r" % (n,))
    n, step = int(n), int(step)
    if (n - 1) % step == 0:
        return n
    low = ((n - 1) // step) * step + 1
    high = low + step
    if mode == "refuse":
        raise ValueError("frames must be %dk+1 (e.g. %d or %d), got %d" % (step, low, high, n))
    if mode == "floor":
        return low
    if mode == "ceil":
        return high
    return high if (n - low) * 2 >= step else low


def frames_to_latent_frames(n: int, step: int = FRAME_STEP) -> int:
    """Latent frames of a valid pixel frame count: ``(n - 1) // 4 + 1``."""
    return (int(n) - 1) // step + 1


# --------------------------------------------------------------------------- geometry


def _check_image(images: torch.Tensor, what: str = "images") -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError("%s must be an IMAGE tensor [B, H, W, C], got %s" % (what, shape))
    if images.shape[1] < 1 or images.shape[2] < 1:
        raise ValueError("%s are empty: shape %s" % (what, tuple(images.shape)))


def orient_like(width: int, height: int, image: torch.Tensor) -> Tuple[int, int]:
    """Return ``(width, height)`` swapped when needed so the target has the orientation of ``image``.

    The official V2 I2V rule (spec §4.4): a portrait image (h > w) with a landscape target
    (e.g. 960x544) generates 544x960.  Symmetrically a landscape image with a portrait target is
    swapped too.  Square images, or a square target, leave the size unchanged.
    ``image``: IMAGE [B, H, W, C] or a single frame [H, W, C].
    """
    if image.dim() == 3:
        img_h, img_w = int(image.shape[0]), int(image.shape[1])
    else:
        _check_image(image, "image")
        img_h, img_w = int(image.shape[1]), int(image.shape[2])
    if (img_h > img_w and width > height) or (img_w > img_h and height > width):
        return height, width
    return width, height


def center_crop_box(src_width: int, src_height: int, width: int, height: int) -> Tuple[int, int, int, int]:
    """The ``(left, top, crop_width, crop_height)`` of the largest centered crop of a
    ``src_width x src_height`` frame that has the aspect of ``width x height`` (the official
    ``resizecrop`` rule: the kept side is whole, the other is truncated to an integer)."""
    if src_height * width > height * src_width:  # source is taller than the target aspect
        crop_w = src_width
        crop_h = max(1, min(src_height, int(src_width * height / width)))
    else:
        crop_h = src_height
        crop_w = max(1, min(src_width, int(src_height * width / height)))
    return (src_width - crop_w) // 2, (src_height - crop_h) // 2, crop_w, crop_h


def center_crop_resize(images: torch.Tensor, width: int, height: int, method: str = "bicubic",
                       crop_aspect: Optional[Tuple[int, int]] = None) -> torch.Tensor:
    """Center-crop IMAGE frames to the aspect of ``width x height``, then resize to exactly that.

    images: IMAGE [B, H, W, C] in [0, 1]; returns [B, height, width, C] float32 on the same device.
    method: "bicubic" (default), "bilinear", "lanczos" or "nearest".  ``crop_aspect=(w, h)`` crops
    to that aspect instead (the official I2V pipeline crops to the requested size, then resizes to
    it floored to multiples of 16)::

        w, h = orient_like(W, H, image)
        out = center_crop_resize(image, *snap_size(w, h, mode="floor"), crop_aspect=(w, h))
    """
    _check_image(images)
    src_h, src_w = int(images.shape[1]), int(images.shape[2])
    aspect_w, aspect_h = crop_aspect if crop_aspect is not None else (width, height)
    left, top, crop_w, crop_h = center_crop_box(src_w, src_h, int(aspect_w), int(aspect_h))
    cropped = images[:, top:top + crop_h, left:left + crop_w, :]
    return resize_frames(cropped, width, height, method)


def resize_frames(images: torch.Tensor, width: int, height: int, method: str = "bicubic") -> torch.Tensor:
    """Resize IMAGE frames to ``width x height`` without cropping (the aspect may change).

    images: IMAGE [B, H, W, C]; returns [B, height, width, C] float32 on the same device,
    clamped to [0, 1].  Downscaling is antialiased.  Works through the frames in small groups so
    long videos do not need a second full-size float copy at once.
    """
    _check_image(images)
    if method not in RESIZE_METHODS:
        raise ValueError("resize method must be one of %s, got %r" % (", ".join(RESIZE_METHODS), method))
    width, height = int(width), int(height)
    if width < 1 or height < 1:
        raise ValueError("target size must be positive, got %dx%d" % (width, height))
    images = images.float()
    if images.shape[1] == height and images.shape[2] == width:
        return images.clone()
    out = torch.empty((images.shape[0], height, width, images.shape[3]), dtype=torch.float32, device=images.device)
    for start in range(0, images.shape[0], _RESIZE_CHUNK):
        chunk = images[start:start + _RESIZE_CHUNK]
        if method == "lanczos":
            out[start:start + _RESIZE_CHUNK] = _resize_lanczos(chunk, width, height)
        else:
            nchw = chunk.permute(0, 3, 1, 2)
            if method in ("nearest", "nearest-legacy"):
                mode = "nearest-exact" if method == "nearest" else "nearest"
                resized = F.interpolate(nchw, size=(height, width), mode=mode)
            else:
                resized = F.interpolate(nchw, size=(height, width), mode=method,
                                        align_corners=False, antialias=True)
            out[start:start + _RESIZE_CHUNK] = resized.permute(0, 2, 3, 1)
    return out.clamp_(0.0, 1.0)


# --------------------------------------------------------------------------- lanczos


def _lanczos_kernel(x: torch.Tensor, a: int = 3) -> torch.Tensor:
    x = x.abs()
    out = torch.sinc(x) * torch.sinc(x / a)
    return torch.where(x < a, out, torch.zeros_like(out))


def _lanczos_matrix(in_size: int, out_size: int, device: torch.device, a: int = 3) -> torch.Tensor:
    """[out_size, in_size] weights: output pixel i = sum_j w[i, j] * input pixel j.  When
    shrinking, the kernel is stretched by the scale (antialias), like Pillow's resampler."""
    scale = in_size / out_size
    stretch = max(scale, 1.0)
    centers = (torch.arange(out_size, dtype=torch.float64, device=device) + 0.5) * scale
    positions = torch.arange(in_size, dtype=torch.float64, device=device) + 0.5
    weights = _lanczos_kernel((positions[None, :] - centers[:, None]) / stretch, a)
    weights = weights / weights.sum(dim=1, keepdim=True)
    return weights.float()


def _resize_lanczos(images: torch.Tensor, width: int, height: int) -> torch.Tensor:
    rows = _lanczos_matrix(images.shape[1], height, images.device)
    cols = _lanczos_matrix(images.shape[2], width, images.device)
    out = torch.einsum("oh,bhwc->bowc", rows, images)
    return torch.einsum("pw,bowc->bopc", cols, out)


__all__ = [
    "SIZE_MULTIPLE", "FRAME_STEP", "RESIZE_METHODS", "snap_size", "snap_frames",
    "frames_to_latent_frames", "orient_like", "center_crop_box", "center_crop_resize",
    "resize_frames",
]


# --------------------------------------------------------------------------- frame-rate resampling


def resample_indices(num_frames: int, fps: float, target_fps: float = 12.0) -> list:
    """Source frame indices of a ``num_frames`` video at ``fps`` resampled to ``target_fps``, by
    the SkyReels-A1 rule: times k / target_fps for k < ceil(duration * target_fps), each index
    int(k * (1 / target_fps) * fps) computed in float64 and truncated, indices >= num_frames
    dropped.  (k * (1/12) * fps is often a hair below an integer: a 12 fps source gives
    0, 1, 2, 3, 4, 5, 6, 6, 8, ...)"""
    import numpy as np

    if num_frames < 1:
        return []
    if not fps > 0 or not target_fps > 0:
        raise ValueError("frame rates must be positive, got %r -> %r" % (fps, target_fps))
    times = np.arange(0, num_frames / float(fps), 1 / float(target_fps))
    idx = (times * float(fps)).astype(np.int32)
    return [int(i) for i in idx[idx < num_frames]]


def resample_frames(images: torch.Tensor, fps: float, target_fps: float = 12.0) -> torch.Tensor:
    """IMAGE frames at ``fps`` -> the frames :func:`resample_indices` picks for ``target_fps``."""
    _check_image(images)
    idx = resample_indices(images.shape[0], fps, target_fps)
    return images[torch.tensor(idx, dtype=torch.long)]
