"""The CogVideoX transformer as SkyReels-A1 uses it (CogVideoX-5B-I2V layout, 48 input channels,
a SigLIP face stream in place of the text).

One readable module:

* the patch embedding: a 2D patch conv per latent frame, the face stream
  ``text_proj(pose_proj(face tokens))`` (A1) or ``text_proj(text)`` (plain CogVideoX), and the
  joint positional table: the learned buffer at the sample size (face rows included; any other
  size raises, any other frame count falls back to the sin-cos table with zero face rows);
* the blocks: one LayerNorm with two modulations (video and face), joint attention over
  [face; video] with per-head LayerNorm on q and k and 3D RoPE on the video positions only,
  the feed-forward on the joint sequence, gated residuals;
* the output norm (shift before scale), the projection and the unpatchify.

Parameter names are the diffusers / official names (``transformer_blocks.0.attn1.to_q.weight``,
``patch_embed.pose_proj.0.weight`` ...), so an official state dict loads as it is.  The residual
streams, norms, modulation and RoPE run in float32; the matrix products run in
``compute_dtype`` with weights cast per layer (fp8, int8 and nf4 storage work through
``models.common.ops`` and ``memory.quant``).

The model follows :mod:`memory.streamable`: ``streamable_blocks()``, ``block_hooks`` and
``activation_bytes()`` give it the VRAM budget, block streaming, quantization and compile.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...host import check_interrupt
from ..common import ops
from ..common.attention import attention
from .config import CogVideoXConfig
from .positions import rope_table, sincos_table, timestep_embedding


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, H, L, d] rotated by the interleaved table cos/sin [L, d] (float32):
    x cos + rot(x) sin with rot(x)_{2m} = -x_{2m+1}, rot(x)_{2m+1} = x_{2m}."""
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)).contiguous())
    rot = torch.complex(cos[:, 0::2], sin[:, 0::2])
    return torch.view_as_real(pairs * rot).flatten(-2)


class LayerNormZero(nn.Module):
    """One LayerNorm and six modulation vectors for the video and the face stream."""

    def __init__(self, cond_dim: int, dim: int, eps: float):
        super().__init__()
        self.linear = ops.Linear(cond_dim, 6 * dim)
        self.norm = ops.LayerNorm(dim, eps=eps, elementwise_affine=True)

    def forward(self, video: torch.Tensor, face: torch.Tensor, temb: torch.Tensor):
        shift, scale, gate, f_shift, f_scale, f_gate = self.linear(F.silu(temb)).float().chunk(6, dim=1)
        video = torch.addcmul(shift[:, None], self.norm(video), 1 + scale[:, None])
        face = torch.addcmul(f_shift[:, None], self.norm(face), 1 + f_scale[:, None])
        return video, face, gate[:, None], f_gate[:, None]


class JointAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, head_dim: int, bias: bool):
        super().__init__()
        self.num_heads = num_heads
        self.to_q = ops.Linear(dim, dim, bias=bias)
        self.to_k = ops.Linear(dim, dim, bias=bias)
        self.to_v = ops.Linear(dim, dim, bias=bias)
        self.norm_q = ops.LayerNorm(head_dim, eps=1e-6, elementwise_affine=True)
        self.norm_k = ops.LayerNorm(head_dim, eps=1e-6, elementwise_affine=True)
        self.to_out = nn.ModuleList([ops.Linear(dim, dim, bias=True)])

    def forward(self, x: torch.Tensor, context_len: int, rope: Optional[Tuple[torch.Tensor, torch.Tensor]],
                backend: str) -> torch.Tensor:
        """x [B, Lc + Lv, D] in the compute dtype -> the same shape."""
        B, L, D = x.shape
        n = self.num_heads
        dt = x.dtype

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, L, n, -1).transpose(1, 2)  # [B, n, L, d]

        q = self.norm_q(heads(self.to_q(x)))
        k = self.norm_k(heads(self.to_k(x)))
        v = heads(self.to_v(x)).to(dt)
        if rope is not None:  # q and k are fresh float32 tensors: rotate the video rows in place
            cos, sin = rope
            q[:, :, context_len:] = apply_rope(q[:, :, context_len:], cos, sin)
            k[:, :, context_len:] = apply_rope(k[:, :, context_len:], cos, sin)
        out = attention(q.to(dt), k.to(dt), v, backend)
        return self.to_out[0](out.transpose(1, 2).reshape(B, L, D))


