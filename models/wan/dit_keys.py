"""State-dict naming of the Wan DiT: official <-> diffusers, ComfyUI prefixes, config inference.

The model's own parameter names are the official ones.  Diffusers-layout checkpoints
(``*-Diffusers`` repos, SkyReels-A2, V3 R2V) are renamed key by key (shapes are identical);
ComfyUI repackaged files carry the official names behind ``model.diffusion_model.``.
"""
from __future__ import annotations

import re
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

from .audio_adapter import AudioAdapterConfig
from .dit_config import WanDiTConfig

# Prefixes put in front of the official names by ComfyUI and other tools.
KNOWN_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "model.", "transformer.")

# official -> diffusers, for names outside the blocks (longest match first).
_TOP_O2D = [
    ("time_embedding.0.", "condition_embedder.time_embedder.linear_1."),
    ("time_embedding.2.", "condition_embedder.time_embedder.linear_2."),
    ("text_embedding.0.", "condition_embedder.text_embedder.linear_1."),
    ("text_embedding.2.", "condition_embedder.text_embedder.linear_2."),
    ("time_projection.1.", "condition_embedder.time_proj."),
    ("img_emb.proj.0.", "condition_embedder.image_embedder.norm1."),
    ("img_emb.proj.1.", "condition_embedder.image_embedder.ff.net.0.proj."),
    ("img_emb.proj.3.", "condition_embedder.image_embedder.ff.net.2."),
    ("img_emb.proj.4.", "condition_embedder.image_embedder.norm2."),
    ("fps_projection.0.", "fps_projection.net.0.proj."),
    ("fps_projection.2.", "fps_projection.net.2."),
    ("head.head.", "proj_out."),
]
_TOP_EXACT_O2D = {
    "head.modulation": "scale_shift_table",
    "img_emb.emb_pos": "condition_embedder.image_embedder.pos_embed",
}
# inside blocks.{i}.
_BLOCK_O2D = [
    ("self_attn.q.", "attn1.to_q."), ("self_attn.k.", "attn1.to_k."), ("self_attn.v.", "attn1.to_v."),
    ("self_attn.o.", "attn1.to_out.0."), ("self_attn.norm_q.", "attn1.norm_q."),
    ("self_attn.norm_k.", "attn1.norm_k."),
    ("cross_attn.q.", "attn2.to_q."), ("cross_attn.k.", "attn2.to_k."), ("cross_attn.v.", "attn2.to_v."),
    ("cross_attn.o.", "attn2.to_out.0."), ("cross_attn.norm_q.", "attn2.norm_q."),
    ("cross_attn.norm_k.", "attn2.norm_k."),
    ("cross_attn.k_img.", "attn2.add_k_proj."), ("cross_attn.v_img.", "attn2.add_v_proj."),
    ("cross_attn.norm_k_img.", "attn2.norm_added_k."),
    ("norm3.", "norm2."),
    ("ffn.0.", "ffn.net.0.proj."), ("ffn.2.", "ffn.net.2."),
]
_BLOCK_EXACT_O2D = {"modulation": "scale_shift_table"}

# Other spellings seen in circulation (diffusers single-file converter keeps fps_projection.N).
_EXTRA_D2O = [("fps_projection.0.", "fps_projection.0."), ("fps_projection.2.", "fps_projection.2.")]

_BLOCK_RE = re.compile(r"^blocks\.(\d+)\.(.*)$")


def _swap(rest: str, table, exact) -> Optional[str]:
    if rest in exact:
        return exact[rest]
    for a, b in table:
        if rest.startswith(a):
            return b + rest[len(a):]
    return None


def official_to_diffusers(key: str) -> str:
    m = _BLOCK_RE.match(key)
    if m:
        new = _swap(m.group(2), _BLOCK_O2D, _BLOCK_EXACT_O2D)
        return "blocks.%s.%s" % (m.group(1), new if new is not None else m.group(2))
    new = _swap(key, _TOP_O2D, _TOP_EXACT_O2D)
    return new if new is not None else key


def _invert(table):
    return [(b, a) for a, b in table]


_TOP_D2O = sorted(_invert(_TOP_O2D) + _EXTRA_D2O, key=lambda p: -len(p[0]))
_TOP_EXACT_D2O = {v: k for k, v in _TOP_EXACT_O2D.items()}
_BLOCK_D2O = sorted(_invert(_BLOCK_O2D), key=lambda p: -len(p[0]))
_BLOCK_EXACT_D2O = {v: k for k, v in _BLOCK_EXACT_O2D.items()}


