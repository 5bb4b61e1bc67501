"""The Wan2.1 diffusion transformer, as used by SkyReels-V2 (T2V, I2V, DF), A2 and V3.

One readable module covers every switch of the family:

* text-to-video (16 input channels) and image-to-video (36 channels: latent + 4 mask +
  16 conditioning channels, plus CLIP image tokens in a parallel cross-attention branch;
  any number of image tokens, so several references can be passed);
* one timestep per sample ``t [B]`` or one per latent frame ``t [B, F]`` (diffusion forcing):
  the time embedding and the six modulation vectors are then computed per frame and applied
  per frame, never expanded to the whole token sequence;
* the fps embedding of SkyReels-V2-DF-1.3B;
* optional block-causal self-attention (``causal_block_size``), computed block by block
  without an L x L mask;
* latent segments beside ``x`` (SkyReels-V3 extension): more latent frames, patch-embedded
  on their own and appended to the token sequence, each segment with its own temporal RoPE
  start and its own timestep, and no output (:class:`LatentSegment`).

Parameter names are the official Wan names (``blocks.0.self_attn.q.weight`` ...), so an
official state dict loads as it is; ``dit_keys`` maps the diffusers and ComfyUI namings.
The residual stream, norms, modulation and RoPE run in float32; the matrix products run in
``compute_dtype`` (float32 on CPU, bf16 or fp16 on GPUs) with weights cast per layer.

Memory: a block updates the residual stream in place and, apart from it and the q, k, v of
self-attention, holds only :data:`TOKEN_CHUNK` tokens' worth of anything at a time (whole
latent frames: norms, modulation, projections, RoPE, attention outputs, cross-attention,
feed-forward).  Every token's arithmetic is the same as over the whole sequence.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...host import check_interrupt
from ..common import ops
from ..common.attention import attention
from . import audio_adapter
from .dit_config import WanDiTConfig

# Tokens a block works on at a time, in whole latent frames (at least one frame): everything
# but the residual stream and self-attention's q, k, v exists for one such chunk only.  16k
# tokens keep the matrix products large; one chunk covers a whole 480P 5-second video per frame
# group, 720P x 121 frames (+4 reference frames, 126k tokens) runs in 9 chunks of 4 frames.
TOKEN_CHUNK = 16384

# --------------------------------------------------------------------------- helpers


def sinusoidal_embedding(dim: int, t: torch.Tensor) -> torch.Tensor:
    """[N] timesteps -> [N, dim] float32; cos first, then sin; computed in float64."""
    half = dim // 2
    pos = t.to(torch.float64)
    freqs = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=t.device).div(half))
    angles = torch.outer(pos, freqs)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1).float()


def rope_axes(head_dim: int) -> Tuple[int, int, int]:
    """Channels of a head given to the (frame, height, width) axes."""
    hw = 2 * (head_dim // 6)
    return head_dim - 2 * hw, hw, hw


def _axis_angles(positions: torch.Tensor, axis_dim: int) -> torch.Tensor:
    """[n] positions -> [n, axis_dim/2] angles, float32 as in the official tables."""
    inv = 1.0 / torch.pow(10000.0, torch.arange(0, axis_dim, 2, dtype=torch.float32,
                                                device=positions.device).div(axis_dim))
    return torch.outer(positions.to(torch.float32), inv)


def rope_table(grid: Tuple[int, int, int], head_dim: int, device: torch.device,
               frame_offset: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """cos and sin, each [L, 1, head_dim/2], for a (frames, rows, cols) token grid."""
    f, h, w = grid
    df, dh, dw = rope_axes(head_dim)
    af = _axis_angles(torch.arange(frame_offset, frame_offset + f, device=device), df)
    ah = _axis_angles(torch.arange(h, device=device), dh)
    aw = _axis_angles(torch.arange(w, device=device), dw)
    ang = torch.cat([
        af[:, None, None, :].expand(f, h, w, -1),
        ah[None, :, None, :].expand(f, h, w, -1),
        aw[None, None, :, :].expand(f, h, w, -1),
    ], dim=-1).reshape(f * h * w, 1, -1)
    return torch.cos(ang), torch.sin(ang)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent channel pairs of x [B, L, H, d] (float32).

    Each pair (x0, x1) becomes (x0 cos - x1 sin, x0 sin + x1 cos): one complex product
    (one pass over x instead of six elementwise kernels and a stack)."""
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)).contiguous())
    return torch.view_as_real(pairs * torch.complex(cos, sin)).flatten(-2)


