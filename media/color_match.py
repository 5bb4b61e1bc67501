"""Colour matching between chunks of frames, and crossfades of overlapping frames.

Long diffusion-forcing videos are made chunk by chunk; each chunk can drift in colour or jump in
brightness.  :func:`match_colors` moves a chunk's per-channel mean and standard deviation to those
of reference frames (e.g. the previous chunk's overlap), in CIELAB (default: lightness and the two
colour axes are independent there) or directly in RGB.  One transform is computed for the whole
chunk, so frames inside a chunk stay consistent with each other.  :func:`crossfade` blends the
frames two chunks share.

All functions take and return ComfyUI IMAGE tensors [B, H, W, C] in [0, 1] (C = 3, or 4 with
alpha passed through).  sRGB <-> Lab (D65) is implemented here in torch.
"""
from __future__ import annotations

from typing import Tuple

import torch

MATCH_METHODS = ("mean_std_lab", "mean_std_rgb", "none")

# sRGB (linear) -> CIE XYZ, D65
_RGB_TO_XYZ = torch.tensor([
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.1191920, 0.9503041],
], dtype=torch.float64)
_DELTA = 6.0 / 29.0

_CHUNK = 8  # frames converted at a time (bounds temporaries for long videos)


# --------------------------------------------------------------------------- sRGB <-> Lab


