"""The Wan2.1 video VAE (SkyReels-V2, A2, V3): a causal 3D convolutional autoencoder.

Structure (spec §2.2), with every width taken from :class:`WanVAEConfig`:

* encoder: causal conv -> stages of residual blocks with a spatial (and, where
  ``temperal_downsample`` says so, temporal) ×2 downsample between stages -> middle block
  (residual, single-head attention per frame, residual) -> RMS norm, SiLU, causal conv to
  2·z_dim channels; then the 1×1×1 ``conv1``, whose first z_dim channels are the posterior
  mean μ (the other half, the log-variance, is never used here: no sampling);
* decoder: the 1×1×1 ``conv2``, causal conv -> middle block -> stages of residual blocks with
  a ×2 upsample (spatial, and temporal where the reversed flags say so) -> head to RGB.

Time is causal everywhere and the model is run as a *stream*: the video is fed a few frames
at a time and every layer that looks back in time keeps the frames it still needs in a
:class:`FeatureCache`.  Frame 0 is special, as in the official code: a temporal downsample
passes it through untouched and then convolves the following frames in pairs, and a
temporal upsample passes it through as a single frame and doubles every later frame, so a
video of 1 + 4k frames has 1 + k latent frames.  The stream gives the same numbers whatever
the chunk sizes, as long as every chunk after frame 0 holds whole latent frames.

Parameter names are the official ones (``encoder.downsamples.3.residual.2.weight``, ...);
``vae_keys`` maps the diffusers ``AutoencoderKLWan`` names.  Weights may be stored in bf16 or
fp16 and are cast per layer to ``compute_dtype`` (float32 by default, as the official code).

ComfyUI's LATENT for Wan holds the *raw* mean μ, so :meth:`WanVAE.encode` and
:meth:`WanVAE.decode` speak raw latents; :meth:`WanVAE.normalize` / :meth:`WanVAE.denormalize`
convert to and from the normalised latents the DiT works on.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..common import ops
from ..common.ops import cast_to
from ...host import Progress, check_interrupt

# Per-channel latent statistics of the released Wan2.1 VAE (official WanVAE, spec §2.2).
LATENTS_MEAN = (-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
                0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921)
LATENTS_STD = (2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
               3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160)


# --------------------------------------------------------------------------- configuration


@dataclass
class WanVAEConfig:
    """Constructor fields of the official ``WanVAE_`` (defaults: the released Wan2.1 VAE)."""

    dim: int = 96
    z_dim: int = 16
    dim_mult: Tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attn_scales: Tuple[float, ...] = ()
    temperal_downsample: Tuple[bool, ...] = (False, True, True)  # (sic) the official spelling

    def __post_init__(self):
        self.dim = int(self.dim)
        self.z_dim = int(self.z_dim)
        self.dim_mult = tuple(int(m) for m in self.dim_mult)
        self.num_res_blocks = int(self.num_res_blocks)
        self.attn_scales = tuple(float(s) for s in self.attn_scales)
        self.temperal_downsample = tuple(bool(t) for t in self.temperal_downsample)

    @classmethod
    def from_official(cls, d: Dict[str, Any]) -> "WanVAEConfig":
        """From the official ``WanVAE_`` keyword arguments (``dropout`` is ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_diffusers(cls, d: Dict[str, Any]) -> "WanVAEConfig":
        """From the diffusers ``AutoencoderKLWan`` config (``vae/config.json``)."""
        if d.get("is_residual") or d.get("patch_size") not in (None, 1):
            raise ValueError("this AutoencoderKLWan config is the Wan2.2 VAE (is_residual / patch_size); "
                             "only the Wan2.1 VAE is supported")
        base = d.get("base_dim", 96)
        dec = d.get("decoder_base_dim")
        if dec not in (None, base):
            raise ValueError("decoder_base_dim %s differs from base_dim %s; only equal widths are supported"
                             % (dec, base))
        return cls(dim=base, z_dim=d.get("z_dim", 16), dim_mult=d.get("dim_mult", (1, 2, 4, 4)),
                   num_res_blocks=d.get("num_res_blocks", 2), attn_scales=d.get("attn_scales", ()),
                   temperal_downsample=d.get("temperal_downsample", (False, True, True)))

    def to_official(self) -> Dict[str, Any]:
        return {"dim": self.dim, "z_dim": self.z_dim, "dim_mult": list(self.dim_mult),
                "num_res_blocks": self.num_res_blocks, "attn_scales": list(self.attn_scales),
                "temperal_downsample": list(self.temperal_downsample), "dropout": 0.0}

    @property
    def temporal_factor(self) -> int:
        """Pixel frames per latent frame (after the first): 4 for Wan2.1."""
        return 2 ** sum(self.temperal_downsample)

    @property
    def spatial_factor(self) -> int:
        """Pixels per latent pixel along each side: 8 for Wan2.1."""
        return 2 ** (len(self.dim_mult) - 1)

    def validate(self) -> None:
        if self.dim <= 0 or self.z_dim <= 0 or self.num_res_blocks <= 0 or not self.dim_mult:
            raise ValueError("invalid Wan VAE config %s" % self)
        if len(self.temperal_downsample) != len(self.dim_mult) - 1:
            raise ValueError("temperal_downsample needs %d flags (one per downsample), found %d"
                             % (len(self.dim_mult) - 1, len(self.temperal_downsample)))
        if any((self.dim * m) % 2 for m in self.dim_mult[1:]):
            raise ValueError("every stage width after the first must be even (the upsample halves it)")


# --------------------------------------------------------------------------- streaming state


class FeatureCache:
    """What a causal stream remembers between chunks: per layer, the input frames it still
    needs (the last ``kt - 1`` frames for a causal conv), or a marker that the layer has seen
    frame 0.  A fresh cache starts a new video; tiles use one cache each."""

    def __init__(self):
        self._state: Dict[int, Any] = {}

    def get(self, layer: nn.Module) -> Any:
        return self._state.get(id(layer))

    def put(self, layer: nn.Module, value: Any) -> None:
        self._state[id(layer)] = value


# --------------------------------------------------------------------------- layers


class CausalConv3d(ops.Conv3d):
    """3D convolution that sees only the current and earlier frames.

    Spatial zero padding keeps height and width; in time the ``kt - 1`` frames of context
    come from the cache (frames of earlier chunks) or are zeros at the start of the video.
    """

    def __init__(self, in_dim: int, out_dim: int, kernel: Union[int, Tuple[int, int, int]]):
        kt, kh, kw = (kernel,) * 3 if isinstance(kernel, int) else tuple(kernel)
        super().__init__(in_dim, out_dim, (kt, kh, kw), padding=(0, kh // 2, kw // 2))
        self.context = kt - 1

    def forward(self, x: torch.Tensor, cache: Optional[FeatureCache] = None) -> torch.Tensor:
        if self.context:
            past = cache.get(self) if cache is not None else None
            if past is not None:
                x = torch.cat([past, x], dim=2)
            if cache is not None:
                cache.put(self, x[:, :, -self.context:].clone())
            missing = self.context - (past.shape[2] if past is not None else 0)
            if missing > 0:  # start of the video: zeros stand for the frames before it
                x = F.pad(x, (0, 0, 0, 0, missing, 0))
        return super().forward(x)


class ChannelRMSNorm(nn.Module):
    """RMS norm over the channel axis (dim 1): x / ||x|| · sqrt(C) · gamma."""

    def __init__(self, dim: int, spatial_dims: int = 3):
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones(dim, *([1] * spatial_dims)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) * self.scale * cast_to(self.gamma, x)


def _per_frame(fn, x: torch.Tensor) -> torch.Tensor:
    """Apply a 2D ``fn`` to every frame of x [B, C, T, H, W]."""
    b, c, t, h, w = x.shape
    y = fn(x.transpose(1, 2).reshape(b * t, c, h, w))
    return y.reshape(b, t, *y.shape[1:]).transpose(1, 2)


class ResidualBlock(nn.Module):
    """norm, SiLU, causal conv, norm, SiLU, causal conv; plus a 1×1×1 shortcut when the width
    changes.  Held in an ``nn.Sequential`` so the parameter names match the official
    checkpoint (``residual.0`` norm, ``residual.2`` conv, ``residual.3`` norm, ``residual.6`` conv)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.residual = nn.Sequential(
            ChannelRMSNorm(in_dim), nn.SiLU(), CausalConv3d(in_dim, out_dim, 3),
            ChannelRMSNorm(out_dim), nn.SiLU(), nn.Identity(),  # (dropout in training)
            CausalConv3d(out_dim, out_dim, 3))
        self.shortcut = CausalConv3d(in_dim, out_dim, 1) if in_dim != out_dim else None

    def forward(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        r = self.residual
        h = r[2](F.silu(r[0](x)), cache)
        h = r[6](F.silu(r[3](h)), cache)
        return h + (self.shortcut(x) if self.shortcut is not None else x)


class AttentionBlock(nn.Module):
    """Single-head self-attention over the pixels of each frame (no mixing in time)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = ChannelRMSNorm(dim, spatial_dims=2)
        self.to_qkv = ops.Conv2d(dim, dim * 3, 1)
        self.proj = ops.Conv2d(dim, dim, 1)

    def _attend(self, frames: torch.Tensor) -> torch.Tensor:
        n, c, h, w = frames.shape
        qkv = self.to_qkv(self.norm(frames)).reshape(n, 3 * c, h * w).transpose(1, 2)  # [n, hw, 3c]
        q, k, v = (t.unsqueeze(1) for t in qkv.chunk(3, dim=-1))  # [n, 1, hw, c] each
        out = F.scaled_dot_product_attention(q, k, v).squeeze(1)  # [n, hw, c]
        return self.proj(out.transpose(1, 2).reshape(n, c, h, w))

    def forward(self, x: torch.Tensor, cache: Optional[FeatureCache] = None) -> torch.Tensor:
        return x + _per_frame(self._attend, x)


class Resample(nn.Module):
    """×2 down- or upsampling in space, and in time for the ``*3d`` modes.

    * ``downsample2d/3d``: zero-pad right and bottom by one, 3×3 conv with stride 2.  The 3d
      mode then passes frame 0 through and convolves each later pair of frames together with
      the frame before it (kernel 3, stride 2 in time), so 1 + 2k frames become 1 + k.
    * ``upsample2d/3d``: nearest ×2, 3×3 conv to half the channels.  The 3d mode first passes
      frame 0 through and turns every later frame into two with a causal time conv to twice
      the channels (its stream starts at frame 1, zero-padded), so 1 + k frames become 1 + 2k.
    """

    MODES = ("upsample2d", "upsample3d", "downsample2d", "downsample3d")

    def __init__(self, dim: int, mode: str):
        super().__init__()
        if mode not in self.MODES:
            raise ValueError("unknown resample mode %r" % mode)
        self.mode = mode
        self.time_conv: Optional[nn.Module] = None
        if mode.startswith("upsample"):
            self.resample = nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest-exact"),
                                          ops.Conv2d(dim, dim // 2, 3, padding=1))
            if mode == "upsample3d":
                self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1))
        else:
            self.resample = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), ops.Conv2d(dim, dim, 3, stride=2))
            if mode == "downsample3d":
                self.time_conv = ops.Conv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1))

    def _spatial(self, frames: torch.Tensor) -> torch.Tensor:
        if self.mode.startswith("upsample"):
            up = F.interpolate(frames.float(), scale_factor=2.0, mode="nearest-exact").to(frames.dtype)
            return self.resample[1](up)
        return self.resample[1](F.pad(frames, (0, 1, 0, 1)))

    def _double_frames(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = self.time_conv(x, cache)  # [b, 2c, t, h, w]: the two halves are frames 2i and 2i+1
        return y.view(b, 2, c, t, h, w).permute(0, 2, 3, 1, 4, 5).reshape(b, c, 2 * t, h, w)

    def _upsample_time(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        if cache.get(self) is None:  # frame 0 of the video: kept as one frame
            cache.put(self, True)
            first, rest = x[:, :, :1], x[:, :, 1:]
            return torch.cat([first, self._double_frames(rest, cache)], 2) if rest.shape[2] else first
        return self._double_frames(x, cache)

    def _downsample_time(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        last = cache.get(self)
        out: List[torch.Tensor] = []
        if last is None:  # frame 0 of the video passes through
            out.append(x[:, :, :1])
            last, x = x[:, :, :1], x[:, :, 1:]
        if x.shape[2]:
            if x.shape[2] % 2:
                raise ValueError("a temporal downsample needs an even number of frames after frame 0, got %d"
                                 % x.shape[2])
            out.append(self.time_conv(torch.cat([last, x], 2)))
            last = x[:, :, -1:]
        cache.put(self, last.clone())
        return torch.cat(out, 2) if len(out) > 1 else out[0]

    def forward(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        if self.mode == "upsample3d":
            x = self._upsample_time(x, cache)
        x = _per_frame(self._spatial, x)
        if self.mode == "downsample3d":
            x = self._downsample_time(x, cache)
        return x


def _head(dim: int, out_dim: int) -> nn.Sequential:
    """RMS norm, SiLU, causal conv (names ``head.0`` and ``head.2``)."""
    return nn.Sequential(ChannelRMSNorm(dim), nn.SiLU(), CausalConv3d(dim, out_dim, 3))


def _run_head(head: nn.Sequential, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
    return head[2](F.silu(head[0](x)), cache)


def _middle(dim: int) -> nn.ModuleList:
    return nn.ModuleList([ResidualBlock(dim, dim), AttentionBlock(dim), ResidualBlock(dim, dim)])


# --------------------------------------------------------------------------- encoder / decoder


class Encoder3d(nn.Module):
    def __init__(self, cfg: WanVAEConfig):
        super().__init__()
        dims = [cfg.dim * m for m in (1,) + cfg.dim_mult]
        self.conv1 = CausalConv3d(3, dims[0], 3)
        blocks: List[nn.Module] = []
        scale = 1.0
        last_stage = len(cfg.dim_mult) - 1
        for stage, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResidualBlock(in_dim, out_dim))
                if scale in cfg.attn_scales:
                    blocks.append(AttentionBlock(out_dim))
                in_dim = out_dim
            if stage != last_stage:
                blocks.append(Resample(out_dim, "downsample3d" if cfg.temperal_downsample[stage] else "downsample2d"))
                scale /= 2.0
        self.downsamples = nn.ModuleList(blocks)
        self.middle = _middle(dims[-1])
        self.head = _head(dims[-1], cfg.z_dim * 2)

    def forward(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        x = self.conv1(x, cache)
        for layer in self.downsamples:
            x = layer(x, cache)
        for layer in self.middle:
            x = layer(x, cache)
        return _run_head(self.head, x, cache)


class Decoder3d(nn.Module):
    def __init__(self, cfg: WanVAEConfig):
        super().__init__()
        mult = cfg.dim_mult
        dims = [cfg.dim * m for m in (mult[-1],) + tuple(reversed(mult))]
        temporal_up = tuple(reversed(cfg.temperal_downsample))
        scale = 1.0 / 2 ** (len(mult) - 2)
        self.conv1 = CausalConv3d(cfg.z_dim, dims[0], 3)
        self.middle = _middle(dims[0])
        blocks: List[nn.Module] = []
        last_stage = len(mult) - 1
        for stage, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            if stage > 0:
                in_dim //= 2  # the upsample before this stage halved the width
            for _ in range(cfg.num_res_blocks + 1):
                blocks.append(ResidualBlock(in_dim, out_dim))
                if scale in cfg.attn_scales:
                    blocks.append(AttentionBlock(out_dim))
                in_dim = out_dim
            if stage != last_stage:
                blocks.append(Resample(out_dim, "upsample3d" if temporal_up[stage] else "upsample2d"))
                scale *= 2.0
        self.upsamples = nn.ModuleList(blocks)
        self.head = _head(dims[-1], 3)

    def forward(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        x = self.conv1(x, cache)
        for layer in self.middle:
            x = layer(x, cache)
        for layer in self.upsamples:
            x = layer(x, cache)
        return _run_head(self.head, x, cache)


# --------------------------------------------------------------------------- the VAE


def latent_chunks(num_latent_frames: int, per_chunk: Optional[int]) -> List[Tuple[int, int]]:
    """[start, end) latent-frame ranges of a stream: ``per_chunk`` frames each (default 1)."""
    n = max(1, int(per_chunk or 1))
    return [(s, min(s + n, num_latent_frames)) for s in range(0, num_latent_frames, n)]


class StreamDecoder:
    """Decodes a long latent video piece by piece, keeping the causal state between pieces,
    so the frames equal those of decoding the whole latent at once (untiled)."""

    def __init__(self, vae: "WanVAE"):
        self.vae = vae
        self.cache = FeatureCache()
        self.latent_frames = 0

    def reach(self) -> int:
        """Latent frames that determine the stream's state: after decoding any ``reach()``
        consecutive latents, the causal caches hold exactly what they hold after decoding
        the whole video up to there (each causal conv remembers ``kernel - 1`` input frames,
        which are ``(kernel - 1) / rate`` latent frames at its place in the decoder)."""
        vae = self.vae
        total, rate = 0.0, 1
        layers = [vae.conv2, vae.decoder.conv1, *vae.decoder.middle, *vae.decoder.upsamples, vae.decoder.head]
        for layer in layers:
            for m in layer.modules():
                if isinstance(m, CausalConv3d):
                    total += m.context / rate
            if isinstance(layer, Resample) and layer.mode == "upsample3d":
                rate *= 2
        return int(math.ceil(total)) + 1

    @torch.no_grad()
    def warm(self, z_raw: torch.Tensor) -> None:
        """Bring a new stream to the state it has after decoding ``z_raw`` (the latents of the
        video so far, from its first frame), without keeping the frames: only the last
        :meth:`reach` latents are decoded, so resuming a long video costs a bounded decode.
        Frames fed afterwards equal those of an uninterrupted stream exactly."""
        if self.latent_frames:
            raise RuntimeError("warm() starts a new stream; this one has already decoded frames")
        n = z_raw.shape[2]
        keep = self.reach()
        if n > keep:  # the video's first frame is behind us: no layer treats a frame as frame 0
            for m in self.vae.decoder.modules():
                if isinstance(m, Resample) and m.mode == "upsample3d":
                    self.cache.put(m, True)
            z_raw = z_raw[:, :, n - keep:]
        self.feed(z_raw)
        self.latent_frames = n

    @torch.no_grad()
    def feed(self, z_raw: torch.Tensor, clamp: bool = True) -> torch.Tensor:
        """Raw latents [B, z, F, h, w] that follow the ones fed so far -> their pixel frames
        (4 per latent, 1 for the very first), float32 on ``z_raw``'s device."""
        vae = self.vae
        outs = []
        with Progress(z_raw.shape[2], "VAE decode") as bar:
            for f in range(z_raw.shape[2]):
                x = vae.decoder(vae.conv2(vae._prepare(z_raw[:, :, f:f + 1])), self.cache)
                outs.append(x.to(device=z_raw.device, dtype=torch.float32))
                check_interrupt()
                bar.update(1)
        self.latent_frames += z_raw.shape[2]
        video = torch.cat(outs, dim=2)
        return video.clamp(-1, 1) if clamp else video


class WanVAE(nn.Module):
    """The Wan2.1 video VAE.  ``encode``/``decode`` take and return *raw* latents (the mean μ)."""

    latents_mean: torch.Tensor
    latents_std: torch.Tensor

    def __init__(self, config: Optional[WanVAEConfig] = None):
        super().__init__()
        config = config or WanVAEConfig()
        config.validate()
        self.config = config
        self.z_dim = config.z_dim
        self.encoder = Encoder3d(config)
        self.conv1 = CausalConv3d(config.z_dim * 2, config.z_dim * 2, 1)
        self.conv2 = CausalConv3d(config.z_dim, config.z_dim, 1)
        self.decoder = Decoder3d(config)
        self.compute_dtype = torch.float32
        self.register_buffer("latents_mean", torch.zeros(config.z_dim), persistent=False)
        self.register_buffer("latents_std", torch.ones(config.z_dim), persistent=False)
        if not self.latents_mean.is_meta:
            self.set_latent_stats()

    # ---- normalisation

    def set_latent_stats(self, mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None,
                         device: Optional[Union[str, torch.device]] = None) -> None:
        """Set the per-channel statistics (default: the official Wan2.1 constants when z_dim is
        16, else mean 0 / std 1)."""
        z = self.z_dim
        if mean is None:
            mean = LATENTS_MEAN if z == len(LATENTS_MEAN) else [0.0] * z
        if std is None:
            std = LATENTS_STD if z == len(LATENTS_STD) else [1.0] * z
        if len(mean) != z or len(std) != z:
            raise ValueError("latent statistics need %d values each, found %d and %d" % (z, len(mean), len(std)))
        device = device if device is not None else (self.conv2.weight.device if not self.conv2.weight.is_meta else "cpu")
        self.latents_mean = torch.tensor([float(v) for v in mean], dtype=torch.float32, device=device)
        self.latents_std = torch.tensor([float(v) for v in std], dtype=torch.float32, device=device)

    def _stat(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return t.to(device=like.device, dtype=torch.float32).view(1, -1, *([1] * (like.dim() - 2)))

    def normalize(self, mu: torch.Tensor) -> torch.Tensor:
        """Raw mean -> normalised latent: (μ − mean) · (1/std) per channel (official form)."""
        self._check_latent(mu, "normalize")
        return (mu.float() - self._stat(self.latents_mean, mu)) * (1.0 / self._stat(self.latents_std, mu))

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised latent -> raw mean: z / (1/std) + mean per channel (official form)."""
        self._check_latent(z, "denormalize")
        return z.float() / (1.0 / self._stat(self.latents_std, z)) + self._stat(self.latents_mean, z)

    # ---- devices

    @property
    def device(self) -> torch.device:
        return self.conv2.weight.device

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(device=self.device, dtype=self.compute_dtype)

    # ---- streams (used by vae_tiling, which adds tiles, progress and cancellation)

    def encode_stream(self, video: torch.Tensor, time_chunk: Optional[int] = None, posterior: bool = False
                      ) -> Iterator[Tuple[int, int, torch.Tensor]]:
        """Encode ``video`` [B,3,T,H,W] causally; yields (first latent frame, pixel frames
        consumed, raw μ chunk in float32 on ``video``'s device).  Chunks are frame 0, then
        ``time_chunk`` latent frames (4 pixel frames each) at a time (default 1, as official).
        ``posterior``: yield μ and the (unclamped) log-variance, 2·z channels."""
        tf = self.config.temporal_factor
        num_latent = (video.shape[2] - 1) // tf + 1
        cache = FeatureCache()
        for f0, f1 in latent_chunks(num_latent, time_chunk):
            p0 = 0 if f0 == 0 else 1 + tf * (f0 - 1)
            p1 = 1 + tf * (f1 - 1)
            h = self.encoder(self._prepare(video[:, :, p0:p1]), cache)
            mu = self.conv1(h) if posterior else self.conv1(h)[:, :self.z_dim]
            yield f0, p1 - p0, mu.to(device=video.device, dtype=torch.float32)
            del h, mu

    def decode_stream(self, z_raw: torch.Tensor, time_chunk: Optional[int] = None
                      ) -> Iterator[Tuple[int, torch.Tensor]]:
        """Decode raw latents [B,z,F,h,w] causally; yields (first pixel frame, unclamped video
        chunk in float32 on ``z_raw``'s device).  ``time_chunk`` latent frames per call
        (default 1, as official)."""
        tf = self.config.temporal_factor
        cache = FeatureCache()
        for f0, f1 in latent_chunks(z_raw.shape[2], time_chunk):
            x = self.decoder(self.conv2(self._prepare(z_raw[:, :, f0:f1])), cache)
            first_pixel = 0 if f0 == 0 else 1 + tf * (f0 - 1)
            yield first_pixel, x.to(device=z_raw.device, dtype=torch.float32)
            del x

    # ---- public API

    @torch.no_grad()
    def encode(self, video: torch.Tensor, tile=None) -> torch.Tensor:
        """Video [B,3,T,H,W] in [−1,1] (T = 4k+1; H, W multiples of 8) -> raw mean μ
        [B,z,(T−1)/4+1,H/8,W/8] float32, on the video's device.  ``tile``: a
        :class:`~.vae_tiling.VAETiling` for spatial tiles / time chunks, None = untiled."""
        from .vae_tiling import encode_video

        self._check_video(video)
        return encode_video(self, video, tile)

    @torch.no_grad()
    def encode_posterior(self, video: torch.Tensor, tile=None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Like :meth:`encode`, but returns the whole posterior: (μ, log-variance clamped to
        [−30, 20]), each [B,z,F,h,w] float32.  A sample is ``μ + exp(logvar / 2) · ε``
        (SkyReels-A2 and V3-R2V condition on samples, V2 on the mean)."""
        from .vae_tiling import encode_video

        self._check_video(video)
        both = encode_video(self, video, tile, posterior=True)
        return both[:, :self.z_dim], both[:, self.z_dim:].clamp(-30.0, 20.0)

    @torch.no_grad()
    def decode(self, z_raw: torch.Tensor, tile=None, clamp: bool = True) -> torch.Tensor:
        """Raw latent [B,z,F,h,w] -> video [B,3,1+4(F−1),8h,8w] float32 on the latent's device,
        clamped to [−1,1] unless ``clamp=False``."""
        from .vae_tiling import decode_latent

        self._check_latent(z_raw, "decode")
        return decode_latent(self, z_raw, tile, clamp)

    # ---- input checks

    def _check_video(self, video: torch.Tensor) -> None:
        tf, sf = self.config.temporal_factor, self.config.spatial_factor
        if not isinstance(video, torch.Tensor) or video.dim() != 5:
            raise ValueError("VAE encode expects a video tensor [B, 3, T, H, W]; found %s"
                             % (list(video.shape) if isinstance(video, torch.Tensor) else type(video).__name__))
        b, c, t, h, w = video.shape
        problems = []
        if c != 3:
            problems.append("3 channels (RGB), found %d" % c)
        if t < 1 or (t - 1) % tf:
            problems.append("a frame count of %dk+1 (1, %d, %d, ...), found %d" % (tf, 1 + tf, 1 + 2 * tf, t))
        if h < sf or w < sf or h % sf or w % sf:
            problems.append("height and width multiples of %d, found %dx%d" % (sf, h, w))
        if b < 1:
            problems.append("a batch of at least 1")
        if problems:
            raise ValueError("VAE encode expects " + "; ".join(problems))
        if not video.is_floating_point():
            raise ValueError("VAE encode expects float pixels in [-1, 1], found dtype %s" % video.dtype)

    def _check_latent(self, z: torch.Tensor, what: str) -> None:
        if not isinstance(z, torch.Tensor) or z.dim() != 5:
            raise ValueError("VAE %s expects a latent [B, %d, F, h, w]; found %s" % (
                what, self.z_dim, list(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__))
        if z.shape[1] != self.z_dim:
            raise ValueError("VAE %s expects %d latent channels, found %d (shape %s)"
                             % (what, self.z_dim, z.shape[1], list(z.shape)))
        if min(z.shape[0], z.shape[2], z.shape[3], z.shape[4]) < 1:
            raise ValueError("VAE %s got an empty latent %s" % (what, list(z.shape)))