class FeedForward(nn.Module):
    """Linear(D, 4D) -> tanh-GELU -> Linear(4D, D), diffusers names (``net.0.proj``, ``net.2``)."""

    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.ModuleList([_GeluProj(dim, 4 * dim), nn.Identity(), ops.Linear(4 * dim, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[2](self.net[0](x))


class _GeluProj(nn.Module):
    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = ops.Linear(dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x), approximate="tanh")


class CogVideoXBlock(nn.Module):
    def __init__(self, cfg: CogVideoXConfig):
        super().__init__()
        D = cfg.dim
        self.norm1 = LayerNormZero(cfg.time_embed_dim, D, cfg.norm_eps)
        self.attn1 = JointAttention(D, cfg.num_heads, cfg.head_dim, cfg.attention_bias)
        self.norm2 = LayerNormZero(cfg.time_embed_dim, D, cfg.norm_eps)
        self.ff = FeedForward(D)

    def forward(self, video: torch.Tensor, face: torch.Tensor, temb: torch.Tensor, rope, backend: str,
                dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
        """video [B, Lv, D], face [B, Lc, D] float32; temb [B, T] in the compute dtype."""
        lc = face.shape[1]
        nv, nf, gate, f_gate = self.norm1(video, face, temb)
        out = self.attn1(torch.cat([nf, nv], dim=1).to(dtype), lc, rope, backend).float()
        video = torch.addcmul(video, gate, out[:, lc:])
        face = torch.addcmul(face, f_gate, out[:, :lc])
        del out
        nv, nf, gate, f_gate = self.norm2(video, face, temb)
        out = self.ff(torch.cat([nf, nv], dim=1).to(dtype)).float()
        video = torch.addcmul(video, gate, out[:, lc:])
        face = torch.addcmul(face, f_gate, out[:, :lc])
        return video, face


class PatchEmbed(nn.Module):
    def __init__(self, cfg: CogVideoXConfig):
        super().__init__()
        D = cfg.dim
        p = cfg.patch_size
        self.proj = ops.Conv2d(cfg.in_channels, D, kernel_size=p, stride=p, bias=True)
        self.text_proj = ops.Linear(cfg.text_embed_dim, D)
        if cfg.face_embed_dim:
            f = cfg.face_embed_dim
            self.pose_proj = nn.Sequential(ops.Linear(f, 3 * f), nn.SiLU(), ops.Linear(3 * f, cfg.text_embed_dim))
        else:
            self.pose_proj = None
        if cfg.use_learned_positional_embeddings:
            rows = cfg.context_tokens + cfg.sample_latent_frames * (cfg.sample_height // p) * (cfg.sample_width // p)
            self.register_buffer("pos_embedding", torch.zeros(1, rows, D))
        else:
            self.pos_embedding = None


class CogVideoXTransformer(nn.Module):
    """``forward(x, t, context)``.

    Args:
        x: latent [B, F, C, h, w] (frames before channels, the pipelines' layout); for A1,
            C = 48 = [noisy 16 | control 16 | image 16].
        t: timesteps [B] (or one number) in [0, 1000).
        context: [B, face_tokens, face_embed_dim] SigLIP tokens (A1), or [B, L, text_embed_dim]
            text features for plain CogVideoX.

    Returns the v-prediction [B, F, out_channels, h, w] in float32.
    """

    def __init__(self, cfg: CogVideoXConfig):
        super().__init__()
        cfg.validate()
        self.config = cfg
        D = cfg.dim
        self.patch_embed = PatchEmbed(cfg)
        self.time_embedding = nn.Module()
        self.time_embedding.linear_1 = ops.Linear(D, cfg.time_embed_dim)
        self.time_embedding.linear_2 = ops.Linear(cfg.time_embed_dim, cfg.time_embed_dim)
        self.transformer_blocks = nn.ModuleList([CogVideoXBlock(cfg) for _ in range(cfg.num_layers)])
        self.norm_final = ops.LayerNorm(D, eps=cfg.norm_eps, elementwise_affine=True)
        self.norm_out = nn.Module()
        self.norm_out.linear = ops.Linear(cfg.time_embed_dim, 2 * D)
        self.norm_out.norm = ops.LayerNorm(D, eps=cfg.norm_eps, elementwise_affine=True)
        self.proj_out = ops.Linear(D, cfg.patch_size * cfg.patch_size * cfg.out_channels)

        # Run-time settings (not weights).
        self.compute_dtype: torch.dtype = torch.float32
        self.attention_backend: str = "sdpa"
        self.block_hooks = None
        self._rope_cache: Dict[tuple, Tuple[torch.Tensor, torch.Tensor]] = {}

    # ------------------------------------------------------------------ memory protocol

    def streamable_blocks(self) -> Sequence[nn.Module]:
        return self.transformer_blocks

    def activation_bytes(self, latent_shape: Sequence[int], batch: int = 1,
                         compute_dtype: torch.dtype = torch.bfloat16, teacache: bool = False) -> int:
        """Peak activation bytes of one forward pass for a latent (frames, height, width).

        At the widest point of a block: the float32 video and face streams and their
        normalized copies, plus the larger of the attention stage (q, k, v in float32 for the
        norms and RoPE, their compute-dtype copies, the output) and the feed-forward stage
        (the 4D hidden layer before and after GELU); plus the RoPE table and the positional
        table.  Attention itself is assumed to run in O(L) memory.  A 10 % margin covers slack.
        """
        if len(latent_shape) != 3:
            raise ValueError("latent_shape must be (frames, height, width), got %s" % (list(latent_shape),))
        cfg = self.config
        f, h, w = (int(v) for v in latent_shape)
        p = cfg.patch_size
        tokens = f * max(h // p, 1) * max(w // p, 1) + cfg.context_tokens
        d = cfg.dim
        c = torch.empty((), dtype=compute_dtype).element_size()
        stream = 4 * d * 2 + 4 * d                 # residual streams, normalized copy
        attn = 3 * 4 * d + 3 * c * d + c * d + 4 * d
        ff = c * d + 2 * c * 4 * d + 4 * d
        per_token = stream + max(attn, ff)
        total = tokens * per_token * batch
        total += tokens * cfg.head_dim * 4 * 2     # RoPE cos + sin
        total += tokens * d * 4                    # positional table
        return int(total * 1.1)

    @property
    def device(self) -> torch.device:
        return self.proj_out.weight.device

    # ------------------------------------------------------------------ pieces

    def positional_table(self, frames: int, grid_h: int, grid_w: int, device) -> Optional[torch.Tensor]:
        """The table added to [face; video] tokens: [1, Lc + Lv, D] float32, or None."""
        cfg = self.config
        if not cfg.uses_positional_table:
            return None
        p = cfg.patch_size
        h, w = grid_h * p, grid_w * p
        if cfg.use_learned_positional_embeddings and (h, w) != (cfg.sample_height, cfg.sample_width):
            raise ValueError(
                "this model has a learned positional table for a %dx%d video (width x height) and runs only at "
                "that size; got %dx%d" % (cfg.sample_width * 8, cfg.sample_height * 8, w * 8, h * 8))
        pixel_frames = (frames - 1) * cfg.temporal_compression_ratio + 1
        if cfg.use_learned_positional_embeddings and pixel_frames == cfg.sample_frames:
            return self.patch_embed.pos_embedding.float().to(device)
        table = sincos_table(cfg.dim, frames, grid_h, grid_w, cfg.spatial_interpolation_scale,
                             cfg.temporal_interpolation_scale)
        return torch.cat([torch.zeros(cfg.context_tokens, cfg.dim), table]).unsqueeze(0).to(device)

    def rope(self, frames: int, grid_h: int, grid_w: int, device) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        if not self.config.use_rotary_positional_embeddings:
            return None
        key = (frames, grid_h, grid_w, str(device))
        if key not in self._rope_cache:
            cos, sin = rope_table(frames, grid_h, grid_w, self.config.head_dim, self.config.rope_base_grid)
            self._rope_cache = {key: (cos.to(device), sin.to(device))}
        return self._rope_cache[key]

    def embed_time(self, t: torch.Tensor, batch: int, device) -> torch.Tensor:
        t = torch.as_tensor(t, device=device).reshape(-1)
        if t.numel() == 1:
            t = t.expand(batch)
        if t.numel() != batch:
            raise ValueError("t has %d timesteps for a batch of %d" % (t.numel(), batch))
        cfg = self.config
        s = timestep_embedding(t, cfg.dim, cfg.flip_sin_to_cos, cfg.freq_shift).to(self.compute_dtype)
        return self.time_embedding.linear_2(F.silu(self.time_embedding.linear_1(s)))

    def embed_context(self, context: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        pe = self.patch_embed
        if context.dim() != 3 or context.shape[-1] != cfg.context_dim:
            raise ValueError("the model takes %s tokens of width %d, got shape %s"
                             % ("face" if cfg.face_embed_dim else "text", cfg.context_dim, list(context.shape)))
        if cfg.uses_positional_table and context.shape[1] != cfg.context_tokens:
            raise ValueError("the model takes exactly %d %s tokens, got %d"
                             % (cfg.context_tokens, "face" if cfg.face_embed_dim else "text", context.shape[1]))
        x = context.to(self.device, self.compute_dtype)
        if pe.pose_proj is not None:
            x = pe.pose_proj(x)
        return pe.text_proj(x).float()

    def embed_video(self, x: torch.Tensor) -> torch.Tensor:
        B, Fr, C, H, W = x.shape
        v = self.patch_embed.proj(x.reshape(B * Fr, C, H, W).to(self.device, self.compute_dtype))
        return v.flatten(2).transpose(1, 2).reshape(B, -1, v.shape[1]).float()  # [B, F*h*w, D]

    def run_blocks(self, video, face, temb, rope):
        hooks = self.block_hooks
        for i, block in enumerate(self.transformer_blocks):
            check_interrupt()
            if hooks is not None:
                hooks.before_block(i, block)
            video, face = block(video, face, temb, rope, self.attention_backend, self.compute_dtype)
            if hooks is not None:
                hooks.after_block(i, block)
        return video, face

    def unpatchify(self, x: torch.Tensor, frames: int, grid_h: int, grid_w: int) -> torch.Tensor:
        B = x.shape[0]
        p = self.config.patch_size
        c = self.config.out_channels
        x = x.reshape(B, frames, grid_h, grid_w, c, p, p)
        return x.permute(0, 1, 4, 2, 5, 3, 6).reshape(B, frames, c, grid_h * p, grid_w * p)

    # ------------------------------------------------------------------ forward

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if x.dim() != 5:
            raise ValueError("x must be [B, frames, channels, h, w], got shape %s" % list(x.shape))
        B, Fr, C, H, W = x.shape
        if C != cfg.in_channels:
            raise ValueError("the model takes %d input channels, got %d" % (cfg.in_channels, C))
        p = cfg.patch_size
        if H % p or W % p:
            raise ValueError("latent size %dx%d must be divisible by the patch %d" % (H, W, p))
        gh, gw = H // p, W // p
        dev = self.device

        temb = self.embed_time(t, B, dev)
        face = self.embed_context(context)
        video = self.embed_video(x)
        pos = self.positional_table(Fr, gh, gw, dev)
        if pos is not None:
            lc = face.shape[1]
            face = face + pos[:, :lc]
            video = video + pos[:, lc:]
        video, face = self.run_blocks(video, face, temb, self.rope(Fr, gh, gw, dev))

        video = self.norm_final(video)
        shift, scale = self.norm_out.linear(F.silu(temb)).float().chunk(2, dim=1)
        video = torch.addcmul(shift[:, None], self.norm_out.norm(video), 1 + scale[:, None])
        out = self.proj_out(video.to(self.compute_dtype)).float()
        return self.unpatchify(out, Fr, gh, gw)