def rotate_into(out: torch.Tensor, x: torch.Tensor, freqs: torch.Tensor) -> None:
    """``out`` [B, T, H, d] (any dtype) = ``x`` [B, T, H*d] rotated by ``freqs`` [T, 1, d/2]
    (complex ``cos + i sin``), computed in float32 like :func:`apply_rope`.  A float32 ``x``
    is rotated in place (it is a temporary of the caller)."""
    pairs = torch.view_as_complex(x.float().unflatten(-1, (out.shape[2], -1, 2)))
    out.copy_(torch.view_as_real(pairs.mul_(freqs)).flatten(-2))


def layer_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Parameter-free LayerNorm in float32."""
    x = x.float()
    return F.layer_norm(x, (x.shape[-1],), eps=eps)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x [B, L, D] with per-frame shift/scale [B, Fe, 1, D] (Fe divides L): x (1 + scale) + shift."""
    B, L, D = x.shape
    fe = shift.shape[1]
    return torch.addcmul(shift, x.view(B, fe, L // fe, D), 1 + scale).view(B, L, D)


def gate(y: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    B, L, D = y.shape
    fe = g.shape[1]
    return (y.float().view(B, fe, L // fe, D) * g).view(B, L, D)


def add_gated(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """x + gate(y, g) in one pass, computed in float32 (x float32 [B, L, D], y in the compute
    dtype, g float32 [B, Fe, 1, D]); no float32 copy of y is made."""
    B, L, D = x.shape
    fe = g.shape[1]
    return torch.addcmul(x.view(B, fe, L // fe, D), y.view(B, fe, L // fe, D), g).view(B, L, D)


def add_gated_(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """:func:`add_gated` in place: x += y * g (x float32 [B, L, D], may be a token slice)."""
    B, L, D = x.shape
    fe = g.shape[1]
    x.view(B, fe, L // fe, D).addcmul_(y.view(B, fe, L // fe, D), g)
    return x


@dataclass(frozen=True)
class Span:
    """A chunk of the token sequence: whole latent frames."""

    tokens: slice      # its tokens
    frames: slice      # its latent frames (rows of per-frame modulation)
    keys: int          # self-attention sees keys [0, keys): all, or up to the end of its causal block


def token_spans(num_tokens: int, per_frame: int, causal_block_size: Optional[int] = None,
                chunk: Optional[int] = None) -> List[Span]:
    """Chunks of at most ``chunk`` (:data:`TOKEN_CHUNK`) tokens, or one frame, cut on frame
    boundaries and, with block-causal attention, on causal block boundaries."""
    frames = num_tokens // per_frame
    step = max(1, (chunk or TOKEN_CHUNK) // per_frame)
    block = causal_block_size or frames
    spans = []
    for b0 in range(0, frames, block):
        b1 = min(b0 + block, frames)
        keys = b1 * per_frame if causal_block_size else num_tokens
        for f0 in range(b0, b1, step):
            f1 = min(f0 + step, b1)
            spans.append(Span(slice(f0 * per_frame, f1 * per_frame), slice(f0, f1), keys))
    return spans


def at(m: torch.Tensor, span: Span) -> torch.Tensor:
    """The rows of a per-frame modulation [B, Fe, 1, D] for ``span`` (all of it when Fe = 1)."""
    return m if m.shape[1] == 1 else m[:, span.frames]


# --------------------------------------------------------------------------- attention


class SelfAttention(nn.Module):
    """Self-attention in two calls per token chunk: :meth:`project` writes q, k, v of the
    chunk into whole-sequence buffers, then :meth:`attend` gives the projected output of the
    chunk's queries (so no whole-sequence attention output exists)."""

    def __init__(self, dim: int, num_heads: int, qk_norm: bool, eps: float):
        super().__init__()
        self.num_heads = num_heads
        self.q = ops.Linear(dim, dim)
        self.k = ops.Linear(dim, dim)
        self.v = ops.Linear(dim, dim)
        self.o = ops.Linear(dim, dim)
        self.norm_q = ops.RMSNorm(dim, eps) if qk_norm else nn.Identity()
        self.norm_k = ops.RMSNorm(dim, eps) if qk_norm else nn.Identity()

    def project(self, h: torch.Tensor, freqs: torch.Tensor, q: torch.Tensor, k: torch.Tensor,
                v: torch.Tensor) -> None:
        """h [B, T, D] (compute dtype) -> q, k normed and rotated, v, written into the slices
        q, k, v [B, T, H, d] of the buffers."""
        rotate_into(q, self.norm_q(self.q(h)), freqs)
        rotate_into(k, self.norm_k(self.k(h)), freqs)
        v.copy_(self.v(h).view(v.shape))

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, span: Span, backend: str) -> torch.Tensor:
        """Output [B, T, D] of the queries of ``span`` (q, k, v [B, L, H, d])."""
        B, T = q.shape[0], span.tokens.stop - span.tokens.start
        out = attention(q[:, span.tokens].transpose(1, 2), k[:, :span.keys].transpose(1, 2),
                        v[:, :span.keys].transpose(1, 2), backend)
        return self.o(out.transpose(1, 2).reshape(B, T, -1))


class CrossAttention(SelfAttention):
    """Text cross-attention, plus a parallel image branch for image-to-video models."""

    def __init__(self, dim: int, num_heads: int, qk_norm: bool, eps: float, image: bool):
        super().__init__(dim, num_heads, qk_norm, eps)
        self.has_image = image
        if image:
            self.k_img = ops.Linear(dim, dim)
            self.v_img = ops.Linear(dim, dim)
            self.norm_k_img = ops.RMSNorm(dim, eps) if qk_norm else nn.Identity()

    def _heads(self, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        B, L, _ = t.shape
        return t.to(dtype).view(B, L, self.num_heads, -1).transpose(1, 2)

    def context(self, text: torch.Tensor, image: Optional[torch.Tensor], dtype: torch.dtype):
        """Keys and values of the text (and image) tokens, computed once per block."""
        kv = [self._heads(self.norm_k(self.k(text)), dtype), self._heads(self.v(text), dtype)]
        if self.has_image and image is not None:
            kv += [self._heads(self.norm_k_img(self.k_img(image)), dtype), self._heads(self.v_img(image), dtype)]
        return kv

    def forward(self, x: torch.Tensor, context: Sequence[torch.Tensor], backend: str) -> torch.Tensor:
        """x [B, T, D] (compute dtype), context from :meth:`context` -> [B, T, D]."""
        B, L, D = x.shape
        q = self._heads(self.norm_q(self.q(x)), x.dtype)
        out = attention(q, context[0], context[1], backend)
        if len(context) > 2:
            out = out + attention(q, context[2], context[3], backend)
        return self.o(out.transpose(1, 2).reshape(B, L, D))


# --------------------------------------------------------------------------- blocks


class WanBlock(nn.Module):
    def __init__(self, cfg: WanDiTConfig):
        super().__init__()
        dim = cfg.dim
        self.eps = cfg.eps
        self.self_attn = SelfAttention(dim, cfg.num_heads, cfg.qk_norm, cfg.eps)
        self.norm3 = ops.LayerNorm(dim, eps=cfg.eps, elementwise_affine=True) if cfg.cross_attn_norm else None
        self.cross_attn = CrossAttention(dim, cfg.num_heads, cfg.qk_norm, cfg.eps, image=bool(cfg.image_dim))
        self.ffn = nn.Sequential(ops.Linear(dim, cfg.ffn_dim), nn.GELU(approximate="tanh"), ops.Linear(cfg.ffn_dim, dim))
        self.modulation = nn.Parameter(torch.zeros(1, 6, dim))
        if cfg.audio is not None:  # A2V: norm_x + audio_cross_attn
            audio_adapter.add_block_layers(self, dim, cfg.num_heads, cfg.eps, cfg.audio)

    def forward(self, x: torch.Tensor, mod: torch.Tensor, text: torch.Tensor, image: Optional[torch.Tensor],
                freqs: torch.Tensor, grid, backend: str, causal_block_size: Optional[int], dtype: torch.dtype,
                audio: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x [B, L, D] float32, updated in place and returned; mod [B, Fe, 6, D] float32 (time +
        fps projection); freqs [L, 1, d/2] complex RoPE; audio: A2V audio tokens [B, F, N, C] of
        the latent frames.  Works on :func:`token_spans` chunks (see :data:`TOKEN_CHUNK`)."""
        B, L, D = x.shape
        m = self.modulation.float().to(mod.device).unsqueeze(1) + mod  # [B, Fe, 6, D]
        shift_sa, scale_sa, gate_sa, shift_ff, scale_ff, gate_ff = (m[:, :, i:i + 1] for i in range(6))
        spans = token_spans(L, grid[1] * grid[2], causal_block_size)

        # self-attention: q, k, v of every token first, then each chunk's queries
        attn = self.self_attn
        q, k, v = (torch.empty(B, L, attn.num_heads, D // attn.num_heads, dtype=dtype, device=x.device)
                   for _ in range(3))
        for s in spans:
            h = modulate(layer_norm(x[:, s.tokens], self.eps), at(shift_sa, s), at(scale_sa, s)).to(dtype)
            attn.project(h, freqs[s.tokens], q[:, s.tokens], k[:, s.tokens], v[:, s.tokens])
        for s in spans:
            add_gated_(x[:, s.tokens], attn.attend(q, k, v, s, backend), at(gate_sa, s))
        del q, k, v

        # cross-attention, audio, feed-forward: token by token, so chunk by chunk
        context = self.cross_attn.context(text, image, dtype)
        for s in spans:
            xs = x[:, s.tokens]
            h = (self.norm3(xs) if self.norm3 is not None else xs).to(dtype)
            xs.add_(self.cross_attn(h, context, backend))
            if audio is not None:
                audio_adapter.block_audio(self, xs, audio[:, s.frames], s.frames.stop - s.frames.start,
                                          backend, dtype)
            h = modulate(layer_norm(xs, self.eps), at(shift_ff, s), at(scale_ff, s)).to(dtype)
            add_gated_(xs, self.ffn(h), at(gate_ff, s))
        return x


class Head(nn.Module):
    def __init__(self, cfg: WanDiTConfig):
        super().__init__()
        self.eps = cfg.eps
        self.head = ops.Linear(cfg.dim, math.prod(cfg.patch_size) * cfg.out_dim)
        self.modulation = nn.Parameter(torch.zeros(1, 2, cfg.dim))

    def forward(self, x: torch.Tensor, e: torch.Tensor, spans: Sequence[Span]) -> torch.Tensor:
        """x [B, L, D] float32, e [B, Fe, D] float32 -> [B, T, prod(patch) * out] float32 for
        the T tokens of ``spans`` (in order), one chunk at a time."""
        m = self.modulation.float().to(e.device).unsqueeze(1) + e.unsqueeze(2)  # [B, Fe, 2, D]
        shift, scale = m[:, :, 0:1], m[:, :, 1:2]
        return torch.cat([self.head(modulate(layer_norm(x[:, s.tokens], self.eps), at(shift, s), at(scale, s)))
                          for s in spans], dim=1)


class ImageEmbedding(nn.Module):
    """CLIP tokens -> model width: LN, Linear, GELU, Linear, LN (official ``img_emb``)."""

    def __init__(self, in_dim: int, dim: int, pos_len: Optional[int]):
        super().__init__()
        self.proj = nn.Sequential(
            ops.LayerNorm(in_dim), ops.Linear(in_dim, in_dim), nn.GELU(),
            ops.Linear(in_dim, dim), ops.LayerNorm(dim))
        self.emb_pos = nn.Parameter(torch.zeros(1, pos_len, in_dim)) if pos_len else None

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        clip = clip.float()
        if self.emb_pos is not None:
            n = min(clip.shape[1], self.emb_pos.shape[1])
            clip = torch.cat([clip[:, :n] + self.emb_pos[:, :n].float().to(clip.device), clip[:, n:]], dim=1)
        return self.proj(clip)


# --------------------------------------------------------------------------- segments


@dataclass
class LatentSegment:
    """Latent frames that ride along with ``x`` as conditioning (SkyReels-V3 extension).

    The segment is patch-embedded on its own and its tokens follow those of ``x``; its
    frames sit at temporal RoPE positions ``rope_start ...`` (height and width positions as
    usual), are modulated with their own timestep ``t`` (0 = clean) and give no output.

    * V3 shot switching: the previous shot's context latents at ``rope_start=1024``, t = 0.
    * V3 single shot: the clean prefix at ``rope_start=0`` while ``x`` starts at position P
      (``rope_frame_offset``); the same as the official ``[prefix; noise]`` input, since
      attention depends on the positions, not on the token order.
    """

    latents: torch.Tensor       # [B, C, F, H, W], the same C, H, W as x
    rope_start: int = 0
    t: float = 0.0


# --------------------------------------------------------------------------- model


class WanDiT(nn.Module):
    """Wan2.1 / SkyReels DiT.  ``forward(x, t, context, clip_fea=None, y=None, fps=None)``.

    Args:
        x: latent [B, 16, F, H, W] (H, W even).
        t: timesteps [B] or per latent frame [B, F], in [0, 1000].
        context: text features [B, L, text_dim] (zero-padded rows are attended to, as in
            the official code).
        clip_fea: CLIP penultimate tokens [B, N, image_dim] for image-to-video models; N may
            be any number (257 per reference image).
        y: conditioning [B, in_dim - 16, F, H, W] concatenated after x (I2V: 4 mask + 16 latent).
        fps: index into the 2-row fps table of DF-1.3B (0 = 16 fps, 1 = any other fps):
            an int or a LongTensor [B].  Ignored by models without the fps embedding.
        causal_block_size: block-causal self-attention over latent frames; None uses the
            model's setting (``self.causal_block_size``, default full attention).
        cache: an optional step cache (TeaCache) that may skip the block stack.
        rope_frame_offset: temporal RoPE position of the first frame of ``x`` (default 0).
        segments: :class:`LatentSegment` s appended after ``x`` on the token axis.
        audio: talking-avatar (A2V) models only: wav2vec2 windows [B, Fv, 5, 12, 768] per video
            frame (Fv = 4 (F - 1) + 1); zeros for the audio-free guidance branch.

    Returns the velocity prediction [B, out_dim, F, H, W] in float32 (for ``x`` only).
    """

    def __init__(self, cfg: WanDiTConfig):
        super().__init__()
        cfg.validate()
        self.config = cfg
        D = cfg.dim
        self.patch_embedding = ops.Conv3d(cfg.in_dim, D, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.text_embedding = nn.Sequential(ops.Linear(cfg.text_dim, D), nn.GELU(approximate="tanh"), ops.Linear(D, D))
        self.time_embedding = nn.Sequential(ops.Linear(cfg.freq_dim, D), nn.SiLU(), ops.Linear(D, D))
        self.time_projection = nn.Sequential(nn.SiLU(), ops.Linear(D, 6 * D))
        if cfg.inject_sample_info:
            self.fps_embedding = ops.Embedding(2, D)
            self.fps_projection = nn.Sequential(ops.Linear(D, D), nn.SiLU(), ops.Linear(D, 6 * D))
        self.blocks = nn.ModuleList([WanBlock(cfg) for _ in range(cfg.num_layers)])
        self.head = Head(cfg)
        if cfg.image_dim:
            self.img_emb = ImageEmbedding(cfg.image_dim, D, cfg.image_pos_len)
        if cfg.audio is not None:
            self.audio_proj = audio_adapter.AudioProjModel(cfg.audio)

        # Run-time settings (not weights).
        self.compute_dtype: torch.dtype = torch.float32
        self.attention_backend: str = "sdpa"
        self.causal_block_size: Optional[int] = None
        # Optional object with before_block(i, block) / after_block(i, block): weight streaming.
        self.block_hooks = None

    # ------------------------------------------------------------------ pieces

    def key_aliases(self, name: str):
        """Other spellings of parameter ``name`` in files in circulation: the diffusers name
        (LoRAs made for diffusers' transformer find their layers through it)."""
        from .dit_names import official_to_diffusers

        return [official_to_diffusers(name)]

    @property
    def device(self) -> torch.device:
        return self.patch_embedding.weight.device

    def embed_time(self, t: torch.Tensor, batch: int, frames: int,
                   fps: Union[None, int, Sequence[int], torch.Tensor], device: torch.device):
        """-> e [B, Fe, D] and e0 [B, Fe, 6, D], float32; Fe = 1 or the number of frames."""
        D = self.config.dim
        t = torch.as_tensor(t, device=device)
        if t.dim() == 0:
            t = t.expand(batch)
        if t.dim() == 1:
            if t.shape[0] != batch:
                raise ValueError("t has %d timesteps for a batch of %d" % (t.shape[0], batch))
            fe = 1
        elif t.dim() == 2:
            if tuple(t.shape) != (batch, frames):
                raise ValueError("per-frame t must be [B, F] = [%d, %d], got %s" % (batch, frames, list(t.shape)))
            fe = frames
        else:
            raise ValueError("t must be [B] or [B, F], got shape %s" % list(t.shape))
        sin = sinusoidal_embedding(self.config.freq_dim, t.reshape(-1))
        e = self.time_embedding(sin)  # [B*Fe, D]
        e0 = self.time_projection(e).view(batch, fe, 6, D)
        e = e.view(batch, fe, D)
        if self.config.inject_sample_info:
            idx = torch.as_tensor(1 if fps is None else fps, dtype=torch.long, device=device).reshape(-1)
            if idx.numel() == 1:
                idx = idx.expand(batch)
            if idx.numel() != batch or bool(((idx < 0) | (idx > 1)).any()):
                raise ValueError("fps must be an index 0 (16 fps) or 1 (other fps) per sample")
            e0 = e0 + self.fps_projection(self.fps_embedding(idx)).view(batch, 1, 6, D)
        return e, e0

    def embed_context(self, context: torch.Tensor, clip_fea: Optional[torch.Tensor]):
        dt = self.compute_dtype
        text = self.text_embedding(context.to(self.device, dt))
        image = None
        if clip_fea is not None:
            if not self.config.image_dim:
                raise ValueError("this model has no image branch (text-to-video); do not pass clip_fea")
            if clip_fea.shape[-1] != self.config.image_dim:
                raise ValueError("clip_fea has width %d, the model expects %d"
                                 % (clip_fea.shape[-1], self.config.image_dim))
            image = self.img_emb(clip_fea.to(self.device)).to(dt)
        return text, image

    def embed_audio(self, audio: Optional[torch.Tensor], frames: int) -> Optional[torch.Tensor]:
        """A2V: per-video-frame wav2vec2 windows [B, Fv, 5, 12, 768] -> tokens [B, F, 32, 768]."""
        if self.config.audio is None:
            if audio is not None:
                raise ValueError("this model has no audio adapter; do not pass audio")
            return None
        if audio is None:
            raise ValueError("talking-avatar (A2V) models need audio windows (zeros for the audio-free branch)")
        tokens = self.audio_proj(audio, self.compute_dtype)
        if tokens.shape[1] != frames:
            raise ValueError("the audio covers %d latent frames, the latent has %d" % (tokens.shape[1], frames))
        return tokens

    def run_blocks(self, x, mod, text, image, freqs, grid, causal_block_size, audio=None):
        """The block stack over x [B, L, D] float32, which the blocks update in place."""
        hooks = self.block_hooks
        for i, block in enumerate(self.blocks):
            check_interrupt()
            if hooks is not None:
                hooks.before_block(i, block)
            x = block(x, mod, text, image, freqs, grid, self.attention_backend, causal_block_size, self.compute_dtype,
                      audio)
            if hooks is not None:
                hooks.after_block(i, block)
        return x

    def unpatchify(self, x: torch.Tensor, grid: Tuple[int, int, int]) -> torch.Tensor:
        B = x.shape[0]
        pt, ph, pw = self.config.patch_size
        c = self.config.out_dim
        f, h, w = grid
        x = x.view(B, f, h, w, pt, ph, pw, c)
        x = torch.einsum("bfhwpqrc->bcfphqwr", x)
        return x.reshape(B, c, f * pt, h * ph, w * pw)

    # ------------------------------------------------------------------ forward

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor,
                clip_fea: Optional[torch.Tensor] = None, y: Optional[torch.Tensor] = None,
                fps=None, *, causal_block_size: Optional[int] = None, cache=None,
                rope_frame_offset: int = 0, segments: Sequence[LatentSegment] = (),
                audio: Optional[torch.Tensor] = None) -> torch.Tensor:
        cfg = self.config
        dev = self.device
        if x.dim() != 5:
            raise ValueError("x must be [B, C, F, H, W], got shape %s" % list(x.shape))
        if y is not None:
            x = torch.cat([x.to(dev), y.to(dev, x.dtype)], dim=1)
        B, C, F_, H, W = x.shape
        if C != cfg.in_dim:
            hint = " (image-to-video models need y with %d channels)" % (cfg.in_dim - 16) if cfg.in_dim > C else ""
            raise ValueError("the model takes %d input channels, got %d%s" % (cfg.in_dim, C, hint))
        grid = self.patch_grid(x)
        if cfg.image_dim and clip_fea is None:
            raise ValueError("image-to-video models need clip_fea (CLIP image tokens)")

        x = self.embed_patches(x)  # [B, L, D] float32
        rope = rope_table(grid, cfg.head_dim, dev, rope_frame_offset)
        frames = grid[0]
        causal = causal_block_size if causal_block_size is not None else self.causal_block_size
        if causal is not None and (isinstance(causal, bool) or not isinstance(causal, int) or causal < 1):
            raise ValueError("causal_block_size must be None (full attention) or a whole number of latent frames "
                             "of at least 1, got %r" % (causal,))
        if segments:
            if causal:
                raise ValueError("block-causal attention does not combine with latent segments")
            x, t, rope, frames = self.append_segments(x, t, rope, grid, segments)
        e, e0 = self.embed_time(t, B, frames, fps, dev)
        text, image = self.embed_context(context, clip_fea)
        tokens = self.embed_audio(audio, grid[0])
        if tokens is not None and segments:
            raise ValueError("audio does not combine with latent segments")
        freqs = torch.complex(*rope)  # [L, 1, d/2], once for every block
        del rope

        if cache is not None:
            residual = cache.lookup(e, e0)
            if residual is not None:
                x = x + residual.to(x.device)
            else:
                x_in = x
                x = self.run_blocks(x.clone(), e0, text, image, freqs, grid, causal, tokens)  # blocks work in place
                cache.store(x - x_in)
                del x_in
        else:
            x = self.run_blocks(x, e0, text, image, freqs, grid, causal, tokens)

        out = self.head(x, e, token_spans(math.prod(grid), grid[1] * grid[2]))  # segment tokens give no output
        return self.unpatchify(out, grid).float()

    def embed_patches(self, z: torch.Tensor) -> torch.Tensor:
        """Latent [B, C, F, H, W] -> tokens [B, L, D] float32, contiguous (the blocks update it in place)."""
        z = self.patch_embedding(z.to(self.device, self.compute_dtype)).flatten(2).transpose(1, 2)
        return z.to(torch.float32, memory_format=torch.contiguous_format)

    def patch_grid(self, x: torch.Tensor) -> Tuple[int, int, int]:
        """(frames, rows, cols) of the token grid of a latent [B, C, F, H, W]."""
        pt, ph, pw = self.config.patch_size
        F_, H, W = x.shape[2:]
        if F_ % pt or H % ph or W % pw:
            raise ValueError("latent size F x H x W = %d x %d x %d must be divisible by the patch %s"
                             % (F_, H, W, list(self.config.patch_size)))
        return F_ // pt, H // ph, W // pw

    def append_segments(self, x: torch.Tensor, t, rope, grid, segments: Sequence[LatentSegment]):
        """Tokens, per-frame timesteps and RoPE of ``x`` followed by those of the segments.

        Returns (x [B, L + Ls, D], t [B, F + Fs], (cos, sin), frames F + Fs)."""
        B, dev = x.shape[0], x.device
        f = grid[0]
        t = torch.as_tensor(t, device=dev, dtype=torch.float32)
        t = t.reshape(B, -1) if t.dim() else t.reshape(1, 1).expand(B, 1)
        if t.shape[1] not in (1, f):
            raise ValueError("t must be [B] or [B, F] = [%d, %d], got %s" % (B, f, list(t.shape)))
        tokens, times, cos, sin = [x], [t.expand(B, f)], [rope[0]], [rope[1]]
        for seg in segments:
            z = seg.latents
            if z.dim() != 5 or z.shape[0] != B or z.shape[1] != self.config.in_dim:
                raise ValueError("a latent segment must be [%d, %d, F, H, W], got %s"
                                 % (B, self.config.in_dim, list(z.shape)))
            g = self.patch_grid(z)
            if g[1:] != grid[1:]:
                raise ValueError("a latent segment is %dx%d latents, x is %dx%d; they must match"
                                 % (z.shape[4], z.shape[3], grid[2] * self.config.patch_size[2],
                                    grid[1] * self.config.patch_size[1]))
            tokens.append(self.embed_patches(z))
            times.append(torch.full((B, g[0]), float(seg.t), device=dev))
            c, s = rope_table(g, self.config.head_dim, dev, int(seg.rope_start))
            cos.append(c)
            sin.append(s)
        frames = f + sum(tm.shape[1] for tm in times[1:])
        return torch.cat(tokens, 1), torch.cat(times, 1), (torch.cat(cos), torch.cat(sin)), frames
