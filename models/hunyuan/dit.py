"""The HunyuanVideo MMDiT, as used by SkyReels-V1 (text-to-video and image-to-video).

One readable module, in the order the forward pass runs:

* patchify: a Conv3d with kernel = stride = patch (1, 2, 2), tokens in (frame, row, column)
  order; image-to-video models (32 channels) take ``cat([noisy latent, image latent])``;
* the conditioning vector ``vec`` = MLP(timestep) + MLP(embedded guidance) + MLP(CLIP pooled);
* the token refiner: the Llama states go through two self-attention blocks gated by the
  timestep and the masked mean of the text (never the guidance);
* dual-stream blocks: image and text tokens with their own weights, one joint attention over
  ``[image; text]``;
* single-stream blocks over ``[image; text]``: one Linear gives q, k, v and the MLP input;
* the final layer and the fold back to ``[B, 16, F, H, W]``.

3D RoPE (axes t, h, w; theta 256; adjacent channel pairs) rotates the image q and k only.
Padded text never reaches a valid token: the text is cut to its valid rows, and when the
rows of a batch have different lengths every row attends to its own first ``N + n`` keys
(``attention(..., key_lengths=...)``), which is the official count-based key mask.

Parameter names are the original HunyuanVideo names (Tencent, Kijai and Comfy-Org files:
``double_blocks.0.img_attn_qkv.weight`` ...), with fused q/k/v; ``dit_keys`` maps the diffusers
naming.  The residual streams, norms, modulation and RoPE run in float32, the matrix products
in ``compute_dtype`` with weights cast one layer at a time (fp8 storage works as it is).
The memory machinery sees the blocks through :mod:`memory.streamable`: double-stream blocks,
then single-stream blocks.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...host import check_interrupt
from ..common import ops
from ..common.attention import attention
from ..wan.dit import add_gated, apply_rope, layer_norm, modulate
from .dit_config import HunyuanDiTConfig

FREQ_DIM = 256

# --------------------------------------------------------------------------- helpers


def timestep_embedding(t: torch.Tensor, dim: int = FREQ_DIM, max_period: float = 10000.0) -> torch.Tensor:
    """[N] values -> [N, dim] float32 sinusoids, cosine half first; computed in float32 like
    the reference (the guidance, ×1000, goes through the same embedding)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float().reshape(-1, 1) * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def rope_table(grid: Tuple[int, int, int], axes: Sequence[int], theta: float,
               device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """cos and sin [N, 1, head_dim/2] for a (frames, rows, cols) token grid: per axis the
    angle is position · theta^(-2k/d_axis), axes concatenated in the order t, h, w."""
    parts = []
    for axis, (size, d) in enumerate(zip(grid, axes)):
        freqs = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64, device=device) / d)
        ang = torch.outer(torch.arange(size, dtype=torch.float64, device=device), freqs)  # [size, d/2]
        shape = [1, 1, 1, d // 2]
        shape[axis] = size
        parts.append(ang.view(shape).expand(*grid, d // 2))
    ang = torch.cat(parts, dim=-1).reshape(math.prod(grid), 1, -1)
    return torch.cos(ang).float(), torch.sin(ang).float()


def _chunks(mod: torch.Tensor, n: int) -> List[torch.Tensor]:
    """[B, n·D] modulation -> n tensors [B, 1, 1, D] (float32), the per-frame layout of
    ``modulate`` / ``add_gated`` with one frame group."""
    return list(mod.float()[:, None, None, :].chunk(n, dim=-1))


def _split_heads(t: torch.Tensor, parts: int, heads: int) -> List[torch.Tensor]:
    B, L, _ = t.shape
    return list(t.view(B, L, parts, heads, -1).unbind(2))


class MLP(nn.Module):
    """fc1 -> activation -> fc2 (``img_mlp``, ``txt_mlp``, the refiner's ``mlp``)."""

    def __init__(self, dim: int, hidden: int, act: nn.Module):
        super().__init__()
        self.fc1 = ops.Linear(dim, hidden)
        self.act = act
        self.fc2 = ops.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Modulation(nn.Module):
    """``*_mod.linear`` / ``modulation.linear``: Linear(D, n·D) applied to SiLU(vec)."""

    def __init__(self, dim: int, n: int):
        super().__init__()
        self.linear = ops.Linear(dim, n * dim)

    def forward(self, vec_act: torch.Tensor, n: int, dtype: torch.dtype) -> List[torch.Tensor]:
        return _chunks(self.linear(vec_act.to(dtype)), n)


def _embedder(in_dim: int, dim: int) -> nn.Sequential:
    """``time_in.mlp`` / ``guidance_in.mlp`` / ``txt_in.t_embedder.mlp``: Linear, SiLU, Linear."""
    return nn.Sequential(ops.Linear(in_dim, dim), nn.SiLU(), ops.Linear(dim, dim))


class MLPEmbedder(nn.Module):
    """``vector_in``: in_layer, SiLU, out_layer."""

    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.in_layer = ops.Linear(in_dim, dim)
        self.out_layer = ops.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_layer(F.silu(self.in_layer(x)))


class TextProjection(nn.Module):
    """``txt_in.c_embedder``: linear_1, SiLU, linear_2."""

    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.linear_1 = ops.Linear(in_dim, dim)
        self.linear_2 = ops.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


# --------------------------------------------------------------------------- token refiner


class RefinerBlock(nn.Module):
    def __init__(self, cfg: HunyuanDiTConfig):
        super().__init__()
        D = cfg.hidden_size
        self.heads = cfg.num_heads
        self.norm1 = ops.LayerNorm(D, eps=cfg.eps, elementwise_affine=True)
        self.self_attn_qkv = ops.Linear(D, 3 * D, bias=cfg.qkv_bias)
        self.self_attn_proj = ops.Linear(D, D)
        self.norm2 = ops.LayerNorm(D, eps=cfg.eps, elementwise_affine=True)
        self.mlp = MLP(D, cfg.mlp_hidden, nn.SiLU())
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), ops.Linear(D, 2 * D))

    def forward(self, u: torch.Tensor, c: torch.Tensor, lengths, backend: str, dtype: torch.dtype) -> torch.Tensor:
        gate_attn, gate_mlp = _chunks(self.adaLN_modulation(c.to(dtype)), 2)
        B, L, D = u.shape
        q, k, v = _split_heads(self.self_attn_qkv(self.norm1(u).to(dtype)), 3, self.heads)
        out = attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), backend, lengths)
        u = add_gated(u, self.self_attn_proj(out.transpose(1, 2).reshape(B, L, D)), gate_attn)
        return add_gated(u, self.mlp(self.norm2(u).to(dtype)), gate_mlp)


