"""The HunyuanVideo causal 3D VAE (SkyReels-V1): 16 latent channels, ×4 in time, ×8 in space.

Structure (every width from :class:`HunyuanVAEConfig`):

* causal conv: replicate padding of k−1 frames in front and k//2 on each spatial side, then
  a plain Conv3d; resnets ``x + conv2(SiLU(GN(conv1(SiLU(GN(x))))))`` with GroupNorm over
  channels × all frames × space (so the "causal" VAE is not causal in its norms);
* encoder: stages of resnets with a strided causal-conv downsampler (time ×2 on the middle
  stages), a mid block (resnet, single-head attention with a frame-causal mask, resnet), then
  GN, SiLU, conv to 2 × 16 channels and ``quant_conv``: mean and log-variance;
* decoder: ``post_quant_conv``, the same mid block, stages of resnets with a nearest-neighbour
  upsampler (frame 0 only in space, the other frames also in time) and a causal conv.

Parameter names are the diffusers ``AutoencoderKLHunyuanVideo`` names, which are also the
Tencent names.

Encode and decode follow the pinned official code (``vae.enable_tiling()``, as SkyReels-V1
calls it, with the default tile sizes):

* decode: latents with more than 4 frames are decoded in overlapping windows of 5 latent
  frames every 3 ("framewise"), cross-faded over 4 pixel frames; a window (or the whole
  latent) wider or taller than 32 latent pixels is decoded in spatial tiles of 32 every 24,
  cross-faded over 64 pixels.  In the single-pass path the official code compares the width
  with 24 instead of 32; we keep that quirk (``official_width_threshold``), because it is
  what the official pipeline computes.  Cross-fades are done in place, as officially: a tile
  blends with neighbours that have already been blended themselves.
* encode: frames beyond 16 in overlapping windows (the same scheme, unverified against the
  official code); images larger than 256 px in spatial tiles of 256 every 192, cross-faded
  over 8 latent pixels.

A lower-memory alternative of ours for decoding: any spatial tile size through
:mod:`models.wan.vae_tiling` (tiles blended with weights that sum to one), each tile decoded
by the official framewise windows (:meth:`HunyuanVAE.decode_stream`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...host import Progress, check_interrupt
from ..common import ops

SCALING_FACTOR = 0.476986


@dataclass
class HunyuanVAEConfig:
    in_channels: int = 3
    out_channels: int = 3
    latent_channels: int = 16
    block_out_channels: Tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2
    norm_num_groups: int = 32
    scaling_factor: float = SCALING_FACTOR
    spatial_compression_ratio: int = 8
    temporal_compression_ratio: int = 4
    mid_block_add_attention: bool = True

    @property
    def spatial_factor(self) -> int:
        return self.spatial_compression_ratio

    @property
    def temporal_factor(self) -> int:
        return self.temporal_compression_ratio

    @property
    def num_stages(self) -> int:
        return len(self.block_out_channels)

    def spatial_steps(self) -> int:
        return int(self.spatial_compression_ratio).bit_length() - 1

    def temporal_steps(self) -> int:
        return int(self.temporal_compression_ratio).bit_length() - 1

    def time_scaled(self, stage: int) -> bool:
        """Whether encoder stage ``stage`` halves time (decoder stage ``stage`` doubles it)."""
        n = self.num_stages
        return stage >= n - 1 - self.temporal_steps() and stage != n - 1

    def validate(self) -> None:
        for name, r in (("spatial", self.spatial_compression_ratio), ("temporal", self.temporal_compression_ratio)):
            if r < 1 or r & (r - 1):
                raise ValueError("the %s compression ratio must be a power of two, got %d" % (name, r))
        if self.spatial_steps() > self.num_stages - 1 or self.temporal_steps() > self.num_stages - 1:
            raise ValueError("%d stages cannot compress ×%d in space and ×%d in time" % (
                self.num_stages, self.spatial_compression_ratio, self.temporal_compression_ratio))
        for c in self.block_out_channels:
            if c % self.norm_num_groups:
                raise ValueError("channel count %d is not divisible by %d norm groups" % (c, self.norm_num_groups))

    @classmethod
    def from_diffusers(cls, d: Dict[str, Any]) -> "HunyuanVAEConfig":
        return cls(
            in_channels=int(d.get("in_channels", 3)), out_channels=int(d.get("out_channels", 3)),
            latent_channels=int(d.get("latent_channels", 16)),
            block_out_channels=tuple(int(c) for c in d.get("block_out_channels", (128, 256, 512, 512))),
            layers_per_block=int(d.get("layers_per_block", 2)), norm_num_groups=int(d.get("norm_num_groups", 32)),
            scaling_factor=float(d.get("scaling_factor", SCALING_FACTOR)),
            spatial_compression_ratio=int(d.get("spatial_compression_ratio", 8)),
            temporal_compression_ratio=int(d.get("temporal_compression_ratio", 4)),
            mid_block_add_attention=bool(d.get("mid_block_add_attention", True)),
        )

    def replace(self, **kw) -> "HunyuanVAEConfig":
        return dataclasses.replace(self, **kw)


@dataclass
class OfficialTiling:
    """The tile sizes of ``enable_tiling()`` (pixels / pixel frames) and the switches."""

    use_tiling: bool = True
    framewise: bool = True
    sample_min: int = 256
    sample_stride: int = 192
    sample_min_frames: int = 16
    sample_stride_frames: int = 12
    official_width_threshold: bool = True  # the pinned single-pass check (width vs the stride)


# --------------------------------------------------------------------------- layers


class GroupNorm(nn.GroupNorm):
    """GroupNorm over channels × frames × space, in the input's dtype, weights cast per call."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = ops.cast_to(self.weight, x) if self.weight is not None else None
        b = ops.cast_to(self.bias, x) if self.bias is not None else None
        return F.group_norm(x, self.num_groups, w, b, self.eps)


