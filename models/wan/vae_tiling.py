"""Tiled, time-chunked encode and decode for the Wan VAE, with progress and cancellation.

In time the VAE is already a causal stream (see ``vae.FeatureCache``): the video goes
through a few frames at a time, so memory depends on the chunk, not on the length.  In space
a large frame is cut into overlapping tiles; each tile is streamed through time on its own
(only one tile's feature cache is alive at a time) and added into the output with linear
(feathered) weights that ramp across each overlap, the two ramps of an overlap summing to 1,
so the tiles blend without seams.

Tiles are laid out in latent units (1 latent pixel = 8 pixels): ``tile_px`` and
``overlap_px`` are rounded down to whole latent pixels, tiles are spread evenly so that
neighbours overlap by at least ``overlap_px``, and a frame that fits into one tile is not
tiled at all (the result is then exactly the untiled one).

Accuracy.  Tiled output is not identical to untiled output: the decoder's 3×3 convolutions
reach about 17 latent pixels, more than the overlap, and the single-head
attention of the middle block sees only its own tile.  Measured on the tiny golden VAE (base
width 8, random weights, attention included; tests/test_vae.py), with ``VAETiling(96, 32)``,
i.e. 2×2 tiles of 12 latent pixels overlapping by 8:

* decode of a 2-frame 16×16 latent: mean abs error 0.041 = 9.9 % of the mean |output|
  (0.42), max 0.51;
* encode of a 5-frame 128×128 video: mean abs error 0.041 = 11.3 % of the mean |μ|;
* seams: the largest change that tiling makes to the mean difference between neighbouring
  rows / columns is 6–10 % of its mean (0.063 / 0.074 decode, 0.095 / 0.071 encode),
  against 72–105 % for butt-joined tiles without blending.

The tests assert mean relative error < 15 % and seam change < 15 %.  These tiny tiles are
far smaller than the receptive field; the default 256 px tiles (32 latent) with 64 px
overlap are much closer to it (not measured here with the released weights).

Memory.  Measured on CPU with the released-size network (random weights): decoding a
256×256 px tile with one latent frame per step peaks at about 1.5 GB above the weights, so a
tiled 720P decode needs about 0.5 GB of weights + 1.5 GB + the output video (0.9 GB for 81
frames, kept on the latent's device), well inside 8 GB; untiled, 720P needs roughly 14 times
the per-tile working memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Optional, Tuple

import torch

from ...host import Progress, check_interrupt

if TYPE_CHECKING:  # pragma: no cover
    from .vae import WanVAE


@dataclass
class VAETiling:
    """How to cut the work: ``tile_px`` square tiles (0 = no spatial tiling) overlapping by
    ``overlap_px`` pixels, and ``time_chunk`` latent frames per step of the causal stream
    (None = one latent frame, as the official code; larger is faster and needs more memory)."""

    tile_px: int = 256
    overlap_px: int = 64
    time_chunk: Optional[int] = None

    def latent_tile(self, spatial_factor: int) -> Tuple[int, int]:
        """(tile, overlap) in latent pixels; tile 0 means untiled."""
        if self.tile_px < 0 or self.overlap_px < 0:
            raise ValueError("tile_px and overlap_px must be >= 0, found %d and %d" % (self.tile_px, self.overlap_px))
        if self.time_chunk is not None and self.time_chunk < 1:
            raise ValueError("time_chunk must be >= 1 latent frame or None, found %s" % self.time_chunk)
        if self.tile_px == 0:
            return 0, 0
        tile = self.tile_px // spatial_factor
        overlap = self.overlap_px // spatial_factor
        if tile < 2:
            raise ValueError("tile_px must be at least %d pixels, found %d" % (2 * spatial_factor, self.tile_px))
        if overlap >= tile:
            raise ValueError("overlap_px (%d) must be smaller than tile_px (%d)" % (self.overlap_px, self.tile_px))
        return tile, overlap


def tile_spans(size: int, tile: int, overlap: int) -> List[Tuple[int, int]]:
    """[start, end) spans of length ``tile`` covering ``size``, spread evenly, neighbours
    overlapping by at least ``overlap``; a single span when ``size <= tile`` or tile is 0."""
    if tile <= 0 or size <= tile:
        return [(0, size)]
    stride = tile - overlap
    n = -(-(size - overlap) // stride)  # ceil
    n = max(n, 2)
    starts = [round(i * (size - tile) / (n - 1)) for i in range(n)]
    return [(s, s + tile) for s in starts]


def _axis_weights(spans: List[Tuple[int, int]]) -> List[torch.Tensor]:
    """Blending weights along one axis for each span: linear ramps across the whole overlap
    with each neighbour (the two ramps of an overlap add up to 1), 1 elsewhere; never 0."""
    out = []
    for i, (s, e) in enumerate(spans):
        n = e - s
        w = torch.ones(n, dtype=torch.float32)
        left = min(spans[i - 1][1] - s, n // 2) if i > 0 else 0
        right = min(e - spans[i + 1][0], n // 2) if i + 1 < len(spans) else 0
        if left > 0:
            w[:left] = (torch.arange(left, dtype=torch.float32) + 1) / (left + 1)
        if right > 0:
            w[n - right:] = torch.minimum(w[n - right:], (torch.arange(right, 0, -1, dtype=torch.float32)) / (right + 1))
        out.append(w)
    return out


def _plan(h: int, w: int, tile: int, overlap: int, scale: int = 1):
    """Tiles as ((y0, y1), (x0, x1), weights [y1-y0, x1-x0]) in units of ``scale`` pixels
    (weights at that resolution); weights is None when there is a single tile."""
    ys, xs = tile_spans(h, tile, overlap), tile_spans(w, tile, overlap)
    if len(ys) * len(xs) == 1:
        return [((0, h * scale), (0, w * scale), None)]
    wy = _axis_weights([(a * scale, b * scale) for a, b in ys])
    wx = _axis_weights([(a * scale, b * scale) for a, b in xs])
    return [((y0 * scale, y1 * scale), (x0 * scale, x1 * scale), wy[i][:, None] * wx[j][None, :])
            for i, (y0, y1) in enumerate(ys) for j, (x0, x1) in enumerate(xs)]


def _blend_into(out: torch.Tensor, chunk: torch.Tensor, t0: int, ys, xs, mask: Optional[torch.Tensor]) -> None:
    t1 = t0 + chunk.shape[2]
    if mask is None:
        out[:, :, t0:t1] = chunk
    else:
        out[:, :, t0:t1, ys[0]:ys[1], xs[0]:xs[1]] += chunk * mask


def _finish(out: torch.Tensor, tiles, device) -> torch.Tensor:
    """Divide by the summed weights (a partition of unity except where ramps were capped)."""
    if tiles[0][2] is None:
        return out
    total = torch.zeros(out.shape[-2:], dtype=torch.float32, device=device)
    for ys, xs, mask in tiles:
        total[ys[0]:ys[1], xs[0]:xs[1]] += mask.to(device)
    return out.div_(total)


def encode_video(vae: "WanVAE", video: torch.Tensor, tiling: Optional[VAETiling], posterior: bool = False
                 ) -> torch.Tensor:
    """Raw μ of ``video`` (checked by the caller), tiled as ``tiling`` says (None = untiled);
    with ``posterior``, μ and the log-variance on the channel axis."""
    sf, tf = vae.config.spatial_factor, vae.config.temporal_factor
    b, _, t, hp, wp = video.shape
    h, w = hp // sf, wp // sf
    tile, overlap = tiling.latent_tile(sf) if tiling is not None else (0, 0)
    time_chunk = tiling.time_chunk if tiling is not None else None
    tiles = _plan(h, w, tile, overlap)
    channels = vae.z_dim * (2 if posterior else 1)
    out = torch.zeros(b, channels, (t - 1) // tf + 1, h, w, dtype=torch.float32, device=video.device)
    with Progress(t * len(tiles), "VAE encode") as bar:
        for ys, xs, mask in tiles:
            region = video[:, :, :, ys[0] * sf:ys[1] * sf, xs[0] * sf:xs[1] * sf]
            mask = mask.to(video.device) if mask is not None else None
            for f0, frames_done, mu in vae.encode_stream(region, time_chunk, posterior):
                _blend_into(out, mu, f0, ys, xs, mask)
                bar.update(frames_done)
                check_interrupt()
    return _finish(out, tiles, video.device)


def decode_latent(vae: "WanVAE", z_raw: torch.Tensor, tiling: Optional[VAETiling], clamp: bool) -> torch.Tensor:
    """Video of the raw latent ``z_raw`` (checked by the caller), tiled as ``tiling`` says."""
    sf, tf = vae.config.spatial_factor, vae.config.temporal_factor
    b, _, f, h, w = z_raw.shape
    t = 1 + tf * (f - 1)
    tile, overlap = tiling.latent_tile(sf) if tiling is not None else (0, 0)
    time_chunk = tiling.time_chunk if tiling is not None else None
    tiles = _plan(h, w, tile, overlap, scale=sf)  # in pixels
    out = torch.zeros(b, 3, t, h * sf, w * sf, dtype=torch.float32, device=z_raw.device)
    with Progress(t * len(tiles), "VAE decode") as bar:
        for ys, xs, mask in tiles:
            region = z_raw[:, :, :, ys[0] // sf:ys[1] // sf, xs[0] // sf:xs[1] // sf]
            mask = mask.to(z_raw.device) if mask is not None else None
            for p0, video in vae.decode_stream(region, time_chunk):
                _blend_into(out, video, p0, ys, xs, mask)
                bar.update(video.shape[2])
                check_interrupt()
    out = _finish(out, tiles, z_raw.device)
    return out.clamp_(-1.0, 1.0) if clamp else out
