"""Configuration of the HunyuanVideo MMDiT (SkyReels-V1 T2V and I2V).

One dataclass in the vocabulary of the original HunyuanVideo checkpoints (the names ComfyUI's
``HunyuanVideoParams`` uses).  It converts from the diffusers
``HunyuanVideoTransformer3DModel`` constructor fields and is inferred from a state dict's
shapes by :func:`models.hunyuan.dit_keys.infer_config`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

# The image-to-video model of HunyuanVideo itself (not SkyReels): 33 input channels, a mask
# channel and token replacement.  It is a different model; we say so instead of guessing.
HUNYUAN_I2V_CHANNELS = 33


def default_axes(head_dim: int) -> Tuple[int, int, int]:
    """RoPE channels per axis (frame, row, column) when no config says: (16, 56, 56) for the
    released head size 128; for other sizes the same proportions in even numbers."""
    if head_dim == 128:
        return (16, 56, 56)
    t = max(2, (head_dim // 8) // 2 * 2)
    hw = (head_dim - t) // 2 // 2 * 2
    return (head_dim - 2 * hw, hw, hw)


@dataclass
class HunyuanDiTConfig:
    in_channels: int = 16            # 16 = T2V, 32 = SkyReels I2V (latent + image latent)
    out_channels: int = 16
    hidden_size: int = 3072
    num_heads: int = 24
    depth: int = 20                  # dual-stream blocks
    depth_single_blocks: int = 40    # single-stream blocks
    depth_refiner: int = 2           # token-refiner blocks
    mlp_ratio: float = 4.0
    text_dim: int = 4096             # Llama hidden states
    pooled_dim: int = 768            # CLIP-L pooled text
    axes_dim: Tuple[int, int, int] = (16, 56, 56)
    theta: float = 256.0
    patch_size: Tuple[int, int, int] = (1, 2, 2)
    qkv_bias: bool = True
    guidance_embed: bool = True
    eps: float = 1e-6

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def mlp_hidden(self) -> int:
        return int(self.hidden_size * self.mlp_ratio)

    @property
    def variant(self) -> str:
        """"i2v" for the 32-channel SkyReels image-to-video model, else "t2v"."""
        return "i2v" if self.in_channels > self.out_channels else "t2v"

    @property
    def size_name(self) -> str:
        if self.hidden_size == 3072 and self.depth == 20 and self.depth_single_blocks == 40:
            return "13B"
        return "custom"

    def validate(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError("hidden_size %d is not divisible by num_heads %d" % (self.hidden_size, self.num_heads))
        if sum(self.axes_dim) != self.head_dim or any(a % 2 for a in self.axes_dim):
            raise ValueError("the RoPE axes %s must be even and add up to the head size %d"
                             % (list(self.axes_dim), self.head_dim))
        if self.in_channels == HUNYUAN_I2V_CHANNELS:
            raise ValueError("this is HunyuanVideo-I2V (33 input channels: mask channel and token replacement), a "
                             "different model from SkyReels-V1; use a SkyReels-V1 T2V (16) or I2V (32) checkpoint")
        if self.in_channels not in (self.out_channels, 2 * self.out_channels):
            raise ValueError("in_channels %d: expected %d (T2V) or %d (SkyReels I2V)"
                             % (self.in_channels, self.out_channels, 2 * self.out_channels))

    # ------------------------------------------------------------------ conversions

    @classmethod
    def from_diffusers(cls, cfg: Dict[str, Any]) -> "HunyuanDiTConfig":
        """From ``HunyuanVideoTransformer3DModel`` constructor fields (a diffusers config.json)."""
        heads = int(cfg.get("num_attention_heads", 24))
        hd = int(cfg.get("attention_head_dim", 128))
        p = int(cfg.get("patch_size", 2))
        pt = int(cfg.get("patch_size_t", 1))
        axes = cfg.get("rope_axes_dim")
        return cls(
            in_channels=int(cfg.get("in_channels", 16)),
            out_channels=int(cfg.get("out_channels", 16)),
            hidden_size=heads * hd,
            num_heads=heads,
            depth=int(cfg.get("num_layers", 20)),
            depth_single_blocks=int(cfg.get("num_single_layers", 40)),
            depth_refiner=int(cfg.get("num_refiner_layers", 2)),
            mlp_ratio=float(cfg.get("mlp_ratio", 4.0)),
            text_dim=int(cfg.get("text_embed_dim", 4096)),
            pooled_dim=int(cfg.get("pooled_projection_dim", 768)),
            axes_dim=tuple(int(a) for a in axes) if axes else default_axes(hd),
            theta=float(cfg.get("rope_theta", 256.0)),
            patch_size=(pt, p, p),
            guidance_embed=bool(cfg.get("guidance_embeds", True)),
        )

    @classmethod
    def from_original(cls, cfg: Dict[str, Any]) -> "HunyuanDiTConfig":
        """From the original vocabulary (ComfyUI's ``HunyuanVideoParams`` fields)."""
        hidden = int(cfg.get("hidden_size", 3072))
        heads = int(cfg.get("num_heads", 24))
        axes = cfg.get("axes_dim")
        return cls(
            in_channels=int(cfg.get("in_channels", 16)),
            out_channels=int(cfg.get("out_channels", 16)),
            hidden_size=hidden,
            num_heads=heads,
            depth=int(cfg.get("depth", 20)),
            depth_single_blocks=int(cfg.get("depth_single_blocks", 40)),
            mlp_ratio=float(cfg.get("mlp_ratio", 4.0)),
            text_dim=int(cfg.get("context_in_dim", 4096)),
            pooled_dim=int(cfg.get("vec_in_dim", 768)),
            axes_dim=tuple(int(a) for a in axes) if axes else default_axes(hidden // heads),
            theta=float(cfg.get("theta", 256)),
            patch_size=tuple(int(p) for p in cfg.get("patch_size", (1, 2, 2))),
            qkv_bias=bool(cfg.get("qkv_bias", True)),
            guidance_embed=bool(cfg.get("guidance_embed", True)),
        )

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["axes_dim"] = list(self.axes_dim)
        d["patch_size"] = list(self.patch_size)
        d["variant"] = self.variant
        return d

    def replace(self, **kw) -> "HunyuanDiTConfig":
        return dataclasses.replace(self, **kw)


def declared_config(file_config: Optional[dict]) -> Optional[HunyuanDiTConfig]:
    """The configuration a ``config.json`` declares, in either vocabulary, or None."""
    if not file_config:
        return None
    if "num_attention_heads" in file_config or "num_single_layers" in file_config:
        return HunyuanDiTConfig.from_diffusers(file_config)
    if "depth_single_blocks" in file_config or "hidden_size" in file_config:
        return HunyuanDiTConfig.from_original(file_config)
    return None
