"""The open-clip ViT vision tower that gives the I2V DiT its image tokens (ViT-H/14).

Same network as the official ``VisionTransformer`` of ``skyreels_v2_infer/modules/clip.py``
(the visual half of open-clip XLM-RoBERTa-large ViT-H/14):

* a conv patch embedding without bias (``pre_norm`` models), a class token in front, learned
  positions added;
* a LayerNorm before the blocks (``pre_norm``);
* pre-norm blocks: ``x + attn(norm1(x))`` with a fused qkv projection and 1/sqrt(head_dim)
  scaling, then ``x + mlp(norm2(x))`` with an exact (erf) GELU; LayerNorm eps 1e-5.

``forward(pixels, layer=-2)`` returns the tokens after all blocks but the last (the
"penultimate layer" the official code asks for with ``use_31_block=True``), every token
including the class token, with no post-norm and no projection: [B, 257, 1280] for ViT-H at
224 px.  The post-norm and the projection head of the checkpoints are never used and are not
part of this module.  Parameter names are the official ones without the ``visual.`` prefix.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict

import torch
import torch.nn as nn

from ...host import check_interrupt
from ..common import ops
from ..common.attention import attention


@dataclass
class CLIPVisionConfig:
    """Sizes of the vision tower.  The defaults are open-clip ViT-H/14 at 224 px."""

    image_size: int = 224
    patch_size: int = 14
    dim: int = 1280
    mlp_dim: int = 5120
    num_heads: int = 16
    num_layers: int = 32
    eps: float = 1e-5
    pre_norm: bool = True  # LayerNorm before the blocks; such models have no patch-embedding bias
    patch_bias: bool = False
    activation: str = "gelu"  # "gelu" (exact erf) or "quick_gelu"

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def num_tokens(self) -> int:
        return self.num_patches + 1

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    def validate(self) -> None:
        if self.dim % self.num_heads:
            raise ValueError("dim %d is not divisible by num_heads %d" % (self.dim, self.num_heads))
        if self.image_size % self.patch_size:
            raise ValueError("image_size %d is not a multiple of patch_size %d" % (self.image_size, self.patch_size))
        if self.activation not in ("gelu", "quick_gelu"):
            raise ValueError("activation must be gelu or quick_gelu, not %r" % self.activation)

    @classmethod
    def from_official(cls, cfg: Dict[str, Any]) -> "CLIPVisionConfig":
        """From the official ``VisionTransformer`` fields (image_size, patch_size, dim, mlp_ratio ...)."""
        dim = int(cfg.get("dim", 1280))
        pre_norm = bool(cfg.get("pre_norm", True))
        return cls(image_size=int(cfg.get("image_size", 224)), patch_size=int(cfg.get("patch_size", 14)), dim=dim,
                   mlp_dim=int(dim * float(cfg.get("mlp_ratio", 4))), num_heads=int(cfg.get("num_heads", 16)),
                   num_layers=int(cfg.get("num_layers", 32)), eps=float(cfg.get("norm_eps", 1e-5)),
                   pre_norm=pre_norm, patch_bias=not pre_norm, activation=str(cfg.get("activation", "gelu")))

    @classmethod
    def from_transformers(cls, cfg: Dict[str, Any]) -> "CLIPVisionConfig":
        """From a transformers ``CLIPVisionConfig`` (``config.json`` of an ``image_encoder/`` folder)."""
        act = str(cfg.get("hidden_act", "gelu"))
        return cls(image_size=int(cfg.get("image_size", 224)), patch_size=int(cfg.get("patch_size", 14)),
                   dim=int(cfg.get("hidden_size", 1280)), mlp_dim=int(cfg.get("intermediate_size", 5120)),
                   num_heads=int(cfg.get("num_attention_heads", 16)), num_layers=int(cfg.get("num_hidden_layers", 32)),
                   eps=float(cfg.get("layer_norm_eps", 1e-5)), activation=act)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class VisionAttention(nn.Module):
    """Self-attention with a fused ``to_qkv`` [3*dim, dim] (rows q, then k, then v) and ``proj``."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.to_qkv = ops.Linear(dim, dim * 3)
        self.proj = ops.Linear(dim, dim)

    def forward(self, x: torch.Tensor, backend: str) -> torch.Tensor:
        B, L, D = x.shape
        q, k, v = self.to_qkv(x).view(B, L, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        out = attention(q, k, v, backend)  # [B, H, L, d], scaled by 1/sqrt(d)
        return self.proj(out.transpose(1, 2).reshape(B, L, D))


class VisionBlock(nn.Module):
    def __init__(self, cfg: CLIPVisionConfig):
        super().__init__()
        self.norm1 = ops.LayerNorm(cfg.dim, eps=cfg.eps)
        self.attn = VisionAttention(cfg.dim, cfg.num_heads)
        self.norm2 = ops.LayerNorm(cfg.dim, eps=cfg.eps)
        act = nn.GELU() if cfg.activation == "gelu" else QuickGELU()
        self.mlp = nn.Sequential(ops.Linear(cfg.dim, cfg.mlp_dim), act, ops.Linear(cfg.mlp_dim, cfg.dim))

    def forward(self, x: torch.Tensor, dtype: torch.dtype, backend: str) -> torch.Tensor:
        x = x + self.attn(self.norm1(x).to(dtype), backend).float()
        x = x + self.mlp(self.norm2(x).to(dtype)).float()
        return x


class CLIPVisionTower(nn.Module):
    """``forward(pixels [B, 3, S, S] normalised, layer=-2) -> [B, N+1, dim]`` float32."""

    def __init__(self, cfg: CLIPVisionConfig):
        super().__init__()
        cfg.validate()
        self.config = cfg
        self.patch_embedding = ops.Conv2d(3, cfg.dim, kernel_size=cfg.patch_size, stride=cfg.patch_size,
                                          bias=cfg.patch_bias)
        self.cls_embedding = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.pos_embedding = nn.Parameter(torch.zeros(1, cfg.num_tokens, cfg.dim))
        self.pre_norm = ops.LayerNorm(cfg.dim, eps=cfg.eps) if cfg.pre_norm else None
        self.transformer = nn.ModuleList([VisionBlock(cfg) for _ in range(cfg.num_layers)])
        self.compute_dtype: torch.dtype = torch.float32
        self.attention_backend = "sdpa"

    @property
    def device(self) -> torch.device:
        return self.pos_embedding.device

    def forward(self, pixels: torch.Tensor, layer: int = -2) -> torch.Tensor:
        """Tokens after block ``layer`` (python indexing: -1 = last block, -2 = penultimate)."""
        cfg = self.config
        if pixels.dim() != 4 or pixels.shape[1] != 3:
            raise ValueError("pixels must be [B, 3, H, W], got %s" % list(pixels.shape))
        if tuple(pixels.shape[-2:]) != (cfg.image_size, cfg.image_size):
            raise ValueError("pixels must be %dx%d (see clip_preprocess), got %dx%d"
                             % (cfg.image_size, cfg.image_size, pixels.shape[-2], pixels.shape[-1]))
        n = cfg.num_layers
        last = layer if layer >= 0 else n + layer
        if not 0 <= last < n:
            raise ValueError("layer %d is out of range for %d blocks" % (layer, n))
        dtype = self.compute_dtype
        B = pixels.shape[0]
        x = self.patch_embedding(pixels.to(dtype)).flatten(2).transpose(1, 2).float()
        cls = self.cls_embedding.float().to(x.device).expand(B, -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embedding.float().to(x.device)
        if self.pre_norm is not None:
            x = self.pre_norm(x)
        for block in self.transformer[: last + 1]:
            check_interrupt()
            x = block(x, dtype, self.attention_backend)
        return x
