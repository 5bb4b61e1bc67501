"""State-dict naming of the CLIP vision tower: three namings, detection, config inference.

* ``official`` (Wan / SkyReels ``models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth``):
  ``visual.patch_embedding.weight``, ``visual.cls_embedding`` [1,1,D], ``visual.pos_embedding``
  [1,N+1,D], ``visual.pre_norm``, ``visual.transformer.{i}.norm1 / attn.to_qkv / attn.proj /
  norm2 / mlp.0 / mlp.2``.
* ``transformers`` (``CLIPVisionModel``; diffusers ``image_encoder/`` and ComfyUI's
  ``clip_vision_h.safetensors``, both with the ``vision_model.`` prefix):
  ``embeddings.class_embedding`` [D], ``embeddings.position_embedding.weight`` [N+1,D],
  ``pre_layrnorm`` (sic), ``encoder.layers.{i}.layer_norm1 / self_attn.q_proj,k_proj,v_proj /
  self_attn.out_proj / layer_norm2 / mlp.fc1 / mlp.fc2``.  q, k, v are fused into ``to_qkv``.
* ``open_clip`` (``open_clip_pytorch_model.bin`` of laion/CLIP-ViT-H-14): ``visual.conv1.weight``,
  ``visual.class_embedding`` [D], ``visual.positional_embedding`` [N+1,D], ``visual.ln_pre``,
  ``visual.transformer.resblocks.{i}.ln_1 / attn.in_proj_weight,in_proj_bias / attn.out_proj /
  ln_2 / mlp.c_fc / mlp.c_proj``.

Post-norms, projections, position-id buffers and text towers (``textual.*``, ``text_model.*``,
open_clip's top-level ``transformer.*``) are dropped.  The model's names are the official
ones without ``visual.``.  Because the transformers naming splits q/k/v, a checkpoint is seen
through a :class:`MappedSource`, a read-only view that presents official names and builds each
tensor on demand (renamed, reshaped or concatenated).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch

from ..common.ops import is_fp8
from .clip_vit import CLIPVisionConfig

SCALE_SUFFIXES = (".scale_weight", ".weight_scale")

# Heads of the known towers by width (the count is not visible in the shapes).
HEADS_BY_WIDTH = {768: 12, 1024: 16, 1280: 16, 1664: 16}

_BLOCK_FROM = {
    "official": re.compile(r"^transformer\.(\d+)\.(.+)$"),
    "transformers": re.compile(r"^encoder\.layers\.(\d+)\.(.+)$"),
    "open_clip": re.compile(r"^transformer\.resblocks\.(\d+)\.(.+)$"),
}

# official inside-block name -> transformers inside-block name(s); a tuple means concatenated rows
_BLOCK_O2T = {
    "norm1.weight": "layer_norm1.weight", "norm1.bias": "layer_norm1.bias",
    "norm2.weight": "layer_norm2.weight", "norm2.bias": "layer_norm2.bias",
    "attn.to_qkv.weight": ("self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"),
    "attn.to_qkv.bias": ("self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"),
    "attn.proj.weight": "self_attn.out_proj.weight", "attn.proj.bias": "self_attn.out_proj.bias",
    "mlp.0.weight": "mlp.fc1.weight", "mlp.0.bias": "mlp.fc1.bias",
    "mlp.2.weight": "mlp.fc2.weight", "mlp.2.bias": "mlp.fc2.bias",
}
_BLOCK_O2C = {  # official -> open_clip, inside a block
    "norm1.weight": "ln_1.weight", "norm1.bias": "ln_1.bias",
    "norm2.weight": "ln_2.weight", "norm2.bias": "ln_2.bias",
    "attn.to_qkv.weight": "attn.in_proj_weight", "attn.to_qkv.bias": "attn.in_proj_bias",
    "attn.proj.weight": "attn.out_proj.weight", "attn.proj.bias": "attn.out_proj.bias",
    "mlp.0.weight": "mlp.c_fc.weight", "mlp.0.bias": "mlp.c_fc.bias",
    "mlp.2.weight": "mlp.c_proj.weight", "mlp.2.bias": "mlp.c_proj.bias",
}
_BLOCK_O2O = {k: k for k in _BLOCK_O2C}

# official top-level name -> (other name, reshape to official) per naming
_TOP = {
    "official": {"patch_embedding.weight": "patch_embedding.weight", "patch_embedding.bias": "patch_embedding.bias",
                 "cls_embedding": "cls_embedding", "pos_embedding": "pos_embedding",
                 "pre_norm.weight": "pre_norm.weight", "pre_norm.bias": "pre_norm.bias"},
    "transformers": {"patch_embedding.weight": "embeddings.patch_embedding.weight",
                     "patch_embedding.bias": "embeddings.patch_embedding.bias",
                     "cls_embedding": "embeddings.class_embedding",
                     "pos_embedding": "embeddings.position_embedding.weight",
                     "pre_norm.weight": "pre_layrnorm.weight", "pre_norm.bias": "pre_layrnorm.bias"},
    "open_clip": {"patch_embedding.weight": "conv1.weight", "patch_embedding.bias": "conv1.bias",
                  "cls_embedding": "class_embedding", "pos_embedding": "positional_embedding",
                  "pre_norm.weight": "ln_pre.weight", "pre_norm.bias": "ln_pre.bias"},
}
_BLOCKS = {"official": _BLOCK_O2O, "transformers": _BLOCK_O2T, "open_clip": _BLOCK_O2C}
_BLOCK_PREFIX = {"official": "transformer.%d.", "transformers": "encoder.layers.%d.",
                 "open_clip": "transformer.resblocks.%d."}

MARKERS = {  # naming -> a key (after the prefix) that only it has
    "official": "transformer.0.attn.to_qkv.weight",
    "transformers": "encoder.layers.0.self_attn.q_proj.weight",
    "open_clip": "transformer.resblocks.0.attn.in_proj_weight",
}
PREFIXES = {
    "official": ("visual.", "clip.visual.", "model.visual.", ""),
    "transformers": ("vision_model.", "clip_vision.vision_model.", "model.vision_model.", "image_encoder.vision_model.",
                     ""),
    "open_clip": ("visual.", "clip.visual.", "model.visual."),
}


def detect_naming(keys: Iterable[str]) -> Optional[Tuple[str, str]]:
    """(naming, prefix) of the vision tower in ``keys``; None if there is none."""
    keys = set(keys)
    for naming in ("official", "transformers", "open_clip"):
        for prefix in PREFIXES[naming]:
            patch = prefix + _TOP[naming]["patch_embedding.weight"]
            if prefix + MARKERS[naming] in keys and patch in keys:
                return naming, prefix
    return None


def official_to(naming: str, key: str):
    """Official model key -> the file name(s) in ``naming`` (without prefix): str, or tuple to concatenate."""
    if key in _TOP[naming]:
        return _TOP[naming][key]
    m = _BLOCK_FROM["official"].match(key)
    if m and m.group(2) in _BLOCKS[naming]:
        return _join(naming, int(m.group(1)), _BLOCKS[naming][m.group(2)])
    return None


def _join(naming: str, block: int, inner):
    pre = _BLOCK_PREFIX[naming] % block
    return tuple(pre + i for i in inner) if isinstance(inner, tuple) else pre + inner


def official_keys_in(keys: Iterable[str], naming: str, prefix: str) -> Dict[str, object]:
    """Official model key -> file key(s) for every tower tensor present in ``keys``."""
    keys = set(keys)
    found_blocks = set()
    pat = _BLOCK_FROM[naming]
    for k in keys:
        if k.startswith(prefix):
            m = pat.match(k[len(prefix):])
            if m:
                found_blocks.add(int(m.group(1)))
    out: Dict[str, object] = {}
    candidates = list(_TOP[naming])
    for b in sorted(found_blocks):
        candidates += ["transformer.%d.%s" % (b, inner) for inner in _BLOCK_O2O]
    for ok in candidates:
        fk = official_to(naming, ok)
        parts = fk if isinstance(fk, tuple) else (fk,)
        if all(prefix + p in keys for p in parts):
            out[ok] = tuple(prefix + p for p in parts) if isinstance(fk, tuple) else prefix + fk
    return out


# --------------------------------------------------------------------------- a renamed view


@dataclass
class _Recipe:
    parts: Tuple[str, ...]  # file keys, concatenated along dim 0 when more than one
    shape: Tuple[int, ...]  # official shape


class MappedSource:
    """Read-only view of a TensorSource under official names (what the loaders need of one).

    Single-part tensors keep their stored dtype and their ``scale_weight`` (exposed under the
    official name); concatenated ones are dequantized first when their parts carry scales.
    """

    def __init__(self, source, recipes: Dict[str, _Recipe]):
        self._src = source
        self._recipes = recipes
        self.files = list(getattr(source, "files", ["<state dict>"]))
        self.metadata = dict(getattr(source, "metadata", {}) or {})
        self._scales: Dict[str, str] = {}
        for ok, r in recipes.items():
            if len(r.parts) == 1 and ok.endswith(".weight"):
                for suf in SCALE_SUFFIXES:
                    sk = r.parts[0][: -len(".weight")] + suf
                    if sk in source:
                        self._scales[ok[: -len(".weight")] + ".scale_weight"] = sk

    def keys(self) -> List[str]:
        return list(self._recipes) + list(self._scales)

    def __contains__(self, key: str) -> bool:
        return key in self._recipes or key in self._scales

    def __len__(self) -> int:
        return len(self._recipes) + len(self._scales)

    def shape(self, key: str) -> Tuple[int, ...]:
        if key in self._scales:
            return self._src.shape(self._scales[key])
        return self._recipes[key].shape

    def dtype(self, key: str) -> torch.dtype:
        if key in self._scales:
            return self._src.dtype(self._scales[key])
        parts = self._recipes[key].parts
        d = self._src.dtype(parts[0])
        return torch.float32 if len(parts) > 1 and is_fp8(d) else d

    def get(self, key: str) -> torch.Tensor:
        if key in self._scales:
            return self._src.get(self._scales[key])
        r = self._recipes[key]
        if len(r.parts) == 1:
            return self._src.get(r.parts[0]).reshape(r.shape)
        tensors = [self._dequantized(p) for p in r.parts]
        dtype = tensors[0].dtype if all(t.dtype == tensors[0].dtype for t in tensors) else torch.float32
        return torch.cat([t.to(dtype) for t in tensors], dim=0).reshape(r.shape)

    def _dequantized(self, file_key: str) -> torch.Tensor:
        t = self._src.get(file_key)
        if not is_fp8(t.dtype):
            return t
        base = file_key[: -len(".weight")] if file_key.endswith(".weight") else file_key
        for suf in SCALE_SUFFIXES:
            if base + suf in self._src:
                return t.float() * self._src.get(base + suf).float()
        return t.float()

    def nbytes(self) -> int:
        return self._src.nbytes()

    def close(self) -> None:
        self._src.close()


def mapped_source(source, naming: str, prefix: str) -> MappedSource:
    """The tower of ``source`` under official names, with the official shapes."""
    found = official_keys_in(source.keys(), naming, prefix)
    recipes: Dict[str, _Recipe] = {}
    for ok, fk in found.items():
        parts = fk if isinstance(fk, tuple) else (fk,)
        shapes = [tuple(source.shape(p)) for p in parts]
        if len(parts) > 1:
            shape = (sum(s[0] for s in shapes),) + shapes[0][1:]
        else:
            shape = shapes[0]
        if ok == "cls_embedding":
            shape = (1, 1, shape[-1])
        elif ok == "pos_embedding":
            shape = (1,) + tuple(shape[-2:])
        recipes[ok] = _Recipe(parts, shape)
    return MappedSource(source, recipes)


# --------------------------------------------------------------------------- config


def infer_config(shapes: Mapping[str, Sequence[int]], num_heads: Optional[int] = None) -> CLIPVisionConfig:
    """Sizes from official-named shapes.  The head count is not in the shapes: pass it, else it
    comes from the width of the known towers (1280 -> 16 for ViT-H) or a head size of 64."""

    def need(k):
        if k not in shapes:
            raise KeyError(k)
        return list(shapes[k])

    dim, _, patch, _ = need("patch_embedding.weight")
    tokens = need("pos_embedding")[1]
    grid = int(round((tokens - 1) ** 0.5))
    if grid * grid != tokens - 1:
        raise ValueError("%d position embeddings do not make a square grid plus a class token" % tokens)
    mlp_dim = need("transformer.0.mlp.0.weight")[0]
    layers = 1 + max(int(m.group(1)) for k in shapes for m in [_BLOCK_FROM["official"].match(k)] if m)
    heads = num_heads or HEADS_BY_WIDTH.get(dim) or max(1, dim // 64)
    pre_norm = "pre_norm.weight" in shapes
    return CLIPVisionConfig(image_size=grid * patch, patch_size=patch, dim=dim, mlp_dim=mlp_dim, num_heads=int(heads),
                            num_layers=layers, pre_norm=pre_norm, patch_bias="patch_embedding.bias" in shapes)


def expected_shapes(cfg: CLIPVisionConfig) -> Dict[str, Tuple[int, ...]]:
    """Official key (without ``visual.``) -> shape for a config (built on the meta device)."""
    from .clip_vit import CLIPVisionTower

    with torch.device("meta"):
        m = CLIPVisionTower(cfg)
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}


# --------------------------------------------------------------------------- whole-dict conversion


def convert_state_dict(sd: Mapping[str, torch.Tensor], to: str,
                       prefix: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """An official-named tower state dict (no ``visual.``) in another naming, with its usual prefix.

    ``to`` is "official", "transformers" or "open_clip"; q/k/v are split for transformers and
    the class / position embeddings reshaped.  Used by tests and conversion tools.
    """
    if prefix is None:
        prefix = "vision_model." if to == "transformers" else "visual."
    out: Dict[str, torch.Tensor] = {}
    for ok, t in sd.items():
        fk = official_to(to, ok)
        if fk is None:
            continue
        if isinstance(fk, tuple):
            for name, piece in zip(fk, t.chunk(len(fk), dim=0)):
                out[prefix + name] = piece.clone()
            continue
        if ok == "cls_embedding" and to != "official":
            t = t.reshape(-1)
        elif ok == "pos_embedding" and to != "official":
            t = t.reshape(t.shape[-2], t.shape[-1])
        out[prefix + fk] = t
    return out
