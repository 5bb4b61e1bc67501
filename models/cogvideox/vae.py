"""The CogVideoX video VAE (``AutoencoderKLCogVideoX``), used by SkyReels-A1 as its VAE and as its
pose guider (the same network with other weights).

The network, with diffusers parameter names so the released files load as they are:

* causal 3D convolutions: time kernel 3 padded by two copies of the first frame on the first
  call and by the cached last frames of the previous call afterwards; zero spatial padding;
* encoder: GroupNorm ResNet blocks, down blocks that halve height and width (the first two also
  halve time: the first frame of an odd count is kept, the rest are averaged in pairs);
* decoder: the same mirrored, with SpatialNorm3D (GroupNorm scaled and shifted by 1x1 convs of
  the latent resized to the feature size, the first frame separately for an odd frame count).

And the calls around it, which decide the numbers as much as the network does:

* frame batching with a causal cache: the encoder takes 8 frames per call, the decoder 2
  latent frames; the first call takes the remainder; GroupNorm statistics are per call;
* tiling (:class:`VAETiling`): overlapping tiles blended in place in raster order, each cropped,
  exactly as diffusers' ``tiled_encode`` / ``tiled_decode`` do; at 480 x 720 the official
  scripts' ``enable_tiling()`` gives 3 x 3 tiles of 240 x 360 pixels for encode and decode.

``encode`` returns the posterior (mean, logvar) and ``decode`` the raw decoder output in
[-1, 1] (not clamped); scaling by ``scaling_factor`` (0.7) is the caller's business.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...host import check_interrupt


@dataclass
class CogVideoXVAEConfig:
    block_out_channels: Tuple[int, ...] = (128, 256, 256, 512)
    layers_per_block: int = 3
    latent_channels: int = 16
    in_channels: int = 3
    out_channels: int = 3
    norm_num_groups: int = 32
    norm_eps: float = 1e-6
    temporal_compression_ratio: int = 4
    # Only set the default tile sizes (half of these, in pixels).
    sample_height: int = 480
    sample_width: int = 720
    scaling_factor: float = 0.7

    @property
    def spatial_ratio(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)

    @property
    def time_levels(self) -> int:
        return int(math.log2(self.temporal_compression_ratio))

    @classmethod
    def from_diffusers(cls, cfg: Dict) -> "CogVideoXVAEConfig":
        g = cfg.get
        for key in ("use_quant_conv", "use_post_quant_conv"):
            if g(key):
                raise ValueError("%s is not supported (CogVideoX VAEs have none)" % key)
        return cls(block_out_channels=tuple(g("block_out_channels", (128, 256, 256, 512))),
                   layers_per_block=int(g("layers_per_block", 3)), latent_channels=int(g("latent_channels", 16)),
                   in_channels=int(g("in_channels", 3)), out_channels=int(g("out_channels", 3)),
                   norm_num_groups=int(g("norm_num_groups", 32)), norm_eps=float(g("norm_eps", 1e-6)),
                   temporal_compression_ratio=int(g("temporal_compression_ratio", 4)),
                   sample_height=int(g("sample_height", 480)), sample_width=int(g("sample_width", 720)),
                   scaling_factor=float(g("scaling_factor", 1.15258426)))

    def to_diffusers(self) -> Dict:
        n = len(self.block_out_channels)
        return {"_class_name": "AutoencoderKLCogVideoX", "in_channels": self.in_channels,
                "out_channels": self.out_channels, "down_block_types": ["CogVideoXDownBlock3D"] * n,
                "up_block_types": ["CogVideoXUpBlock3D"] * n, "block_out_channels": list(self.block_out_channels),
                "latent_channels": self.latent_channels, "layers_per_block": self.layers_per_block,
                "act_fn": "silu", "norm_eps": self.norm_eps, "norm_num_groups": self.norm_num_groups,
                "temporal_compression_ratio": self.temporal_compression_ratio,
                "sample_height": self.sample_height, "sample_width": self.sample_width,
                "scaling_factor": self.scaling_factor, "shift_factor": None, "latents_mean": None,
                "latents_std": None, "force_upcast": True, "use_quant_conv": False, "use_post_quant_conv": False}


@dataclass(frozen=True)
class VAETiling:
    """Tile sizes in pixels and the overlap fractions (diffusers' ``enable_tiling`` defaults:
    half the configured sample size, 1/6 of the height and 1/5 of the width)."""

    tile_height: int = 240
    tile_width: int = 360
    overlap_height: float = 1 / 6
    overlap_width: float = 1 / 5

    @classmethod
    def official(cls, config: CogVideoXVAEConfig) -> "VAETiling":
        return cls(config.sample_height // 2, config.sample_width // 2)


# --------------------------------------------------------------------------- layers

Cache = Dict[nn.Module, torch.Tensor]

# Above this many input bytes a convolution runs in time slices (the same result, less memory).
_CONV_SLICE_BYTES = 1 << 30


class SafeConv3d(nn.Conv3d):
    """Conv3d that runs large inputs in overlapping time slices (exactly the same output).

    On the CPU, where PyTorch has no fast 3D convolution for these layers, the convolution is
    computed as one 2D convolution per time tap, summed (the same result up to rounding)."""

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or self.stride[0] != 1 or self.dilation[0] != 1 or self.padding[0] != 0:
            return super().forward(x)
        B, C, T, H, W = x.shape
        kt = self.kernel_size[0]
        frames = T - kt + 1
        xf = x.permute(0, 2, 1, 3, 4).contiguous()
        out = None
        for k in range(kt):
            y = F.conv2d(xf[:, k:k + frames].reshape(B * frames, C, H, W), self.weight[:, :, k], None,
                         self.stride[1:], self.padding[1:], self.dilation[1:])
            out = y if out is None else out.add_(y)
        if self.bias is not None:
            out = out.add_(self.bias.view(1, -1, 1, 1))
        return out.view(B, frames, *out.shape[1:]).permute(0, 2, 1, 3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nbytes = x.numel() * x.element_size()
        k = self.kernel_size[0]
        if nbytes <= _CONV_SLICE_BYTES or x.shape[2] <= k:
            return self._conv(x)
        parts = min(x.shape[2] - k + 1, nbytes // _CONV_SLICE_BYTES + 1)
        outs_total = x.shape[2] - k + 1
        bounds = [outs_total * i // parts for i in range(parts + 1)]
        return torch.cat([self._conv(x[:, :, a:b + k - 1]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a], dim=2)


class CausalConv3d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size: int = 3, stride: int = 1):
        super().__init__()
        self.time_kernel = kernel_size
        pad = (kernel_size - 1) // 2
        self.conv = SafeConv3d(cin, cout, kernel_size, stride=(stride, 1, 1), padding=(0, pad, pad))

    def forward(self, x: torch.Tensor, cache: Optional[Cache]) -> torch.Tensor:
        k = self.time_kernel
        if k > 1:
            prev = cache.get(self) if cache is not None else None
            head = prev if prev is not None else x[:, :, :1].expand(-1, -1, k - 1, -1, -1)
            x = torch.cat([head.to(x.dtype), x], dim=2)
            if cache is not None:
                cache[self] = x[:, :, -(k - 1):].clone()
        return self.conv(x)


class SpatialNorm3D(nn.Module):
    def __init__(self, f_channels: int, zq_channels: int, groups: int):
        super().__init__()
        self.norm_layer = nn.GroupNorm(groups, f_channels, eps=1e-6, affine=True)
        self.conv_y = CausalConv3d(zq_channels, f_channels, kernel_size=1)
        self.conv_b = CausalConv3d(zq_channels, f_channels, kernel_size=1)

    def forward(self, f: torch.Tensor, zq: torch.Tensor, cache: Optional[Cache]) -> torch.Tensor:
        if f.shape[2] > 1 and f.shape[2] % 2 == 1:
            z_first = F.interpolate(zq[:, :, :1], size=(1,) + tuple(f.shape[-2:]))
            z_rest = F.interpolate(zq[:, :, 1:], size=(f.shape[2] - 1,) + tuple(f.shape[-2:]))
            zq = torch.cat([z_first, z_rest], dim=2)
        else:
            zq = F.interpolate(zq, size=tuple(f.shape[-3:]))
        return self.norm_layer(f) * self.conv_y(zq, cache) + self.conv_b(zq, cache)


class ResnetBlock3D(nn.Module):
    def __init__(self, cin: int, cout: int, groups: int, eps: float, zq_channels: Optional[int] = None):
        super().__init__()
        if zq_channels is None:
            self.norm1 = nn.GroupNorm(groups, cin, eps=eps)
            self.norm2 = nn.GroupNorm(groups, cout, eps=eps)
        else:
            self.norm1 = SpatialNorm3D(cin, zq_channels, groups)
            self.norm2 = SpatialNorm3D(cout, zq_channels, groups)
        self.spatial = zq_channels is not None
        self.conv1 = CausalConv3d(cin, cout)
        self.conv2 = CausalConv3d(cout, cout)
        self.conv_shortcut = SafeConv3d(cin, cout, kernel_size=1) if cin != cout else None

    def _norm(self, norm, x, zq, cache):
        return norm(x, zq, cache) if self.spatial else norm(x)

    def forward(self, x: torch.Tensor, zq: Optional[torch.Tensor], cache: Optional[Cache]) -> torch.Tensor:
        h = self.conv1(F.silu(self._norm(self.norm1, x, zq, cache)), cache)
        h = self.conv2(F.silu(self._norm(self.norm2, h, zq, cache)), cache)
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return h + x


class Downsample3D(nn.Module):
    def __init__(self, channels: int, compress_time: bool):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=0)
        self.compress_time = compress_time

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.compress_time and x.shape[2] > 1:
            first, rest = (x[:, :, :1], x[:, :, 1:]) if x.shape[2] % 2 else (None, x)
            B, C, T, H, W = rest.shape
            pooled = rest.reshape(B, C, T // 2, 2, H, W).mean(dim=3) if T else rest
            x = torch.cat([first, pooled], dim=2) if first is not None else pooled
        B, C, T, H, W = x.shape
        x = F.pad(x.permute(0, 2, 1, 3, 4).reshape(B * T, C, H, W), (0, 1, 0, 1))
        x = self.conv(x)
        return x.reshape(B, T, *x.shape[1:]).permute(0, 2, 1, 3, 4)


class Upsample3D(nn.Module):
    def __init__(self, channels: int, compress_time: bool):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1)
        self.compress_time = compress_time

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        if self.compress_time and T > 1 and T % 2 == 1:
            first = F.interpolate(x[:, :, 0], scale_factor=2.0)[:, :, None]
            x = torch.cat([first, F.interpolate(x[:, :, 1:], scale_factor=2.0)], dim=2)
        elif self.compress_time and T > 1:
            x = F.interpolate(x, scale_factor=2.0)
        else:
            x = F.interpolate(x.permute(0, 2, 1, 3, 4).reshape(B * T, C, H, W), scale_factor=2.0)
            x = x.reshape(B, T, C, 2 * H, 2 * W).permute(0, 2, 1, 3, 4)
        B, C, T, H, W = x.shape
        x = self.conv(x.permute(0, 2, 1, 3, 4).reshape(B * T, C, H, W))
        return x.reshape(B, T, *x.shape[1:]).permute(0, 2, 1, 3, 4)


class _Stage(nn.Module):
    """A down block, the mid block or an up block: ResNet blocks then an optional resampler."""

    def __init__(self, resnets: List[ResnetBlock3D], downsampler: Optional[nn.Module] = None,
                 upsampler: Optional[nn.Module] = None):
        super().__init__()
        self.resnets = nn.ModuleList(resnets)
        if downsampler is not None:
            self.downsamplers = nn.ModuleList([downsampler])
        if upsampler is not None:
            self.upsamplers = nn.ModuleList([upsampler])

    def forward(self, x, zq, cache):
        for r in self.resnets:
            x = r(x, zq, cache)
        for s in list(getattr(self, "downsamplers", ())) + list(getattr(self, "upsamplers", ())):
            x = s(x)
        return x


class Encoder3D(nn.Module):
    def __init__(self, cfg: CogVideoXVAEConfig):
        super().__init__()
        ch = cfg.block_out_channels
        g, eps = cfg.norm_num_groups, cfg.norm_eps
        self.conv_in = CausalConv3d(cfg.in_channels, ch[0])
        blocks, cin = [], ch[0]
        for i, cout in enumerate(ch):
            resnets = [ResnetBlock3D(cin if j == 0 else cout, cout, g, eps) for j in range(cfg.layers_per_block)]
            down = Downsample3D(cout, i < cfg.time_levels) if i < len(ch) - 1 else None
            blocks.append(_Stage(resnets, downsampler=down))
            cin = cout
        self.down_blocks = nn.ModuleList(blocks)
        self.mid_block = _Stage([ResnetBlock3D(ch[-1], ch[-1], g, eps) for _ in range(2)])
        self.norm_out = nn.GroupNorm(g, ch[-1], eps=1e-6)
        self.conv_out = CausalConv3d(ch[-1], 2 * cfg.latent_channels)

    def forward(self, x: torch.Tensor, cache: Optional[Cache]) -> torch.Tensor:
        x = self.conv_in(x, cache)
        for b in self.down_blocks:
            x = b(x, None, cache)
        x = self.mid_block(x, None, cache)
        return self.conv_out(F.silu(self.norm_out(x)), cache)


class Decoder3D(nn.Module):
    def __init__(self, cfg: CogVideoXVAEConfig):
        super().__init__()
        ch = list(reversed(cfg.block_out_channels))
        g, eps, z = cfg.norm_num_groups, cfg.norm_eps, cfg.latent_channels
        self.conv_in = CausalConv3d(z, ch[0])
        self.mid_block = _Stage([ResnetBlock3D(ch[0], ch[0], g, eps, z) for _ in range(2)])
        blocks, cin = [], ch[0]
        for i, cout in enumerate(ch):
            resnets = [ResnetBlock3D(cin if j == 0 else cout, cout, g, eps, z) for j in range(cfg.layers_per_block + 1)]
            up = Upsample3D(cout, i < cfg.time_levels) if i < len(ch) - 1 else None
            blocks.append(_Stage(resnets, upsampler=up))
            cin = cout
        self.up_blocks = nn.ModuleList(blocks)
        self.norm_out = SpatialNorm3D(ch[-1], z, g)
        self.conv_out = CausalConv3d(ch[-1], cfg.out_channels)

    def forward(self, z: torch.Tensor, cache: Optional[Cache]) -> torch.Tensor:
        x = self.conv_in(z, cache)
        x = self.mid_block(x, z, cache)
        for b in self.up_blocks:
            x = b(x, z, cache)
        return self.conv_out(F.silu(self.norm_out(x, z, cache)), cache)


# --------------------------------------------------------------------------- calls


def frame_batches(frames: int, batch: int) -> List[Tuple[int, int]]:
    """[start, end) of each call: max(frames // batch, 1) calls, the first takes the remainder."""
    n = max(frames // batch, 1)
    rem = frames % batch
    return [(batch * k + (0 if k == 0 else rem), batch * (k + 1) + rem) for k in range(n)]


def _blend_rows(above: torch.Tensor, tile: torch.Tensor, extent: int) -> None:
    e = min(above.shape[3], tile.shape[3], extent)
    for y in range(e):
        tile[:, :, :, y] = above[:, :, :, -e + y] * (1 - y / e) + tile[:, :, :, y] * (y / e)


def _blend_cols(left: torch.Tensor, tile: torch.Tensor, extent: int) -> None:
    e = min(left.shape[4], tile.shape[4], extent)
    for x in range(e):
        tile[:, :, :, :, x] = left[:, :, :, :, -e + x] * (1 - x / e) + tile[:, :, :, :, x] * (x / e)


class CogVideoXVAE(nn.Module):
    """``encode(video) -> (mean, logvar)`` and ``decode(z) -> video``, video [B, 3, T, H, W] in [-1, 1],
    latents [B, 16, F, H/8, W/8] unscaled."""

    ENCODE_FRAMES = 8
    DECODE_FRAMES = 2

    def __init__(self, cfg: CogVideoXVAEConfig):
        super().__init__()
        self.config = cfg
        self.encoder = Encoder3D(cfg)
        self.decoder = Decoder3D(cfg)

    @property
    def device(self) -> torch.device:
        return self.decoder.conv_out.conv.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder.conv_out.conv.weight.dtype

    # ------------------------------------------------------------------ one tile, frame batches

    def _run(self, net: nn.Module, x: torch.Tensor, batch: int) -> torch.Tensor:
        cache: Cache = {}
        outs = []
        for a, b in frame_batches(x.shape[2], batch):
            check_interrupt()
            outs.append(net(x[:, :, a:b].to(self.device, self.dtype), cache))
        return torch.cat(outs, dim=2) if len(outs) > 1 else outs[0]

    # ------------------------------------------------------------------ tiles

    def _tiled(self, net: nn.Module, x: torch.Tensor, batch: int, tile: Tuple[int, int], stride: Tuple[int, int],
               blend: Tuple[int, int], keep: Tuple[int, int], on_cpu: bool) -> torch.Tensor:
        H, W = x.shape[-2:]
        rows = []
        for i in range(0, H, stride[0]):
            row = []
            for j in range(0, W, stride[1]):
                t = self._run(net, x[:, :, :, i:i + tile[0], j:j + tile[1]], batch)
                row.append(t.float().cpu() if on_cpu else t)
            rows.append(row)
        out_rows = []
        for i, row in enumerate(rows):
            parts = []
            for j, t in enumerate(row):
                if i > 0:
                    _blend_rows(rows[i - 1][j], t, blend[0])
                if j > 0:
                    _blend_cols(row[j - 1], t, blend[1])
                parts.append(t[:, :, :, :keep[0], :keep[1]])
            out_rows.append(torch.cat(parts, dim=4))
        return torch.cat(out_rows, dim=3)

    @staticmethod
    def _tile_geometry(tiling: VAETiling, ratio: int):
        th_px, tw_px = tiling.tile_height, tiling.tile_width
        th, tw = int(th_px / ratio), int(tw_px / ratio)
        return th_px, tw_px, th, tw

    # ------------------------------------------------------------------ public

    @torch.no_grad()
    def encode(self, video: torch.Tensor, tiling: Optional[VAETiling] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """video [B, 3, T, H, W] in [-1, 1] -> (mean, logvar clamped to [-30, 20]), float32."""
        if video.dim() != 5 or video.shape[1] != self.config.in_channels:
            raise ValueError("expected a video [B, 3, frames, height, width], got %s" % list(video.shape))
        r = self.config.spatial_ratio
        H, W = video.shape[-2:]
        if H % r or W % r:
            raise ValueError("the frame size %dx%d must be a multiple of %d" % (W, H, r))
        th_px, tw_px, th, tw = self._tile_geometry(tiling, r) if tiling else (0, 0, 0, 0)
        if tiling is not None and (W > tw_px or H > th_px):
            stride = (int(th_px * (1 - tiling.overlap_height)), int(tw_px * (1 - tiling.overlap_width)))
            blend = (int(th * tiling.overlap_height), int(tw * tiling.overlap_width))
            keep = (th - blend[0], tw - blend[1])
            # The official geometry is consistent (stride 200 / 288 px = kept 25 / 36 latents at
            # 720x480); other tile sizes are made so instead of producing a wrong size.
            stride = tuple(v if v == k * r else max(r, v // r * r) for v, k in zip(stride, keep))
            keep = tuple(s // r for s in stride)
            h = self._tiled(self.encoder, video, self.ENCODE_FRAMES, (th_px, tw_px), stride, blend, keep, on_cpu=False)
        else:
            h = self._run(self.encoder, video, self.ENCODE_FRAMES)
        mean, logvar = h.float().chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, tiling: Optional[VAETiling] = None, to_cpu: bool = False) -> torch.Tensor:
        """z [B, 16, F, h, w] (unscaled) -> video [B, 3, T, 8h, 8w] float32 (raw, not clamped).
        ``to_cpu``: finished tiles wait in system RAM (the blend runs there)."""
        if z.dim() != 5 or z.shape[1] != self.config.latent_channels:
            raise ValueError("expected latents [B, %d, frames, h, w], got %s" % (self.config.latent_channels, list(z.shape)))
        r = self.config.spatial_ratio
        h, w = z.shape[-2:]
        th_px, tw_px, th, tw = self._tile_geometry(tiling, r) if tiling else (0, 0, 0, 0)
        if tiling is not None and (w > tw or h > th):
            stride = (max(1, int(th * (1 - tiling.overlap_height))), max(1, int(tw * (1 - tiling.overlap_width))))
            blend = (int(th_px * tiling.overlap_height), int(tw_px * tiling.overlap_width))
            keep = tuple(v * r for v in stride)  # = tile - blend for the official sizes (200 / 288 px)
            out = self._tiled(self.decoder, z, self.DECODE_FRAMES, (th, tw), stride, blend, keep, on_cpu=to_cpu)
        else:
            out = self._run(self.decoder, z, self.DECODE_FRAMES)
        out = out.float()
        return out.cpu() if to_cpu else out


def expected_shapes(cfg: CogVideoXVAEConfig) -> Dict[str, Tuple[int, ...]]:
    with torch.device("meta"):
        m = CogVideoXVAE(cfg)
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}


def scale_of(config: CogVideoXVAEConfig) -> float:
    return config.scaling_factor


__all__: Sequence[str] = ("CogVideoXVAE", "CogVideoXVAEConfig", "VAETiling", "frame_batches", "expected_shapes")