class TokenRefiner(nn.Module):
    """``txt_in``: Llama states -> model width, refined by two self-attention blocks."""

    def __init__(self, cfg: HunyuanDiTConfig):
        super().__init__()
        D = cfg.hidden_size
        self.input_embedder = ops.Linear(cfg.text_dim, D)
        self.t_embedder = nn.Module()
        self.t_embedder.mlp = _embedder(FREQ_DIM, D)
        self.c_embedder = TextProjection(cfg.text_dim, D)
        self.individual_token_refiner = nn.Module()
        self.individual_token_refiner.blocks = nn.ModuleList([RefinerBlock(cfg) for _ in range(cfg.depth_refiner)])

    def forward(self, text: torch.Tensor, t_freq: torch.Tensor, valid: Sequence[int], lengths,
                backend: str, dtype: torch.dtype) -> torch.Tensor:
        """text [B, L, text_dim]; ``valid`` rows per sample (a prefix); -> [B, L, D] float32."""
        B, L, _ = text.shape
        mask = (torch.arange(L, device=text.device)[None] < torch.tensor(valid, device=text.device)[:, None])
        mean = (text.float() * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        c = self.t_embedder.mlp(t_freq.to(dtype)).float() + self.c_embedder(mean.to(dtype)).float()
        u = self.input_embedder(text.to(dtype)).float()
        for block in self.individual_token_refiner.blocks:
            u = block(u, c, lengths, backend, dtype)
        return u


# --------------------------------------------------------------------------- blocks


class DoubleStreamBlock(nn.Module):
    """Image and text streams, each with its own weights, joined in one attention."""

    def __init__(self, cfg: HunyuanDiTConfig):
        super().__init__()
        D, M = cfg.hidden_size, cfg.mlp_hidden
        self.heads, self.eps = cfg.num_heads, cfg.eps
        for s in ("img", "txt"):
            setattr(self, s + "_mod", Modulation(D, 6))
            setattr(self, s + "_attn_qkv", ops.Linear(D, 3 * D, bias=cfg.qkv_bias))
            setattr(self, s + "_attn_q_norm", ops.RMSNorm(cfg.head_dim, eps=cfg.eps))
            setattr(self, s + "_attn_k_norm", ops.RMSNorm(cfg.head_dim, eps=cfg.eps))
            setattr(self, s + "_attn_proj", ops.Linear(D, D))
            setattr(self, s + "_mlp", MLP(D, M, nn.GELU(approximate="tanh")))

    def _qkv(self, stream: str, x: torch.Tensor, shift, scale, rope, dtype):
        a = modulate(layer_norm(x, self.eps), shift, scale).to(dtype)
        q, k, v = _split_heads(getattr(self, stream + "_attn_qkv")(a), 3, self.heads)
        q = getattr(self, stream + "_attn_q_norm")(q)
        k = getattr(self, stream + "_attn_k_norm")(k)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        return q.to(dtype), k.to(dtype), v

    def forward(self, img: torch.Tensor, txt: torch.Tensor, vec_act: torch.Tensor, rope, lengths,
                backend: str, dtype: torch.dtype):
        B, N, D = img.shape
        i_sh1, i_sc1, i_g1, i_sh2, i_sc2, i_g2 = self.img_mod(vec_act, 6, dtype)
        t_sh1, t_sc1, t_g1, t_sh2, t_sc2, t_g2 = self.txt_mod(vec_act, 6, dtype)
        iq, ik, iv = self._qkv("img", img, i_sh1, i_sc1, rope, dtype)
        tq, tk, tv = self._qkv("txt", txt, t_sh1, t_sc1, None, dtype)
        q, k, v = (torch.cat(p, dim=1).transpose(1, 2) for p in ((iq, tq), (ik, tk), (iv, tv)))
        del iq, ik, iv, tq, tk, tv
        out = attention(q, k, v, backend, lengths).transpose(1, 2).reshape(B, -1, D)
        del q, k, v
        img = add_gated(img, self.img_attn_proj(out[:, :N]), i_g1)
        txt = add_gated(txt, self.txt_attn_proj(out[:, N:]), t_g1)
        del out
        img = add_gated(img, self.img_mlp(modulate(layer_norm(img, self.eps), i_sh2, i_sc2).to(dtype)), i_g2)
        txt = add_gated(txt, self.txt_mlp(modulate(layer_norm(txt, self.eps), t_sh2, t_sc2).to(dtype)), t_g2)
        return img, txt


class SingleStreamBlock(nn.Module):
    """One stream over [image; text]: ``linear1`` gives q, k, v and the MLP input (D, D, D, 4D);
    ``linear2`` maps [attention, GELU(MLP input)] back to D.

    With ordinary weights the two halves are computed one after the other from slices of the
    same weights (attention first, then the MLP), so the 7D-wide and 5D-wide intermediate
    tensors of the textbook formulation never exist; quantised layers and layers carrying a LoRA
    applied on the fly take the textbook path.
    """

    def __init__(self, cfg: HunyuanDiTConfig):
        super().__init__()
        D, M = cfg.hidden_size, cfg.mlp_hidden
        self.heads, self.eps, self.dim = cfg.num_heads, cfg.eps, D
        self.linear1 = ops.Linear(D, 3 * D + M, bias=cfg.qkv_bias)
        self.linear2 = ops.Linear(D + M, D)
        self.q_norm = ops.RMSNorm(cfg.head_dim, eps=cfg.eps)
        self.k_norm = ops.RMSNorm(cfg.head_dim, eps=cfg.eps)
        self.modulation = Modulation(D, 3)

    def _attend(self, qkv: torch.Tensor, n_img: int, rope, lengths, backend: str, dtype: torch.dtype):
        B, S, _ = qkv.shape
        q, k, v = _split_heads(qkv, 3, self.heads)
        q, k = self.q_norm(q), self.k_norm(k)
        q[:, :n_img] = apply_rope(q[:, :n_img], *rope)
        k[:, :n_img] = apply_rope(k[:, :n_img], *rope)
        out = attention(q.to(dtype).transpose(1, 2), k.to(dtype).transpose(1, 2), v.transpose(1, 2), backend, lengths)
        return out.transpose(1, 2).reshape(B, S, self.dim)

    def forward(self, x: torch.Tensor, vec_act: torch.Tensor, n_img: int, rope, lengths,
                backend: str, dtype: torch.dtype) -> torch.Tensor:
        shift, scale, g = self.modulation(vec_act, 3, dtype)
        a = modulate(layer_norm(x, self.eps), shift, scale).to(dtype)
        D = self.dim
        if all(isinstance(lin, ops.CastWeights) and lin._modules.get("lora") is None
               for lin in (self.linear1, self.linear2)):
            w1, b1 = self.linear1.cast_params(a)
            w2, b2 = self.linear2.cast_params(a)
            attn = self._attend(F.linear(a, w1[:3 * D], None if b1 is None else b1[:3 * D]), n_img, rope,
                                lengths, backend, dtype)
            out = F.linear(attn, w2[:, :D], b2)
            del attn
            h = F.gelu(F.linear(a, w1[3 * D:], None if b1 is None else b1[3 * D:]), approximate="tanh")
            out = out + F.linear(h, w2[:, D:])
            del h, w1, w2
        else:  # quantised layers
            lin = self.linear1(a)
            attn = self._attend(lin[..., :3 * D], n_img, rope, lengths, backend, dtype)
            out = self.linear2(torch.cat([attn, F.gelu(lin[..., 3 * D:], approximate="tanh")], dim=-1))
        return add_gated(x, out, g)


class FinalLayer(nn.Module):
    def __init__(self, cfg: HunyuanDiTConfig):
        super().__init__()
        D = cfg.hidden_size
        self.eps = cfg.eps
        self.linear = ops.Linear(D, math.prod(cfg.patch_size) * cfg.out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), ops.Linear(D, 2 * D))

    def forward(self, x: torch.Tensor, vec: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        shift, scale = _chunks(self.adaLN_modulation(vec.to(dtype)), 2)  # original order: shift first
        return self.linear(modulate(layer_norm(x, self.eps), shift, scale).to(dtype)).float()


# --------------------------------------------------------------------------- model


class HunyuanDiT(nn.Module):
    """``forward(x, timestep, text, pooled, guidance, text_mask=None, image_latents=None)``.

    Args:
        x: noisy latent [B, 16, F, H, W] (H, W even), scaled (VAE latent × 0.476986).
        timestep: [B] in [0, 1000] = 1000·sigma, a float (not rounded).
        text: Llama hidden states [B, L, text_dim].
        pooled: CLIP-L pooled text [B, pooled_dim].
        guidance: embedded guidance [B] in the diffusers convention, i.e. the scale × 1000
            (SkyReels default 1.0 -> 1000.0).
        text_mask: [B, L], 1 on the valid rows, which must be a prefix (right padding); None
            = every row valid.
        image_latents: image-to-video models: [B, 16, F, H, W], the image latent (scaled) on
            frame 0 and zeros after; concatenated after ``x``.
        cache: an optional step cache (TeaCache) that may skip the block stack.

    Returns the velocity prediction [B, 16, F, H, W] in float32.
    """

    def __init__(self, cfg: HunyuanDiTConfig):
        super().__init__()
        cfg.validate()
        self.config = cfg
        D = cfg.hidden_size
        self.img_in = nn.Module()
        self.img_in.proj = ops.Conv3d(cfg.in_channels, D, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.txt_in = TokenRefiner(cfg)
        self.time_in = nn.Module()
        self.time_in.mlp = _embedder(FREQ_DIM, D)
        if cfg.guidance_embed:
            self.guidance_in = nn.Module()
            self.guidance_in.mlp = _embedder(FREQ_DIM, D)
        self.vector_in = MLPEmbedder(cfg.pooled_dim, D)
        self.double_blocks = nn.ModuleList([DoubleStreamBlock(cfg) for _ in range(cfg.depth)])
        self.single_blocks = nn.ModuleList([SingleStreamBlock(cfg) for _ in range(cfg.depth_single_blocks)])
        self.final_layer = FinalLayer(cfg)

        # Run-time settings (not weights).
        self.compute_dtype: torch.dtype = torch.float32
        self.attention_backend: str = "sdpa"
        self.block_hooks = None  # memory.streamable protocol: before_block / after_block

    # ------------------------------------------------------------------ other spellings

    def key_aliases(self, name: str):
        """Other spellings of parameter ``name`` in files in circulation (LoRAs find their layers
        through them): ComfyUI's in-memory name, and the diffusers name.  Where diffusers splits
        a fused weight (q/k/v of ``*_attn_qkv``; q/k/v/MLP input of the single blocks'
        ``linear1``) each part is a :class:`~models.lora.targets.RowSlice` of our rows; the final
        modulation, whose halves diffusers swaps, is two slices of the one diffusers tensor."""
        from ..lora.targets import RowSlice
        from . import dit_keys

        out = [dit_keys.original_to_comfy(name)]
        parts = dit_keys.original_to_diffusers(name)
        D = self.config.hidden_size
        if len(parts) > 1:
            start = 0
            for i, part in enumerate(parts):  # q, k, v (D rows each), then the MLP input
                n = D if i < 3 else self.config.mlp_hidden
                out.append(RowSlice(part, start, start + n))
                start += n
        elif dit_keys.is_swapped(name):
            out += [RowSlice(parts[0], 0, D, src_start=D, src_rows=2 * D), RowSlice(parts[0], D, 2 * D, 0, 2 * D)]
        else:
            out.append(parts[0])
        return out

    # ------------------------------------------------------------------ memory protocol

    def streamable_blocks(self) -> List[nn.Module]:
        return list(self.double_blocks) + list(self.single_blocks)

    def activation_bytes(self, latent_shape: Sequence[int], batch: int = 1,
                         compute_dtype: torch.dtype = torch.bfloat16, teacache: bool = False,
                         text_len: int = 256) -> int:
        """Estimated peak activation bytes of one forward pass for a latent (F, H, W): the
        float32 residual stream (and the block input kept for the step cache), plus the wider
        of the attention stage (modulated input, q/k/v, q/k normalised in float32 and cast,
        the output) and the MLP stage (input, the hidden layer before and after GELU), plus
        the RoPE table and the TeaCache residuals.  Attention is assumed to run in O(L)
        memory (flash / memory-efficient SDPA); 10 % margin."""
        f, h, w = (int(v) for v in latent_shape)
        pt, ph, pw = self.config.patch_size
        n_img = max(f // pt, 1) * max(h // ph, 1) * max(w // pw, 1)
        tokens = n_img + text_len
        D, M = self.config.hidden_size, self.config.mlp_hidden
        c = torch.empty((), dtype=compute_dtype).element_size()
        stream = 2 * 4 * D
        attn = c * D + 3 * c * D + 2 * 4 * D + 2 * c * D + 2 * c * D
        mlp = c * D + 2 * c * M + 2 * c * D
        total = tokens * (stream + max(attn, mlp)) * batch
        total += n_img * self.config.head_dim * 4
        if teacache:
            total += 2 * batch * n_img * D * 4
        return int(total * 1.1)

    @property
    def device(self) -> torch.device:
        return self.img_in.proj.weight.device

    # ------------------------------------------------------------------ pieces

    @staticmethod
    def valid_rows(text: torch.Tensor, text_mask: Optional[torch.Tensor]) -> List[int]:
        """Valid text rows per sample; the mask must be a prefix of ones (right padding)."""
        B, L = text.shape[:2]
        if text_mask is None:
            return [L] * B
        m = text_mask.to(device="cpu", dtype=torch.bool)
        if tuple(m.shape) != (B, L):
            raise ValueError("text_mask must be [B, L] = [%d, %d], got %s" % (B, L, list(m.shape)))
        n = m.sum(dim=1).tolist()
        for b, nb in enumerate(n):
            if nb < 1 or not bool(m[b, :nb].all()):
                raise ValueError("text_mask row %d must be ones followed by zeros (right padding) with at least "
                                 "one valid row" % b)
        return [int(v) for v in n]

    def embed_vector(self, timestep: torch.Tensor, guidance: Optional[torch.Tensor], pooled: torch.Tensor,
                     batch: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """(vec [B, D] float32, the timestep's sinusoid [B, 256])."""
        dev, dt = self.device, self.compute_dtype
        t = torch.as_tensor(timestep, device=dev).float().reshape(-1)
        if t.numel() == 1:
            t = t.expand(batch)
        if t.numel() != batch:
            raise ValueError("timestep has %d values for a batch of %d" % (t.numel(), batch))
        t_freq = timestep_embedding(t)
        vec = self.time_in.mlp(t_freq.to(dt)).float()
        if self.config.guidance_embed:
            if guidance is None:
                raise ValueError("this model has a guidance embedder: pass guidance (the embedded guidance "
                                 "scale × 1000, e.g. 1000.0 for the SkyReels default 1.0)")
            g = torch.as_tensor(guidance, device=dev).float().reshape(-1)
            if g.numel() == 1:
                g = g.expand(batch)
            vec = vec + self.guidance_in.mlp(timestep_embedding(g).to(dt)).float()
        if pooled.shape[-1] != self.config.pooled_dim:
            raise ValueError("pooled text has width %d, the model expects %d (CLIP-L)"
                             % (pooled.shape[-1], self.config.pooled_dim))
        vec = vec + self.vector_in(pooled.reshape(batch, -1).to(dev, dt)).float()
        return vec, t_freq

    def run_blocks(self, img: torch.Tensor, txt: torch.Tensor, vec_act: torch.Tensor, rope, key_lengths):
        hooks, backend, dt = self.block_hooks, self.attention_backend, self.compute_dtype
        i = 0
        for block in self.double_blocks:
            check_interrupt()
            if hooks is not None:
                hooks.before_block(i, block)
            img, txt = block(img, txt, vec_act, rope, key_lengths, backend, dt)
            if hooks is not None:
                hooks.after_block(i, block)
            i += 1
        n_img = img.shape[1]
        x = torch.cat([img, txt], dim=1)
        del img, txt
        for block in self.single_blocks:
            check_interrupt()
            if hooks is not None:
                hooks.before_block(i, block)
            x = block(x, vec_act, n_img, rope, key_lengths, backend, dt)
            if hooks is not None:
                hooks.after_block(i, block)
            i += 1
        return x[:, :n_img]

    def cache_signal(self, img: torch.Tensor, vec_act: torch.Tensor) -> torch.Tensor:
        """TeaCache's indicator: the image tokens normalised and modulated by the first
        double-stream block (official TeaCache4HunyuanVideo)."""
        first = self.double_blocks[0]
        shift, scale = first.img_mod(vec_act, 6, self.compute_dtype)[:2]
        return modulate(layer_norm(img, first.eps), shift, scale)

    def unpatchify(self, y: torch.Tensor, grid: Tuple[int, int, int]) -> torch.Tensor:
        """[B, N, C·pt·ph·pw] (channel outermost) -> [B, C, F, H, W]."""
        B = y.shape[0]
        pt, ph, pw = self.config.patch_size
        c = self.config.out_channels
        f, h, w = grid
        y = y.view(B, f, h, w, c, pt, ph, pw).permute(0, 4, 1, 5, 2, 6, 3, 7)
        return y.reshape(B, c, f * pt, h * ph, w * pw)

    # ------------------------------------------------------------------ forward

    def forward(self, x: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor, pooled: torch.Tensor,
                guidance: Optional[torch.Tensor] = None, text_mask: Optional[torch.Tensor] = None,
                image_latents: Optional[torch.Tensor] = None, *, cache=None) -> torch.Tensor:
        cfg = self.config
        dev, dt = self.device, self.compute_dtype
        if x.dim() != 5:
            raise ValueError("x must be [B, C, F, H, W], got shape %s" % list(x.shape))
        if image_latents is not None:
            if image_latents.shape != x.shape:
                raise ValueError("image_latents must have the latent's shape %s, got %s"
                                 % (list(x.shape), list(image_latents.shape)))
            x = torch.cat([x.to(dev), image_latents.to(dev, x.dtype)], dim=1)
        B, C, F_, H, W = x.shape
        if C != cfg.in_channels:
            hint = " (the image-to-video model needs image_latents)" if C < cfg.in_channels else \
                " (a text-to-video model takes no image_latents)"
            raise ValueError("the model takes %d input channels, got %d%s" % (cfg.in_channels, C, hint))
        pt, ph, pw = cfg.patch_size
        if F_ % pt or H % ph or W % pw:
            raise ValueError("latent size F x H x W = %d x %d x %d must be divisible by the patch %s"
                             % (F_, H, W, list(cfg.patch_size)))
        if text.dim() != 3 or text.shape[0] != B or text.shape[-1] != cfg.text_dim:
            raise ValueError("text must be [B, L, %d] with B = %d, got %s" % (cfg.text_dim, B, list(text.shape)))
        grid = (F_ // pt, H // ph, W // pw)

        valid = self.valid_rows(text, text_mask)
        L = max(valid)
        text = text[:, :L].to(dev)
        same = all(n == L for n in valid)

        img = self.img_in.proj(x.to(dev, dt)).flatten(2).transpose(1, 2).float()  # [B, N, D]
        n_img = img.shape[1]
        vec, t_freq = self.embed_vector(timestep, guidance, pooled, B)
        vec_act = F.silu(vec)
        txt = self.txt_in(text, t_freq, valid, None if same else valid, self.attention_backend, dt)
        rope = rope_table(grid, cfg.axes_dim, cfg.theta, dev)
        key_lengths = None if same else [n_img + n for n in valid]

        if cache is not None:
            signal = self.cache_signal(img, vec_act)
            residual = cache.lookup(signal, signal)
            if residual is not None:
                img = img + residual.to(img.device)
            else:
                out = self.run_blocks(img, txt, vec_act, rope, key_lengths)
                cache.store(out - img)
                img = out
        else:
            img = self.run_blocks(img, txt, vec_act, rope, key_lengths)

        return self.unpatchify(self.final_layer(img, vec, dt), grid).float()
