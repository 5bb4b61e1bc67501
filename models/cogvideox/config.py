"""Configuration of the CogVideoX transformer family (SkyReels-A1; CogVideoX-5B-I2V layout).

One dataclass holds the switches.  Field names follow the diffusers
``CogVideoXTransformer3DModel`` constructor where they exist, so a ``transformer/config.json``
converts with :meth:`CogVideoXConfig.from_diffusers`; the configuration can also be inferred
from a state dict's shapes (:func:`models.cogvideox.keys.infer_config`).

SkyReels-A1 adds two things the official code hard-codes rather than configures:

* ``face_tokens`` (729): the "text" stream holds exactly this many SigLIP tokens, and the
  joint positional table reserves this many rows in front of the video tokens;
* ``face_embed_dim`` (1152, the SigLIP width): the input of ``patch_embed.pose_proj``
  (Linear(F, 3F) -> SiLU -> Linear(3F, text_embed_dim)).  None means a plain CogVideoX
  text stream (``text_proj`` only) with ``max_text_seq_length`` rows.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

# The 480x720 grid the official pipelines crop the RoPE positions in (pixels / 16).
ROPE_BASE_GRID = (30, 45)


@dataclass
class CogVideoXConfig:
    num_heads: int = 48
    head_dim: int = 64
    in_channels: int = 48
    out_channels: int = 16
    time_embed_dim: int = 512
    text_embed_dim: int = 4096
    num_layers: int = 42
    patch_size: int = 2
    # Latent units (pixels / 8) and pixel frames of the learned positional table.
    sample_height: int = 60
    sample_width: int = 90
    sample_frames: int = 49
    temporal_compression_ratio: int = 4
    norm_eps: float = 1e-5
    spatial_interpolation_scale: float = 1.875
    temporal_interpolation_scale: float = 1.0
    use_rotary_positional_embeddings: bool = True
    use_learned_positional_embeddings: bool = True
    flip_sin_to_cos: bool = True
    freq_shift: float = 0.0
    attention_bias: bool = True
    # SkyReels-A1: the face stream (see the module docstring).
    face_tokens: int = 729
    face_embed_dim: Optional[int] = 1152
    # Plain CogVideoX only (face_embed_dim None): text rows of the positional table.
    max_text_seq_length: int = 226
    rope_base_grid: Tuple[int, int] = ROPE_BASE_GRID

    @property
    def dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def context_tokens(self) -> int:
        """Rows of the "text" stream: the face tokens for A1, the text length otherwise."""
        return self.face_tokens if self.face_embed_dim else self.max_text_seq_length

    @property
    def context_dim(self) -> int:
        """Width of what the model takes as ``encoder_hidden_states``."""
        return self.face_embed_dim or self.text_embed_dim

    @property
    def uses_positional_table(self) -> bool:
        """An absolute positional table is added (learned, or sin-cos without RoPE)."""
        return self.use_learned_positional_embeddings or not self.use_rotary_positional_embeddings

    @property
    def sample_latent_frames(self) -> int:
        return (self.sample_frames - 1) // self.temporal_compression_ratio + 1

    @property
    def size_name(self) -> str:
        if self.dim == 3072 and self.num_layers == 42:
            return "5B"
        return "custom"

    def validate(self) -> None:
        if self.head_dim % 16 and self.use_rotary_positional_embeddings:
            raise ValueError("head_dim %d must be a multiple of 16 for the 3D RoPE split" % self.head_dim)
        if self.dim % 16:
            raise ValueError("the model width %d must be a multiple of 16 for the 3D sin-cos table" % self.dim)
        if self.use_learned_positional_embeddings and not self.use_rotary_positional_embeddings:
            raise ValueError("learned positional embeddings need use_rotary_positional_embeddings (as in diffusers)")
        if self.in_channels % 16:
            raise ValueError("in_channels %d is not a multiple of the 16 latent channels" % self.in_channels)

    # ------------------------------------------------------------------ conversions

    @classmethod
    def from_diffusers(cls, cfg: Dict[str, Any], face_embed_dim: Optional[int] = 1152,
                       face_tokens: int = 729) -> "CogVideoXConfig":
        """From a diffusers ``transformer/config.json`` (plus the two A1 fields, which the
        official code hard-codes and the file does not carry)."""
        g = cfg.get
        out = cls(
            num_heads=int(g("num_attention_heads", 30)), head_dim=int(g("attention_head_dim", 64)),
            in_channels=int(g("in_channels", 16)), out_channels=int(g("out_channels") or 16),
            time_embed_dim=int(g("time_embed_dim", 512)), text_embed_dim=int(g("text_embed_dim", 4096)),
            num_layers=int(g("num_layers", 30)), patch_size=int(g("patch_size", 2)),
            sample_height=int(g("sample_height", 60)), sample_width=int(g("sample_width", 90)),
            sample_frames=int(g("sample_frames", 49)),
            temporal_compression_ratio=int(g("temporal_compression_ratio", 4)),
            norm_eps=float(g("norm_eps", 1e-5)),
            spatial_interpolation_scale=float(g("spatial_interpolation_scale", 1.875)),
            temporal_interpolation_scale=float(g("temporal_interpolation_scale", 1.0)),
            use_rotary_positional_embeddings=bool(g("use_rotary_positional_embeddings", False)),
            use_learned_positional_embeddings=bool(g("use_learned_positional_embeddings", False)),
            flip_sin_to_cos=bool(g("flip_sin_to_cos", True)), freq_shift=float(g("freq_shift", 0)),
            attention_bias=bool(g("attention_bias", True)),
            face_tokens=int(g("face_tokens", face_tokens)),
            face_embed_dim=g("face_embed_dim", face_embed_dim),
            max_text_seq_length=int(g("max_text_seq_length", 226)),
        )
        if g("patch_size_t") not in (None, 1):
            raise ValueError("temporal patching (CogVideoX 1.5, patch_size_t) is not supported")
        for key, want in (("activation_fn", "gelu-approximate"), ("timestep_activation_fn", "silu")):
            if g(key, want) != want:
                raise ValueError("%s %r is not supported (only %r)" % (key, g(key), want))
        return out

    def to_diffusers(self) -> Dict[str, Any]:
        """The diffusers ``config.json`` fields (A1 fields under their own names)."""
        return {
            "_class_name": "CogVideoXTransformer3DModel", "num_attention_heads": self.num_heads,
            "attention_head_dim": self.head_dim, "in_channels": self.in_channels,
            "out_channels": self.out_channels, "flip_sin_to_cos": self.flip_sin_to_cos,
            "freq_shift": self.freq_shift, "time_embed_dim": self.time_embed_dim,
            "text_embed_dim": self.text_embed_dim, "num_layers": self.num_layers, "dropout": 0.0,
            "attention_bias": self.attention_bias, "sample_width": self.sample_width,
            "sample_height": self.sample_height, "sample_frames": self.sample_frames,
            "patch_size": self.patch_size, "temporal_compression_ratio": self.temporal_compression_ratio,
            "max_text_seq_length": self.max_text_seq_length, "activation_fn": "gelu-approximate",
            "timestep_activation_fn": "silu", "norm_elementwise_affine": True, "norm_eps": self.norm_eps,
            "spatial_interpolation_scale": self.spatial_interpolation_scale,
            "temporal_interpolation_scale": self.temporal_interpolation_scale,
            "use_rotary_positional_embeddings": self.use_rotary_positional_embeddings,
            "use_learned_positional_embeddings": self.use_learned_positional_embeddings,
        }

    def replace(self, **kw) -> "CogVideoXConfig":
        return dataclasses.replace(self, **kw)
