"""Image preprocessing for the CLIP vision tower, as the official ``CLIPModel.encode_video``.

Pixels in [-1, 1] -> bicubic resize of the whole image to 224 x 224 (no crop, no antialias,
aspect ratio not kept) -> map to [0, 1] -> ``(x - mean) / std`` per channel with the OpenAI
CLIP constants.  ComfyUI IMAGE tensors ([B, H, W, 3] in [0, 1]) are accepted too; bicubic
interpolation is affine, so resizing in [0, 1] is the same as resizing in [-1, 1].
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

LAYOUTS = ("auto", "comfy", "pm1")


def _layout(images: torch.Tensor, layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError("layout must be one of %s, not %r" % (", ".join(LAYOUTS), layout))
    if layout != "auto":
        return layout
    if images.dim() == 4 and images.shape[-1] in (3, 4) and images.shape[1] not in (3,):
        return "comfy"
    if images.dim() in (4, 5) and images.shape[1] == 3:
        return "pm1"
    raise ValueError("expected a ComfyUI IMAGE [B, H, W, 3] in [0, 1], or pixels [B, 3, H, W] / video "
                     "[B, 3, T, H, W] in [-1, 1]; got shape %s" % list(images.shape))


def to_unit_pixels(images: torch.Tensor, layout: str = "auto") -> torch.Tensor:
    """[N, 3, H, W] float32 in the [-1, 1] convention of the official code, from either input layout.

    ``layout``: "comfy" = [B, H, W, C] in [0, 1] (an alpha channel is dropped), "pm1" =
    [B, 3, H, W] or [B, 3, T, H, W] in [-1, 1] (frames become batch entries, as in
    ``encode_video``), "auto" = tell by the shape.
    """
    kind = _layout(images, layout)
    x = images.float()
    if kind == "comfy":
        if x.dim() != 4:
            raise ValueError("a ComfyUI IMAGE must be [B, H, W, C], got %s" % list(x.shape))
        return x[..., :3].permute(0, 3, 1, 2) * 2.0 - 1.0
    if x.dim() == 5:  # [B, 3, T, H, W] -> [B*T, 3, H, W]
        B, C, T, H, W = x.shape
        x = x.transpose(1, 2).reshape(B * T, C, H, W)
    return x


def clip_preprocess(images: torch.Tensor, size: int = 224, layout: str = "auto",
                    mean=CLIP_MEAN, std=CLIP_STD, device: Optional[torch.device] = None) -> torch.Tensor:
    """Normalised [N, 3, size, size] float32 pixels for the vision tower."""
    x = to_unit_pixels(images, layout)
    if device is not None:
        x = x.to(device)
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
    x = x * 0.5 + 0.5
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s
