"""Configuration of the Wan2.1 DiT family (SkyReels-V2 T2V / I2V / DF, A2, V3 trunks).

One dataclass holds every switch.  It converts from the official ``WanModel`` constructor
fields and from the diffusers ``WanTransformer3DModel`` / ``SkyReelsV2Transformer3DModel``
fields, and it can be inferred from a state dict's shapes (see ``dit_keys.infer_config``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from .audio_adapter import AudioAdapterConfig

# Variants with the I2V key shapes (image branch, 36 input channels) and with the T2V ones.
# v3_extend / v3_shot: SkyReels-V3 single-shot extension (``transformer/``) and shot
# switching (``shot_transformer/``), T2V-shaped.
IMAGE_VARIANTS = ("i2v", "a2")
TEXT_VARIANTS = ("t2v", "df", "r2v", "v3_extend", "v3_shot")
VARIANTS = TEXT_VARIANTS + IMAGE_VARIANTS


@dataclass
class WanDiTConfig:
    dim: int = 1536
    ffn_dim: int = 8960
    num_heads: int = 12
    num_layers: int = 30
    in_dim: int = 16
    out_dim: int = 16
    text_dim: int = 4096
    text_len: int = 512
    freq_dim: int = 256
    patch_size: Tuple[int, int, int] = (1, 2, 2)
    eps: float = 1e-6
    qk_norm: bool = True
    cross_attn_norm: bool = True
    # Width of the CLIP image tokens for image-to-video models (1280 for ViT-H); None = text only.
    image_dim: Optional[int] = None
    # FLF2V-style learned positions added to the image tokens (length, e.g. 514); None = absent.
    image_pos_len: Optional[int] = None
    # SkyReels-V2-DF-1.3B: fps embedding added to the modulation.
    inject_sample_info: bool = False
    # Length of each RoPE table (1024 in V2; V3 shot switching needs 2048).
    rope_max_len: int = 1024
    # What the checkpoint is for: "t2v", "i2v", "df", "a2" (SkyReels-A2 elements-to-video,
    # I2V-shaped), "r2v" (SkyReels-V3 reference-to-video, T2V-shaped), "v3_extend" / "v3_shot"
    # (SkyReels-V3 video extension, T2V-shaped).  DF-14B, R2V-14B and the V3 extension models
    # have T2V-shaped keys and A2 I2V-shaped ones, so this comes from the file name, the
    # config or the user when the keys cannot tell.
    variant: str = "t2v"
    # SkyReels-V3 talking avatar (A2V): the audio adapter (``audio_adapter``); None = absent.
    audio: Optional[AudioAdapterConfig] = None

    @property
    def model_type(self) -> str:
        return "i2v" if self.image_dim else "t2v"

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @property
    def size_name(self) -> str:
        """"1.3B", "14B" or "custom", by width and depth (used for TeaCache presets)."""
        if self.dim == 1536 and self.num_layers == 30:
            return "1.3B"
        if self.dim == 5120 and self.num_layers == 40:
            return "14B"
        return "custom"

    def validate(self) -> None:
        if self.dim % self.num_heads:
            raise ValueError("dim %d is not divisible by num_heads %d" % (self.dim, self.num_heads))
        if self.head_dim % 2:
            raise ValueError("head_dim %d must be even for RoPE" % self.head_dim)
        if self.variant not in VARIANTS:
            raise ValueError("variant must be one of %s, not %r" % (", ".join(VARIANTS), self.variant))

    # ------------------------------------------------------------------ conversions

    @classmethod
    def from_official(cls, cfg: Dict[str, Any]) -> "WanDiTConfig":
        """From the official ``WanModel`` fields (``config.json`` of the original repos)."""
        model_type = cfg.get("model_type", "t2v")
        c = cls(
            dim=int(cfg.get("dim", 2048)),
            ffn_dim=int(cfg.get("ffn_dim", 8192)),
            num_heads=int(cfg.get("num_heads", 16)),
            num_layers=int(cfg.get("num_layers", 32)),
            in_dim=int(cfg.get("in_dim", 16)),
            out_dim=int(cfg.get("out_dim", 16)),
            text_dim=int(cfg.get("text_dim", 4096)),
            text_len=int(cfg.get("text_len", 512)),
            freq_dim=int(cfg.get("freq_dim", 256)),
            patch_size=tuple(cfg.get("patch_size", (1, 2, 2))),
            eps=float(cfg.get("eps", 1e-6)),
            qk_norm=bool(cfg.get("qk_norm", True)),
            cross_attn_norm=bool(cfg.get("cross_attn_norm", True)),
            image_dim=1280 if model_type in ("i2v", "flf2v") else None,
            image_pos_len=514 if model_type == "flf2v" else None,
            inject_sample_info=bool(cfg.get("inject_sample_info", False)),
            audio=AudioAdapterConfig.from_official(cfg),
        )
        c.variant = "i2v" if c.image_dim else ("df" if c.inject_sample_info else "t2v")
        return c

    @classmethod
    def from_diffusers(cls, cfg: Dict[str, Any]) -> "WanDiTConfig":
        """From diffusers ``WanTransformer3DModel`` / ``SkyReelsV2Transformer3DModel`` fields."""
        heads = int(cfg.get("num_attention_heads", 40))
        hd = int(cfg.get("attention_head_dim", 128))
        image_dim = cfg.get("image_dim")
        pos = cfg.get("pos_embed_seq_len")
        c = cls(
            dim=heads * hd,
            ffn_dim=int(cfg.get("ffn_dim", 13824)),
            num_heads=heads,
            num_layers=int(cfg.get("num_layers", 40)),
            in_dim=int(cfg.get("in_channels", 16)),
            out_dim=int(cfg.get("out_channels", 16)),
            text_dim=int(cfg.get("text_dim", 4096)),
            freq_dim=int(cfg.get("freq_dim", 256)),
            patch_size=tuple(cfg.get("patch_size", (1, 2, 2))),
            eps=float(cfg.get("eps", 1e-6)),
            qk_norm=cfg.get("qk_norm") not in (None, False),
            cross_attn_norm=bool(cfg.get("cross_attn_norm", True)),
            image_dim=int(image_dim) if image_dim else None,
            image_pos_len=int(pos) if pos else None,
            inject_sample_info=bool(cfg.get("inject_sample_info", False)),
            rope_max_len=int(cfg.get("rope_max_seq_len", 1024)),
        )
        c.variant = "i2v" if c.image_dim else ("df" if c.inject_sample_info else "t2v")
        return c

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["patch_size"] = list(self.patch_size)
        d["model_type"] = self.model_type
        return d

    def replace(self, **kw) -> "WanDiTConfig":
        return dataclasses.replace(self, **kw)