def _srgb_to_linear(c: torch.Tensor) -> torch.Tensor:
    return torch.where(c <= 0.04045, c / 12.92, ((c.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c: torch.Tensor) -> torch.Tensor:
    return torch.where(c <= 0.0031308, c * 12.92, 1.055 * c.clamp_min(0.0031308) ** (1.0 / 2.4) - 0.055)


def _lab_f(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _DELTA ** 3, t.clamp_min(_DELTA ** 3) ** (1.0 / 3.0), t / (3 * _DELTA ** 2) + 4.0 / 29.0)


def _lab_f_inv(f: torch.Tensor) -> torch.Tensor:
    return torch.where(f > _DELTA, f ** 3, 3 * _DELTA ** 2 * (f - 4.0 / 29.0))


def _matrices(device: torch.device, dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    m = _RGB_TO_XYZ
    white = m.sum(dim=1)  # XYZ of RGB (1, 1, 1): white maps exactly to L = 100, a = b = 0
    return m.to(device, dtype), torch.linalg.inv(m).to(device, dtype), white.to(device, dtype)


def srgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB [..., 3] in [0, 1] -> CIELAB [..., 3] (L in 0..100, a / b about -128..127), D65 white."""
    if not rgb.is_floating_point():
        rgb = rgb.float()
    to_xyz, _, white = _matrices(rgb.device, rgb.dtype)
    xyz = _srgb_to_linear(rgb) @ to_xyz.T
    fx, fy, fz = _lab_f(xyz / white).unbind(-1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-1)


def lab_to_srgb(lab: torch.Tensor) -> torch.Tensor:
    """CIELAB [..., 3] -> sRGB [..., 3]; not clamped (out-of-gamut colours leave [0, 1])."""
    _, to_rgb, white = _matrices(lab.device, lab.dtype)
    L, a, b = lab.unbind(-1)
    fy = (L + 16.0) / 116.0
    f = torch.stack([fy + a / 500.0, fy, fy - b / 200.0], dim=-1)
    xyz = _lab_f_inv(f) * white
    return _linear_to_srgb(xyz @ to_rgb.T)


# --------------------------------------------------------------------------- statistics


def _to_space(rgb: torch.Tensor, method: str) -> torch.Tensor:
    return srgb_to_lab(rgb) if method == "mean_std_lab" else rgb


def _from_space(values: torch.Tensor, method: str) -> torch.Tensor:
    return lab_to_srgb(values) if method == "mean_std_lab" else values


def channel_stats(images: torch.Tensor, method: str = "mean_std_lab") -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (mean [3], std [3]) over all frames and pixels of IMAGE ``images``, in Lab
    (``mean_std_lab``) or RGB (``mean_std_rgb``).  Accumulated in float64, a few frames at a time."""
    total = torch.zeros(3, dtype=torch.float64, device=images.device)
    total_sq = torch.zeros(3, dtype=torch.float64, device=images.device)
    count = 0
    for start in range(0, images.shape[0], _CHUNK):
        values = _to_space(images[start:start + _CHUNK, ..., :3].float(), method).reshape(-1, 3).double()
        total += values.sum(dim=0)
        total_sq += (values * values).sum(dim=0)
        count += values.shape[0]
    mean = total / count
    var = (total_sq / count - mean * mean).clamp_min(0.0)
    return mean, var.sqrt()


def _check(images: torch.Tensor, what: str) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[-1] not in (3, 4):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError("%s must be an IMAGE tensor [B, H, W, 3], got %s" % (what, shape))
    if images.shape[0] == 0 or images.shape[1] == 0 or images.shape[2] == 0:
        raise ValueError("%s is empty: %s" % (what, tuple(images.shape)))


# --------------------------------------------------------------------------- matching


def match_colors(frames: torch.Tensor, reference: torch.Tensor, method: str = "mean_std_lab",
                 strength: float = 1.0, max_gain: float = 4.0) -> torch.Tensor:
    """Match the colours of ``frames`` to ``reference`` (both IMAGE [B, H, W, C]; sizes and frame
    counts may differ) by moving the per-channel mean and standard deviation of all of ``frames``
    to those of all of ``reference``.

    method: "mean_std_lab" (CIELAB, default), "mean_std_rgb", or "none" (returns ``frames``).
    strength: 0 returns ``frames`` unchanged, 1 the full match, in between a linear blend of the
    two results in RGB.  max_gain caps the std scale factor, so a nearly flat channel is not blown
    up into noise.  The result is float32, clamped to [0, 1]; an alpha channel is passed through.
    """
    if method not in MATCH_METHODS:
        raise ValueError("colour match method must be one of %s, got %r" % (", ".join(MATCH_METHODS), method))
    _check(frames, "frames")
    _check(reference, "reference")
    strength = float(strength)
    if method == "none" or strength == 0.0:
        return frames
    reference = reference.to(frames.device)
    ref_mean, ref_std = channel_stats(reference, method)
    src_mean, src_std = channel_stats(frames, method)
    eps = 1e-6
    gain = (ref_std / src_std.clamp_min(eps)).clamp(max=float(max_gain))
    gain = torch.where(src_std > eps, gain, torch.ones_like(gain))
    gain, src_mean, ref_mean = (t.float() for t in (gain, src_mean, ref_mean))

    out = torch.empty(frames.shape, dtype=torch.float32, device=frames.device)
    for start in range(0, frames.shape[0], _CHUNK):
        chunk = frames[start:start + _CHUNK].float()
        rgb = chunk[..., :3]
        matched = _from_space((_to_space(rgb, method) - src_mean) * gain + ref_mean, method).clamp_(0.0, 1.0)
        if strength != 1.0:
            matched = (rgb + strength * (matched - rgb)).clamp_(0.0, 1.0)
        out[start:start + _CHUNK, ..., :3] = matched
        if frames.shape[-1] == 4:
            out[start:start + _CHUNK, ..., 3] = chunk[..., 3]
    return out


# --------------------------------------------------------------------------- crossfades


def crossfade_weights(count: int, device=None) -> torch.Tensor:
    """Weights of the second clip over ``count`` overlapping frames: (i + 1) / (count + 1),
    so the blend moves evenly from the first clip to the second without repeating either end."""
    return torch.arange(1, count + 1, dtype=torch.float32, device=device) / (count + 1)


def crossfade(a_tail: torch.Tensor, b_head: torch.Tensor) -> torch.Tensor:
    """Linear blend of two IMAGE runs [N, H, W, C] that show the same N moments: frame i is
    ``(1 - w_i) * a_tail[i] + w_i * b_head[i]`` with w_i = (i + 1) / (N + 1)."""
    _check(a_tail, "a_tail")
    _check(b_head, "b_head")
    if a_tail.shape != b_head.shape:
        raise ValueError("crossfade needs equal shapes, got %s and %s" % (tuple(a_tail.shape), tuple(b_head.shape)))
    w = crossfade_weights(a_tail.shape[0], a_tail.device).view(-1, 1, 1, 1)
    return a_tail.float() * (1.0 - w) + b_head.to(a_tail.device).float() * w


def join_with_crossfade(a: torch.Tensor, b: torch.Tensor, overlap: int) -> torch.Tensor:
    """Concatenate IMAGE clips ``a`` and ``b`` whose last / first ``overlap`` frames show the same
    moments, crossfading those frames: result has len(a) + len(b) - overlap frames."""
    overlap = int(overlap)
    if overlap < 0 or overlap > min(a.shape[0], b.shape[0]):
        raise ValueError("overlap must be in 0..%d, got %d" % (min(a.shape[0], b.shape[0]), overlap))
    if overlap == 0:
        return torch.cat([a.float(), b.to(a.device).float()], dim=0)
    middle = crossfade(a[a.shape[0] - overlap:], b[:overlap])
    return torch.cat([a[:a.shape[0] - overlap].float(), middle, b[overlap:].to(a.device).float()], dim=0)


__all__ = ["MATCH_METHODS", "srgb_to_lab", "lab_to_srgb", "channel_stats", "match_colors",
           "crossfade_weights", "crossfade", "join_with_crossfade"]
