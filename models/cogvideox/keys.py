"""State-dict naming of the CogVideoX / SkyReels-A1 transformer and its configuration from shapes.

The model's parameter names are the diffusers names, which the official SkyReels-A1 release
uses (``transformer/diffusion_pytorch_model.safetensors``).  Single files in circulation carry
the same names, sometimes behind a prefix (``model.diffusion_model.``, ``transformer.`` ...),
in bf16 / fp16 / fp32 or fp8 (scaled fp8 included, handled by ``models.loading``).
"""
from __future__ import annotations

import re
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

from .config import CogVideoXConfig

KNOWN_PREFIXES = ("", "model.diffusion_model.", "diffusion_model.", "transformer.", "model.")
MARKERS = ("patch_embed.proj.weight", "transformer_blocks.0.attn1.to_q.weight", "norm_final.weight")
_BLOCK_RE = re.compile(r"^transformer_blocks\.(\d+)\.")
# The A1 release: 13 latent frames of 30 x 45 tokens plus 729 face rows.
RELEASE_SAMPLE = dict(sample_height=60, sample_width=90, sample_frames=49)


def detect_prefix(keys: Iterable[str]) -> Optional[str]:
    """The prefix in front of the transformer names, or None if these are not CogVideoX keys."""
    keys = set(keys)
    for p in KNOWN_PREFIXES:
        if all(p + m in keys for m in MARKERS):
            return p
    return None


def to_model_names(keys: Iterable[str], prefix: str) -> Dict[str, str]:
    """file key -> model key for every key behind ``prefix``."""
    return {k: k[len(prefix):] for k in keys if k.startswith(prefix)}


def infer_config(shapes: Mapping[str, Sequence[int]], file_config: Optional[dict] = None) -> CogVideoXConfig:
    """The configuration from model-named shapes, with the file's ``config.json`` for what the
    shapes cannot tell (sample size, RoPE and sin-cos switches).  Raises KeyError for a missing
    tensor and ValueError when the positional table's size cannot be explained."""

    def need(k):
        if k not in shapes:
            raise KeyError(k)
        return list(shapes[k])

    proj = need("patch_embed.proj.weight")  # [D, Cin, p, p]
    D, cin, p = proj[0], proj[1], proj[2]
    head_dim = need("transformer_blocks.0.attn1.norm_q.weight")[0]
    face_dim = shapes["patch_embed.pose_proj.0.weight"][1] if "patch_embed.pose_proj.0.weight" in shapes else None
    fields = dict(
        num_heads=D // head_dim, head_dim=head_dim, in_channels=cin, patch_size=p,
        out_channels=need("proj_out.weight")[0] // (p * p),
        time_embed_dim=need("time_embedding.linear_1.weight")[0],
        text_embed_dim=need("patch_embed.text_proj.weight")[1],
        num_layers=1 + max(int(m.group(1)) for k in shapes for m in [_BLOCK_RE.match(k)] if m),
        face_embed_dim=face_dim,
        attention_bias="transformer_blocks.0.attn1.to_q.bias" in shapes,
        use_learned_positional_embeddings="patch_embed.pos_embedding" in shapes,
    )
    declared = CogVideoXConfig.from_diffusers(file_config, face_embed_dim=face_dim) if file_config else None
    if declared is not None:
        for k in ("sample_height", "sample_width", "sample_frames", "temporal_compression_ratio", "norm_eps",
                  "spatial_interpolation_scale", "temporal_interpolation_scale", "flip_sin_to_cos", "freq_shift",
                  "use_rotary_positional_embeddings", "max_text_seq_length", "face_tokens"):
            fields[k] = getattr(declared, k)
    else:
        fields["use_rotary_positional_embeddings"] = True  # CogVideoX-5B and A1
    cfg = CogVideoXConfig(**fields)
    if cfg.use_learned_positional_embeddings:
        rows = need("patch_embed.pos_embedding")[1]
        if declared is None and rows != _table_rows(cfg):
            release = cfg.replace(**RELEASE_SAMPLE)
            if rows == _table_rows(release):
                cfg = release
        if rows != _table_rows(cfg):
            raise ValueError(
                "the learned positional table has %d rows, which fits no known sample size (%d face rows + "
                "frames x height x width tokens); put the model's config.json beside the file" % (rows, cfg.context_tokens))
    cfg.validate()
    return cfg


def _table_rows(cfg: CogVideoXConfig) -> int:
    p = cfg.patch_size
    return cfg.context_tokens + cfg.sample_latent_frames * (cfg.sample_height // p) * (cfg.sample_width // p)


def expected_shapes(cfg: CogVideoXConfig) -> Dict[str, Tuple[int, ...]]:
    """Model key -> shape for a configuration (built on the meta device)."""
    import torch

    from .transformer import CogVideoXTransformer

    with torch.device("meta"):
        m = CogVideoXTransformer(cfg)
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}
