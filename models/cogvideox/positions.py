"""Timestep and position encodings of the CogVideoX transformer, as the official code computes them.

* :func:`timestep_embedding`: [cos | sin] (``flip_sin_to_cos``) of t * exp(-ln(1e4) k / half), float32.
* :func:`rope_table`: the 3D rotary table the pipelines pass to the transformer.  Positions
  lie inside a crop region of the 30 x 45 base grid (480 x 720 pixels / 16), placed with
  Python's half-to-even ``round``, and are spaced as ``linspace(start, stop (n-1)/n, n)``;
  they are exactly 0..n-1 only at 480 x 720.  Head channels go [time d/4 | rows 3d/8 |
  columns 3d/8]; each angle is repeated for an adjacent channel pair.
* :func:`sincos_table`: the 3D sin-cos table (the fallback of the learned table):
  per token [time D/4 | columns 3D/8 | rows 3D/8], each part [sin | cos], positions divided by
  the interpolation scales, frequencies in float64.
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np
import torch


def timestep_embedding(t: torch.Tensor, dim: int, flip_sin_to_cos: bool = True, shift: float = 0.0) -> torch.Tensor:
    """[N] timesteps -> [N, dim] float32 (diffusers ``Timesteps``)."""
    half = dim // 2
    exponent = -math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / (half - shift)
    angles = t.float()[:, None] * torch.exp(exponent)[None, :]
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if dim % 2:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


def crop_region(grid_h: int, grid_w: int, base: Tuple[int, int]) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """((top, left), (bottom, right)) of a (grid_h, grid_w) token grid resized into ``base``
    (the pipelines' ``get_resize_crop_region_for_grid``; Python's round, halves to even)."""
    th, tw = base
    if grid_h / grid_w > th / tw:
        rh = th
        rw = int(round(th / grid_h * grid_w))
    else:
        rw = tw
        rh = int(round(tw / grid_w * grid_h))
    top = int(round((th - rh) / 2.0))
    left = int(round((tw - rw) / 2.0))
    return (top, left), (top + rh, left + rw)


def _spaced(start: float, stop: float, n: int) -> torch.Tensor:
    """float32 linspace(start, stop (n-1)/n, n), as the pipelines space the RoPE grid."""
    return torch.from_numpy(np.linspace(start, stop * (n - 1) / n, n, dtype=np.float32))


def _rope_axis(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """[n] float32 positions -> [n, dim] angles, each repeated for a channel pair."""
    freqs = 1.0 / (10000.0 ** (torch.arange(0, dim, 2, dtype=torch.float32)[: dim // 2] / dim))
    return torch.outer(positions.float(), freqs).repeat_interleave(2, dim=1)


def rope_table(frames: int, grid_h: int, grid_w: int, head_dim: int,
               base: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin), each [frames * grid_h * grid_w, head_dim] float32 (CPU), row-major over
    (frame, row, column)."""
    (top, left), (bottom, right) = crop_region(grid_h, grid_w, base)
    dt = head_dim // 4
    dh = dw = head_dim // 8 * 3
    at = _rope_axis(_spaced(0, frames, frames), dt)
    ah = _rope_axis(_spaced(top, bottom, grid_h), dh)
    aw = _rope_axis(_spaced(left, right, grid_w), dw)
    ang = torch.cat([
        at[:, None, None, :].expand(frames, grid_h, grid_w, dt),
        ah[None, :, None, :].expand(frames, grid_h, grid_w, dh),
        aw[None, None, :, :].expand(frames, grid_h, grid_w, dw),
    ], dim=-1).reshape(frames * grid_h * grid_w, head_dim)
    return torch.cos(ang), torch.sin(ang)


def _sincos_1d(dim: int, positions: np.ndarray) -> np.ndarray:
    omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)
    omega = 1.0 / 10000 ** omega
    out = np.outer(positions.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_table(dim: int, frames: int, grid_h: int, grid_w: int, spatial_scale: float,
                 temporal_scale: float) -> torch.Tensor:
    """[frames * grid_h * grid_w, dim] float32 3D sin-cos table (row-major over frame, row, column)."""
    if dim % 4:
        raise ValueError("the sin-cos table needs a width divisible by 4, got %d" % dim)
    spatial = dim // 4 * 3
    rows = np.arange(grid_h, dtype=np.float32) / spatial_scale
    cols = np.arange(grid_w, dtype=np.float32) / spatial_scale
    col_grid, row_grid = np.meshgrid(cols, rows)  # [grid_h, grid_w] each
    emb_cols = _sincos_1d(spatial // 2, col_grid)
    emb_rows = _sincos_1d(spatial // 2, row_grid)
    spatial_emb = np.concatenate([emb_cols, emb_rows], axis=1)  # [h*w, 3D/4]
    times = np.arange(frames, dtype=np.float32) / temporal_scale
    temporal_emb = _sincos_1d(dim // 4, times)  # [frames, D/4]
    table = np.concatenate([
        np.repeat(temporal_emb[:, None, :], grid_h * grid_w, axis=1),
        np.repeat(spatial_emb[None, :, :], frames, axis=0),
    ], axis=-1)
    return torch.from_numpy(table.reshape(frames * grid_h * grid_w, dim)).float()