class CausalConv3d(nn.Module):
    """Replicate-pad k−1 frames in front and k//2 on each spatial side, then convolve."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride=1):
        super().__init__()
        self.pad = (kernel // 2, kernel // 2, kernel // 2, kernel // 2, kernel - 1, 0)
        self.conv = ops.Conv3d(in_ch, out_ch, kernel, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad, mode="replicate")
        return self.conv(x)


class Resnet(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, groups: int):
        super().__init__()
        self.norm1 = GroupNorm(groups, in_ch, eps=1e-6)
        self.conv1 = CausalConv3d(in_ch, out_ch, 3)
        self.norm2 = GroupNorm(groups, out_ch, eps=1e-6)
        self.conv2 = CausalConv3d(out_ch, out_ch, 3)
        self.conv_shortcut = CausalConv3d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.conv_shortcut(x) if self.conv_shortcut is not None else x) + h


class FrameCausalAttention(nn.Module):
    """Single-head attention over all F·h·w positions; a position of frame a sees frames <= a.
    Computed frame by frame (queries of frame a against keys of frames 0..a): no mask."""

    def __init__(self, ch: int, groups: int):
        super().__init__()
        self.group_norm = GroupNorm(groups, ch, eps=1e-6)
        self.to_q = ops.Linear(ch, ch)
        self.to_k = ops.Linear(ch, ch)
        self.to_v = ops.Linear(ch, ch)
        self.to_out = nn.ModuleList([ops.Linear(ch, ch)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        h = self.group_norm(x).permute(0, 2, 3, 4, 1).reshape(B, T * H * W, C)
        q, k, v = (layer(h).unsqueeze(1) for layer in (self.to_q, self.to_k, self.to_v))  # [B, 1, S, C]
        del h
        per = H * W
        out = torch.empty_like(q)
        for f in range(T):
            s, e = f * per, (f + 1) * per
            out[:, :, s:e] = F.scaled_dot_product_attention(q[:, :, s:e], k[:, :, :e], v[:, :, :e])
        del q, k, v
        out = self.to_out[0](out.squeeze(1))
        return x + out.reshape(B, T, H, W, C).permute(0, 4, 1, 2, 3)


class MidBlock(nn.Module):
    def __init__(self, ch: int, groups: int, attention: bool):
        super().__init__()
        self.resnets = nn.ModuleList([Resnet(ch, ch, groups), Resnet(ch, ch, groups)])
        self.attentions = nn.ModuleList([FrameCausalAttention(ch, groups)]) if attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x)
        if self.attentions is not None:
            x = self.attentions[0](x)
        return self.resnets[1](x)


class Downsample(nn.Module):
    def __init__(self, ch: int, time: bool):
        super().__init__()
        self.conv = CausalConv3d(ch, ch, 3, stride=(2 if time else 1, 2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest ×2 in space; frames after the first also ×2 in time when ``time``; then a conv."""

    def __init__(self, ch: int, time: bool):
        super().__init__()
        self.time = time
        self.conv = CausalConv3d(ch, ch, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = F.interpolate(x[:, :, :1], scale_factor=(1, 2, 2), mode="nearest")
        if x.shape[2] > 1:
            rest = F.interpolate(x[:, :, 1:], scale_factor=(2 if self.time else 1, 2, 2), mode="nearest")
            first = torch.cat([first, rest], dim=2)
        return self.conv(first)


class Stage(nn.Module):
    def __init__(self, resnets: List[Resnet], down: Optional[nn.Module] = None, up: Optional[nn.Module] = None):
        super().__init__()
        self.resnets = nn.ModuleList(resnets)
        if down is not None:
            self.downsamplers = nn.ModuleList([down])
        if up is not None:
            self.upsamplers = nn.ModuleList([up])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for r in self.resnets:
            x = r(x)
        for s in getattr(self, "downsamplers", ()) or getattr(self, "upsamplers", ()):
            x = s(x)
        return x


class Encoder(nn.Module):
    def __init__(self, cfg: HunyuanVAEConfig):
        super().__init__()
        ch, g = cfg.block_out_channels, cfg.norm_num_groups
        self.conv_in = CausalConv3d(cfg.in_channels, ch[0], 3)
        stages, prev = [], ch[0]
        for i, c in enumerate(ch):
            resnets = [Resnet(prev if j == 0 else c, c, g) for j in range(cfg.layers_per_block)]
            down = Downsample(c, cfg.time_scaled(i)) if i < cfg.spatial_steps() else None
            stages.append(Stage(resnets, down=down))
            prev = c
        self.down_blocks = nn.ModuleList(stages)
        self.mid_block = MidBlock(ch[-1], g, cfg.mid_block_add_attention)
        self.conv_norm_out = GroupNorm(g, ch[-1], eps=1e-6)
        self.conv_out = CausalConv3d(ch[-1], 2 * cfg.latent_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for s in self.down_blocks:
            x = s(x)
        x = self.mid_block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, cfg: HunyuanVAEConfig):
        super().__init__()
        ch, g = tuple(reversed(cfg.block_out_channels)), cfg.norm_num_groups
        self.conv_in = CausalConv3d(cfg.latent_channels, ch[0], 3)
        self.mid_block = MidBlock(ch[0], g, cfg.mid_block_add_attention)
        stages, prev = [], ch[0]
        for i, c in enumerate(ch):
            resnets = [Resnet(prev if j == 0 else c, c, g) for j in range(cfg.layers_per_block + 1)]
            up = Upsample(c, cfg.time_scaled(i)) if i < cfg.spatial_steps() else None
            stages.append(Stage(resnets, up=up))
            prev = c
        self.up_blocks = nn.ModuleList(stages)
        self.conv_norm_out = GroupNorm(g, ch[-1], eps=1e-6)
        self.conv_out = CausalConv3d(ch[-1], cfg.out_channels, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid_block(self.conv_in(z))
        for s in self.up_blocks:
            x = s(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


# --------------------------------------------------------------------------- cross-fades (in place)


def blend_rows(a: torch.Tensor, b: torch.Tensor, extent: int) -> torch.Tensor:
    """b's first rows fade in from a's last rows, in place: b[y] = a[-e+y](1 - y/e) + b[y] y/e."""
    e = min(a.shape[-2], b.shape[-2], extent)
    for y in range(e):
        b[..., y, :] = a[..., -e + y, :] * (1 - y / e) + b[..., y, :] * (y / e)
    return b


def blend_cols(a: torch.Tensor, b: torch.Tensor, extent: int) -> torch.Tensor:
    e = min(a.shape[-1], b.shape[-1], extent)
    for x in range(e):
        b[..., x] = a[..., -e + x] * (1 - x / e) + b[..., x] * (x / e)
    return b


def blend_frames(a: torch.Tensor, b: torch.Tensor, extent: int) -> torch.Tensor:
    e = min(a.shape[2], b.shape[2], extent)
    for x in range(e):
        b[:, :, x] = a[:, :, -e + x] * (1 - x / e) + b[:, :, x] * (x / e)
    return b


def _tile_grid(fn, x: torch.Tensor, size: int, stride: int, blend: int, keep: int, out_h: int, out_w: int,
               bar: Optional[Progress]) -> torch.Tensor:
    """Official spatial tiling: ``fn`` on tiles x[..., i:i+size, j:j+size] (i, j multiples of
    ``stride``), tiles blended in place with the one above, then the one to the left, cropped
    to ``keep`` and joined."""
    H, W = x.shape[-2:]
    rows = []
    for i in range(0, H, stride):
        row = []
        for j in range(0, W, stride):
            check_interrupt()
            row.append(fn(x[..., i:i + size, j:j + size]))
            if bar is not None:
                bar.update(1)
        rows.append(row)
    out_rows = []
    for i, row in enumerate(rows):
        kept = []
        for j, tile in enumerate(row):
            if i > 0:
                blend_rows(rows[i - 1][j], tile, blend)
            if j > 0:
                blend_cols(row[j - 1], tile, blend)
            kept.append(tile[..., :keep, :keep])
        out_rows.append(torch.cat(kept, dim=-1))
    return torch.cat(out_rows, dim=-2)[..., :out_h, :out_w]


def _n_tiles(size: int, stride: int) -> int:
    return -(-size // stride)


# --------------------------------------------------------------------------- model


class HunyuanVAE(nn.Module):
    """``encode(video) -> (mean, logvar)`` and ``decode(latent)``, raw (unscaled) latents.

    The DiT works on scaled latents (raw × ``scaling_factor``, no shift); ComfyUI's LATENT
    holds raw latents.  ``tiling``: the official :class:`OfficialTiling` settings.
    """

    def __init__(self, config: Optional[HunyuanVAEConfig] = None):
        super().__init__()
        cfg = config or HunyuanVAEConfig()
        cfg.validate()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quant_conv = ops.Conv3d(2 * cfg.latent_channels, 2 * cfg.latent_channels, 1)
        self.post_quant_conv = ops.Conv3d(cfg.latent_channels, cfg.latent_channels, 1)
        self.compute_dtype: torch.dtype = torch.float32
        self.tiling = OfficialTiling()

    @property
    def device(self) -> torch.device:
        return self.post_quant_conv.weight.device

    @property
    def z_dim(self) -> int:
        return self.config.latent_channels

    def scale(self, raw: torch.Tensor) -> torch.Tensor:
        return raw * self.config.scaling_factor

    def unscale(self, z: torch.Tensor) -> torch.Tensor:
        return z / self.config.scaling_factor

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(device=self.device, dtype=self.compute_dtype)

    # ------------------------------------------------------------------ encode

    def _encode_once(self, x: torch.Tensor) -> torch.Tensor:
        return self.quant_conv(self.encoder(self._prep(x))).float()

    def _encode_spatial(self, x: torch.Tensor, bar: Optional[Progress]) -> torch.Tensor:
        t, sf = self.tiling, self.config.spatial_factor
        H, W = x.shape[-2:]
        if t.use_tiling and (H > t.sample_min or W > t.sample_min):
            lat_min, lat_stride = t.sample_min // sf, t.sample_stride // sf
            return _tile_grid(self._encode_once, x, t.sample_min, t.sample_stride, lat_min - lat_stride,
                              lat_stride, H // sf, W // sf, bar)
        out = self._encode_once(x)
        if bar is not None:
            bar.update(1)
        return out

    @torch.no_grad()
    def encode_moments(self, video: torch.Tensor) -> torch.Tensor:
        """Video [B, 3, T, H, W] in [−1, 1] (T = 4k+1, H and W multiples of 8) -> the raw
        posterior moments [B, 32, (T−1)/4+1, H/8, W/8] (mean, then log-variance), float32."""
        self._check_video(video)
        t, tf = self.tiling, self.config.temporal_factor
        T, H, W = video.shape[2:]
        spatial = _n_tiles(H, t.sample_stride) * _n_tiles(W, t.sample_stride) \
            if t.use_tiling and (H > t.sample_min or W > t.sample_min) else 1
        if not (t.framewise and T > t.sample_min_frames):
            with Progress(spatial, "VAE encode") as bar:
                return self._encode_spatial(video, bar)
        windows = list(range(0, T, t.sample_stride_frames))
        lat_min, lat_stride = t.sample_min_frames // tf, t.sample_stride_frames // tf
        kept, prev = [], None
        with Progress(len(windows) * spatial, "VAE encode") as bar:
            for k, i in enumerate(windows):
                tile = self._encode_spatial(video[:, :, i:i + t.sample_min_frames + 1], bar)
                if k > 0:
                    tile = blend_frames(prev, tile[:, :, 1:], lat_min - lat_stride)
                kept.append(tile[:, :, :lat_stride + (1 if k == 0 else 0)])
                prev = tile
        return torch.cat(kept, dim=2)[:, :, :(T - 1) // tf + 1]

    def posterior(self, moments: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance clamped to [−30, 20])."""
        mean, logvar = moments.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    @staticmethod
    def sample(mean: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """mean + exp(logvar / 2) · noise (the posterior sample with that noise)."""
        return mean + torch.exp(0.5 * logvar) * noise.to(mean.device, mean.dtype)

    # ------------------------------------------------------------------ decode

    def _decode_once(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(self._prep(z))).float()

    def _decode_spatial(self, z: torch.Tensor, threshold_w: int, bar: Optional[Progress]) -> torch.Tensor:
        t, sf = self.tiling, self.config.spatial_factor
        lat_min, lat_stride = t.sample_min // sf, t.sample_stride // sf
        h, w = z.shape[-2:]
        if t.use_tiling and (w > threshold_w or h > lat_min):
            return _tile_grid(self._decode_once, z, lat_min, lat_stride, t.sample_min - t.sample_stride,
                              t.sample_stride, h * sf, w * sf, bar)
        out = self._decode_once(z)
        if bar is not None:
            bar.update(1)
        return out

    def _spatial_calls(self, h: int, w: int, threshold_w: int) -> int:
        t, sf = self.tiling, self.config.spatial_factor
        lat_min, lat_stride = t.sample_min // sf, t.sample_stride // sf
        if t.use_tiling and (w > threshold_w or h > lat_min):
            return _n_tiles(h, lat_stride) * _n_tiles(w, lat_stride)
        return 1

    def _windows(self, num_frames: int) -> List[int]:
        """Start frames of the framewise windows that produce pixels (a one-frame window after
        the first only yields the frame it drops, so it is not computed)."""
        t, tf = self.tiling, self.config.temporal_factor
        stride = t.sample_stride_frames // tf
        return [i for i in range(0, num_frames, stride) if i == 0 or num_frames - i > 1]

    def framewise(self, num_latent_frames: int) -> bool:
        t = self.tiling
        return t.framewise and num_latent_frames > t.sample_min_frames // self.config.temporal_factor

    def decode_stream(self, z_raw: torch.Tensor, time_chunk: Optional[int] = None,
                      spatial_threshold: Optional[int] = None, bar: Optional[Progress] = None
                      ) -> Iterator[Tuple[int, torch.Tensor]]:
        """Decode raw latents [B, 16, F, h, w] by the official framewise windows; yields
        (first pixel frame, frames float32 on ``z_raw``'s device) as soon as they are final.
        ``spatial_threshold``: official spatial tiling inside each window above this width
        (None: no spatial tiling here, the caller tiles).  ``time_chunk`` is accepted for the
        tiling interface and ignored: the windows are those of the official code."""
        t, tf = self.tiling, self.config.temporal_factor
        F_ = z_raw.shape[2]
        total = 1 + tf * (F_ - 1)
        thr = spatial_threshold if spatial_threshold is not None else 1 << 30
        tiles = t.use_tiling and spatial_threshold is not None

        def run(z):
            if tiles:
                return self._decode_spatial(z, thr, bar)
            out = self._decode_once(z)
            if bar is not None:
                bar.update(1)
            return out

        if not self.framewise(F_):
            yield 0, run(z_raw).to(z_raw.device)
            return
        win = t.sample_min_frames // tf
        blend = t.sample_min_frames - t.sample_stride_frames
        keep = t.sample_stride_frames
        prev, pos = None, 0
        for k, i in enumerate(self._windows(F_)):
            tile = run(z_raw[:, :, i:i + win + 1]).to(z_raw.device)
            if k > 0:
                tile = blend_frames(prev, tile[:, :, 1:], blend)
                part = prev[:, :, :keep + (1 if k == 1 else 0)]
                yield pos, part[:, :, :max(0, total - pos)]
                pos += part.shape[2]
            prev = tile
        part = prev[:, :, :keep + (1 if pos == 0 else 0)]
        if total - pos > 0:
            yield pos, part[:, :, :total - pos]

    @torch.no_grad()
    def decode(self, z_raw: torch.Tensor, tile=None) -> torch.Tensor:
        """Raw latent [B, 16, F, h, w] -> video [B, 3, 4(F−1)+1, 8h, 8w] float32 (not clamped),
        on the latent's device.  ``tile`` None: the official tiling; a
        :class:`models.wan.vae_tiling.VAETiling`: our spatial tiles of any size."""
        self._check_latent(z_raw)
        if tile is not None:
            from ..wan.vae_tiling import decode_latent

            return decode_latent(self, z_raw, tile, clamp=False)
        t, sf = self.tiling, self.config.spatial_factor
        F_, h, w = z_raw.shape[2:]
        lat_min, lat_stride = t.sample_min // sf, t.sample_stride // sf
        if self.framewise(F_):
            calls = len(self._windows(F_)) * self._spatial_calls(h, w, lat_min)
            out = torch.empty(z_raw.shape[0], self.config.out_channels, 1 + self.config.temporal_factor * (F_ - 1),
                              h * sf, w * sf, dtype=torch.float32, device=z_raw.device)
            with Progress(calls, "VAE decode") as bar:
                for p0, frames in self.decode_stream(z_raw, spatial_threshold=lat_min, bar=bar):
                    out[:, :, p0:p0 + frames.shape[2]] = frames
            return out
        thr = lat_stride if t.official_width_threshold else lat_min
        with Progress(self._spatial_calls(h, w, thr), "VAE decode") as bar:
            return self._decode_spatial(z_raw, thr, bar).to(z_raw.device)

    # ------------------------------------------------------------------ checks

    def _check_video(self, video: torch.Tensor) -> None:
        tf, sf = self.config.temporal_factor, self.config.spatial_factor
        if not isinstance(video, torch.Tensor) or video.dim() != 5 or video.shape[1] != self.config.in_channels:
            raise ValueError("VAE encode expects a video [B, 3, T, H, W]; found %s"
                             % (list(video.shape) if isinstance(video, torch.Tensor) else type(video).__name__))
        T, H, W = video.shape[2:]
        if (T - 1) % tf or H % sf or W % sf:
            raise ValueError("VAE encode needs %dk+1 frames and sizes that are multiples of %d; found %d frames "
                             "of %dx%d" % (tf, sf, T, W, H))

    def _check_latent(self, z: torch.Tensor) -> None:
        if not isinstance(z, torch.Tensor) or z.dim() != 5 or z.shape[1] != self.config.latent_channels:
            raise ValueError("VAE decode expects a latent [B, %d, F, h, w]; found %s" % (
                self.config.latent_channels, list(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__))