def diffusers_to_official(key: str) -> str:
    m = _BLOCK_RE.match(key)
    if m:
        new = _swap(m.group(2), _BLOCK_D2O, _BLOCK_EXACT_D2O)
        return "blocks.%s.%s" % (m.group(1), new if new is not None else m.group(2))
    new = _swap(key, _TOP_D2O, _TOP_EXACT_D2O)
    return new if new is not None else key


# --------------------------------------------------------------------------- detection

OFFICIAL_MARKERS = ("patch_embedding.weight", "head.head.weight", "blocks.0.self_attn.q.weight")
DIFFUSERS_MARKERS = ("condition_embedder.time_proj.weight", "proj_out.weight", "blocks.0.attn1.to_q.weight")


def strip_prefix(keys: Iterable[str]) -> str:
    """The common ComfyUI-style prefix in front of the DiT names ("" if none)."""
    keys = list(keys)
    for p in KNOWN_PREFIXES:
        for marker in OFFICIAL_MARKERS + DIFFUSERS_MARKERS:
            if p + marker in keys:
                return p
    return ""


def detect_naming(keys: Iterable[str]) -> Optional[Tuple[str, str]]:
    """(naming, prefix) with naming "official" or "diffusers"; None if not a Wan DiT."""
    keys = set(keys)
    prefix = strip_prefix(keys)
    if any(prefix + m in keys for m in ("condition_embedder.time_proj.weight", "blocks.0.attn1.to_q.weight")):
        return "diffusers", prefix
    if any(prefix + m in keys for m in ("time_projection.1.weight", "blocks.0.self_attn.q.weight")):
        return "official", prefix
    return None


# Tensors some checkpoints carry that no model uses: SkyReels-A2 files may hold
# ``attn2.norm_added_q`` (its class drops it on load); they are left out, not loaded.
UNUSED = re.compile(r"^blocks\.\d+\.attn2\.norm_added_q\.")


def to_official_names(keys: Iterable[str], naming: str, prefix: str) -> Dict[str, str]:
    """file key -> official key, for every key of the DiT (others are left out)."""
    out = {}
    for k in keys:
        if prefix and not k.startswith(prefix):
            continue
        bare = k[len(prefix):]
        if naming == "diffusers" and UNUSED.match(bare):
            continue
        out[k] = diffusers_to_official(bare) if naming == "diffusers" else bare
    return out


def infer_config(shapes: Mapping[str, Sequence[int]], hints: Optional[Dict] = None) -> WanDiTConfig:
    """Build the config from official-named shapes (the result of ``to_official_names``)."""
    hints = dict(hints or {})

    def need(k):
        if k not in shapes:
            raise KeyError(k)
        return list(shapes[k])

    pe = need("patch_embedding.weight")  # [D, Cin, pt, ph, pw]
    D, cin = pe[0], pe[1]
    patch = tuple(pe[2:5])
    ffn = need("blocks.0.ffn.0.weight")[0]
    text_dim = need("text_embedding.0.weight")[1]
    freq_dim = need("time_embedding.0.weight")[1]
    head_out = need("head.head.weight")[0]
    out_dim = head_out // (patch[0] * patch[1] * patch[2])
    layers = 1 + max(int(m.group(1)) for k in shapes for m in [_BLOCK_RE.match(k)] if m)
    image_dim = shapes["img_emb.proj.0.weight"][0] if "img_emb.proj.0.weight" in shapes else None
    pos = shapes["img_emb.emb_pos"][1] if "img_emb.emb_pos" in shapes else None
    fps = "fps_embedding.weight" in shapes
    heads = hints.pop("num_heads", None) or max(1, D // 128)
    cfg = WanDiTConfig(
        dim=D, ffn_dim=ffn, num_heads=int(heads), num_layers=layers, in_dim=cin, out_dim=out_dim,
        text_dim=text_dim, freq_dim=freq_dim, patch_size=patch,
        qk_norm="blocks.0.self_attn.norm_q.weight" in shapes,
        cross_attn_norm="blocks.0.norm3.weight" in shapes,
        image_dim=image_dim, image_pos_len=pos, inject_sample_info=fps,
        audio=AudioAdapterConfig.from_shapes(shapes))
    cfg.variant = "i2v" if image_dim else ("df" if fps else "t2v")
    for k, v in hints.items():
        if v is not None and hasattr(cfg, k):
            setattr(cfg, k, v)
    return cfg


def expected_shapes(cfg: WanDiTConfig) -> Dict[str, Tuple[int, ...]]:
    """Official key -> shape for a config (built on the meta device)."""
    import torch

    from .dit import WanDiT

    with torch.device("meta"):
        m = WanDiT(cfg)
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}
