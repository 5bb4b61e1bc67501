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


# --------------------------------------------------------------------------- per frame (SkyReels-V3 avatar)

# The constants of the V3 talking-avatar pipeline's Lab conversion (kornia's): XYZ matrix, its
# stored inverse and the D65 white point, all float32.
_V3_RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
_V3_XYZ_TO_RGB = ((3.2404813432005266, -1.5371515162713185, -0.4985363261688878),
                  (-0.9692549499965682, 1.8759900014898907, 0.0415559265582928),
                  (0.0556466391351772, -0.2040413383665112, 1.0573110696453443))
_V3_WHITE = (0.95047, 1.0, 1.08883)


def _mix(m, c):
    """3x3 matrix ``m`` (nested tuples) applied to channel-first values ``c`` [3, ...]."""
    return torch.stack([m[i][0] * c[0] + m[i][1] * c[1] + m[i][2] * c[2] for i in range(3)])


def _v3_rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """[3, ...] sRGB in [0, 1] -> Lab, float32, as the V3 pipeline computes it."""
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).pow(2.4), rgb / 12.92)
    xyz = _mix(_V3_RGB_TO_XYZ, lin)
    xyz = torch.stack([xyz[i] / _V3_WHITE[i] for i in range(3)])
    f = torch.where(xyz > 0.008856, xyz.clamp_min(0.008856).pow(1.0 / 3.0), 7.787 * xyz + 4.0 / 29.0)
    return torch.stack([116.0 * f[1] - 16.0, 500.0 * (f[0] - f[1]), 200.0 * (f[1] - f[2])])


def _v3_lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Lab [3, ...] -> sRGB in [0, 1] (clamped), float32, as the V3 pipeline computes it."""
    fy = (lab[0] + 16.0) / 116.0
    fx = lab[1] / 500.0 + fy
    fz = (fy - lab[2] / 200.0).clamp_min(0.0)
    f = torch.stack([fx, fy, fz])
    xyz = torch.where(f > 0.2068966, f.pow(3.0), (f - 4.0 / 29.0) / 7.787)
    xyz = torch.stack([xyz[i] * _V3_WHITE[i] for i in range(3)])
    lin = _mix(_V3_XYZ_TO_RGB, xyz)
    rgb = torch.where(lin > 0.0031308, 1.055 * lin.clamp_min(0.0031308).pow(1.0 / 2.4) - 0.055, 12.92 * lin)
    return rgb.clamp(0.0, 1.0)


def match_colors_per_frame(frames: torch.Tensor, reference: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """SkyReels-V3 talking avatar's colour match: every frame of IMAGE ``frames`` [T, H, W, 3] gets
    the Lab mean and (population) standard deviation of the single frame ``reference``
    [1, H', W', 3], computed per frame (not over the whole clip as :func:`match_colors` does),
    with no cap on the gain (a flat frame becomes the reference's mean colour).  ``strength``
    blends with the input in RGB.  float32, like the official (kornia) computation."""
    _check(frames, "frames")
    _check(reference, "reference")
    strength = float(strength)
    if strength == 0.0:
        return frames
    ref = _v3_rgb_to_lab(reference[0, ..., :3].float().permute(2, 0, 1).to(frames.device)).reshape(3, -1)
    ref_std, ref_mean = torch.std_mean(ref, dim=1, unbiased=False)
    out = torch.empty(frames.shape, dtype=torch.float32, device=frames.device)
    for t in range(frames.shape[0]):
        src = frames[t, ..., :3].float().permute(2, 0, 1)
        lab = _v3_rgb_to_lab(src)
        flat = lab.reshape(3, -1)
        std, mean = torch.std_mean(flat, dim=1, unbiased=False)
        moved = (flat - mean[:, None]) * (ref_std / std.clamp_min(1e-6))[:, None] + ref_mean[:, None]
        rgb = _v3_lab_to_rgb(moved.view_as(lab))
        if strength != 1.0:
            rgb = (1.0 - strength) * src + strength * rgb
        out[t, ..., :3] = rgb.permute(1, 2, 0)
        if frames.shape[-1] == 4:
            out[t, ..., 3] = frames[t, ..., 3]
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
           "match_colors_per_frame", "crossfade_weights", "crossfade", "join_with_crossfade"]
