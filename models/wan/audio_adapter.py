"""The audio adapter of SkyReels-V3 talking avatar (A2V): a Wan I2V trunk plus audio.

Two parts, both switched on by ``WanDiTConfig.audio`` (an :class:`AudioAdapterConfig`):

* ``audio_proj`` (:class:`AudioProjModel`): per-video-frame windows of wav2vec2 features
  ``[B, Fv, window, layers, channels]`` become ``context_tokens`` tokens of ``output_dim`` per
  latent frame.  Latent frame 0 takes the whole window of video frame 0; latent frame k >= 1
  covers video frames 4k-3 .. 4k and takes window positions 0,1,2 of the first, the centre of
  the two middle ones and positions 2,3,4 of the last (3 + 1 + 1 + 3 = 8 entries).
* per block ``norm_x`` + ``audio_cross_attn`` (:class:`AudioCrossAttention`): after the
  text/image cross-attention and before the FFN, the tokens of latent frame f attend to the
  audio tokens of latent frame f only (no q/k norm, no RoPE, no gate).

Parameter names are the official ones (``audio_proj.proj1.weight``,
``blocks.0.audio_cross_attn.kv_linear.weight`` ...).  The null-audio branch of the guidance
is zeros through the same path: ``audio_proj`` turns them into bias-only tokens and the
audio attention still runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..common import ops
from ..common.attention import attention


@dataclass
class AudioAdapterConfig:
    window: int = 5             # wav2vec2 frames around each video frame (official ``audio_window``)
    vae_scale: int = 4          # video frames per latent frame
    layers: int = 12            # wav2vec2 hidden states stacked per frame (``blocks``)
    channels: int = 768         # their width
    intermediate_dim: int = 512
    output_dim: int = 768       # width of the audio tokens the blocks attend to
    context_tokens: int = 32    # audio tokens per latent frame
    norm_output: bool = True    # LayerNorm on the tokens (``norm_output_audio``)

    @property
    def window_vf(self) -> int:
        """Entries gathered for a latent frame after the first (8 with the real settings)."""
        return self.window + self.vae_scale - 1

    @classmethod
    def from_official(cls, cfg: Mapping) -> Optional["AudioAdapterConfig"]:
        """From the official A2V ``WanModel`` fields; None when they are absent."""
        if not any(k in cfg for k in ("audio_window", "context_tokens", "intermediate_dim")):
            return None
        return cls(window=int(cfg.get("audio_window", 5)), vae_scale=int(cfg.get("vae_scale", 4)),
                   intermediate_dim=int(cfg.get("intermediate_dim", 512)),
                   output_dim=int(cfg.get("output_dim", 768)), context_tokens=int(cfg.get("context_tokens", 32)),
                   norm_output=bool(cfg.get("norm_output_audio", True)))

    @property
    def per_frame(self) -> int:
        """Feature values per audio frame (layers x channels)."""
        return self.layers * self.channels

    @classmethod
    def from_shapes(cls, shapes: Mapping[str, Sequence[int]], channels: int = 768,
                    vae_scale: int = 4) -> Optional["AudioAdapterConfig"]:
        """From official-named shapes; None without ``audio_proj``.  The shapes give the values per
        audio frame (layers x channels), not the split: ``channels`` (768, wav2vec2-base) is
        assumed when it divides them; only the product matters to the model."""
        if "audio_proj.proj1.weight" not in shapes:
            return None
        inter, in1 = (int(v) for v in shapes["audio_proj.proj1.weight"])
        in_vf = int(shapes["audio_proj.proj1_vf.weight"][1])
        per_frame = (in_vf - in1) // (vae_scale - 1)
        layers, channels = (per_frame // channels, channels) if per_frame % channels == 0 else (1, per_frame)
        out_dim = int(shapes["audio_proj.norm.weight"][0]) if "audio_proj.norm.weight" in shapes \
            else int(shapes["blocks.0.audio_cross_attn.kv_linear.weight"][1])
        return cls(window=in1 // per_frame, vae_scale=vae_scale, layers=layers, channels=channels,
                   intermediate_dim=inter, output_dim=out_dim,
                   context_tokens=int(shapes["audio_proj.proj3.weight"][0]) // out_dim,
                   norm_output="audio_proj.norm.weight" in shapes)


def gather_windows(windows: torch.Tensor, vae_scale: int = 4) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-video-frame windows [B, Fv, W, S, C] -> (first [B, 1, W, S, C], latter [B, F-1, W+vae_scale-1, S, C]).

    Fv = 1 + vae_scale (F - 1).  Latent frame k >= 1 covers video frames 4k-3 .. 4k: positions
    0..W/2 of the first, the centre of the middle ones and W/2..W-1 of the last."""
    B, fv, w = windows.shape[:3]
    if (fv - 1) % vae_scale:
        raise ValueError("the audio covers %d video frames; it must be 1 + %d k" % (fv, vae_scale))
    mid = w // 2
    first = windows[:, :1]
    rest = windows[:, 1:].reshape(B, (fv - 1) // vae_scale, vae_scale, *windows.shape[2:])
    latter = torch.cat([rest[:, :, 0, :mid + 1], rest[:, :, 1:-1, mid], rest[:, :, -1, mid:]], dim=2)
    return first, latter


class AudioProjModel(nn.Module):
    """Windows of wav2vec2 features -> ``context_tokens`` audio tokens per latent frame."""

    def __init__(self, cfg: AudioAdapterConfig):
        super().__init__()
        self.cfg = cfg
        per_frame = cfg.per_frame
        self.proj1 = ops.Linear(cfg.window * per_frame, cfg.intermediate_dim)
        self.proj1_vf = ops.Linear(cfg.window_vf * per_frame, cfg.intermediate_dim)
        self.proj2 = ops.Linear(cfg.intermediate_dim, cfg.intermediate_dim)
        self.proj3 = ops.Linear(cfg.intermediate_dim, cfg.context_tokens * cfg.output_dim)
        # eps 1e-5 (torch's default) as in the official class, unlike the 1e-6 of the Wan norms
        self.norm = ops.LayerNorm(cfg.output_dim) if cfg.norm_output else None

    def project(self, first: torch.Tensor, latter: torch.Tensor) -> torch.Tensor:
        """Gathered windows (see :func:`gather_windows`) -> tokens [B, F, context_tokens, output_dim]."""
        B = first.shape[0]
        a0 = torch.relu(self.proj1(first.reshape(B, 1, -1)))
        ak = torch.relu(self.proj1_vf(latter.reshape(B, latter.shape[1], -1)))
        h = torch.relu(self.proj2(torch.cat([a0, ak], dim=1)))
        tokens = self.proj3(h).view(B, h.shape[1], self.cfg.context_tokens, self.cfg.output_dim)
        return self.norm(tokens) if self.norm is not None else tokens.float()

    def forward(self, windows: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Windows [B, Fv, W, S, C] -> tokens [B, F, context_tokens, output_dim] float32."""
        c = self.cfg
        if windows.dim() != 5 or windows.shape[2] != c.window or windows.shape[3] * windows.shape[4] != c.per_frame:
            raise ValueError(
                "audio windows must be [B, frames, %d, layers, width] with layers x width = %d (%d x %d for this "
                "model: use the audio encoder that belongs to it), got %s"
                % (c.window, c.per_frame, c.layers, c.channels, list(windows.shape)))
        first, latter = gather_windows(windows.to(self.proj1.weight.device, dtype), c.vae_scale)
        return self.project(first, latter)


class AudioCrossAttention(nn.Module):
    """Visual tokens of each latent frame attend to that frame's audio tokens."""

    def __init__(self, dim: int, num_heads: int, audio_dim: int):
        super().__init__()
        self.num_heads = num_heads
        self.q_linear = ops.Linear(dim, dim)
        self.kv_linear = ops.Linear(audio_dim, 2 * dim)
        self.proj = ops.Linear(dim, dim)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor, frames: int, backend: str) -> torch.Tensor:
        """x [B, L, D] (L = frames x tokens per frame), tokens [B, frames, N, C] -> [B, L, D]."""
        B, L, D = x.shape
        n = self.num_heads
        if tokens.shape[:2] != (B, frames):
            raise ValueError("the audio covers %d latent frames, the video %d" % (tokens.shape[1], frames))
        q = self.q_linear(x).view(B * frames, L // frames, n, D // n).transpose(1, 2)
        kv = self.kv_linear(tokens.to(x.dtype)).view(B * frames, tokens.shape[2], 2, n, D // n)
        k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)
        out = attention(q, k, v, backend)  # [B F, n, L/F, d]
        return self.proj(out.transpose(1, 2).reshape(B, L, D))


def add_block_layers(block: nn.Module, dim: int, num_heads: int, eps: float, cfg: AudioAdapterConfig) -> None:
    """Give a Wan block its audio layers (``norm_x`` and ``audio_cross_attn``)."""
    block.norm_x = ops.LayerNorm(dim, eps=eps, elementwise_affine=True)
    block.audio_cross_attn = AudioCrossAttention(dim, num_heads, cfg.output_dim)


def block_audio(block: nn.Module, x: torch.Tensor, tokens: torch.Tensor, frames: int, backend: str,
                dtype: torch.dtype) -> torch.Tensor:
    """x += the block's audio cross-attention, in place (x float32 [B, L, D], L = frames x tokens
    per frame: the whole sequence or a chunk of whole frames; tokens [B, frames, N, C])."""
    return x.add_(block.audio_cross_attn(block.norm_x(x).to(dtype), tokens, frames, backend))
