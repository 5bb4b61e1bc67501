"""State-dict naming of the HunyuanVideo DiT: original <-> diffusers, prefixes, config inference.

The model's own names are the original HunyuanVideo names (Tencent checkpoints, Kijai's
``skyreels_hunyuan_*`` files, Comfy-Org's repackaged files).  The diffusers naming (the
official ``Skywork/SkyReels-V1-Hunyuan-*`` folders) differs in three ways besides renames:

* fused q/k/v (``…_attn_qkv``, ``self_attn_qkv``) are three tensors in diffusers, and the
  single-stream ``linear1`` is four (``to_q``, ``to_k``, ``to_v``, ``proj_mlp``; D, D, D, 4D);
* ``final_layer.adaLN_modulation.1`` holds (shift, scale), diffusers' ``norm_out.linear``
  (scale, shift): the halves are swapped;
* everything else is renamed key by key.

A diffusers checkpoint is read through :class:`models.loading.remap.RemappedSource`, which
presents it under the original names (concatenating and swapping lazily).

ComfyUI builds the model from Flux's layers and renames the original keys when it loads them
(``img_attn_qkv`` -> ``img_attn.qkv``, ``mlp.fc1`` -> ``mlp.0``, ``*_mod.linear`` ->
``*_mod.lin``, q/k norms -> ``norm.query_norm.scale`` ...): LoRAs saved from inside ComfyUI use
those names (:func:`original_to_comfy`).
"""
from __future__ import annotations

import re
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..loading.remap import Recipe, swap_halves
from .dit_config import HunyuanDiTConfig, default_axes

KNOWN_PREFIXES = ("", "model.diffusion_model.", "diffusion_model.", "model.", "transformer.")
ORIGINAL_MARK = "double_blocks.0.img_attn_qkv.weight"
DIFFUSERS_MARK = "context_embedder.token_refiner.refiner_blocks.0.norm1.weight"
SINGLE_ORIGINAL_MARK = "single_blocks.0.linear1.weight"
SINGLE_DIFFUSERS_MARK = "single_transformer_blocks.0.proj_mlp.weight"

# (original suffix, [diffusers suffixes]) per scope; several diffusers names = concatenation.
_TOP = [
    ("img_in.proj.", ["x_embedder.proj."]),
    ("time_in.mlp.0.", ["time_text_embed.timestep_embedder.linear_1."]),
    ("time_in.mlp.2.", ["time_text_embed.timestep_embedder.linear_2."]),
    ("guidance_in.mlp.0.", ["time_text_embed.guidance_embedder.linear_1."]),
    ("guidance_in.mlp.2.", ["time_text_embed.guidance_embedder.linear_2."]),
    ("vector_in.in_layer.", ["time_text_embed.text_embedder.linear_1."]),
    ("vector_in.out_layer.", ["time_text_embed.text_embedder.linear_2."]),
    ("txt_in.input_embedder.", ["context_embedder.proj_in."]),
    ("txt_in.t_embedder.mlp.0.", ["context_embedder.time_text_embed.timestep_embedder.linear_1."]),
    ("txt_in.t_embedder.mlp.2.", ["context_embedder.time_text_embed.timestep_embedder.linear_2."]),
    ("txt_in.c_embedder.linear_1.", ["context_embedder.time_text_embed.text_embedder.linear_1."]),
    ("txt_in.c_embedder.linear_2.", ["context_embedder.time_text_embed.text_embedder.linear_2."]),
    ("final_layer.linear.", ["proj_out."]),
    ("final_layer.adaLN_modulation.1.", ["norm_out.linear."]),
]
SWAPPED = ("final_layer.adaLN_modulation.1.",)
_REFINER = [
    ("norm1.", ["norm1."]),
    ("norm2.", ["norm2."]),
    ("self_attn_qkv.", ["attn.to_q.", "attn.to_k.", "attn.to_v."]),
    ("self_attn_proj.", ["attn.to_out.0."]),
    ("mlp.fc1.", ["ff.net.0.proj."]),
    ("mlp.fc2.", ["ff.net.2."]),
    ("adaLN_modulation.1.", ["norm_out.linear."]),
]
_DOUBLE = [
    ("img_mod.linear.", ["norm1.linear."]),
    ("txt_mod.linear.", ["norm1_context.linear."]),
    ("img_attn_qkv.", ["attn.to_q.", "attn.to_k.", "attn.to_v."]),
    ("txt_attn_qkv.", ["attn.add_q_proj.", "attn.add_k_proj.", "attn.add_v_proj."]),
    ("img_attn_q_norm.", ["attn.norm_q."]),
    ("img_attn_k_norm.", ["attn.norm_k."]),
    ("txt_attn_q_norm.", ["attn.norm_added_q."]),
    ("txt_attn_k_norm.", ["attn.norm_added_k."]),
    ("img_attn_proj.", ["attn.to_out.0."]),
    ("txt_attn_proj.", ["attn.to_add_out."]),
    ("img_mlp.fc1.", ["ff.net.0.proj."]),
    ("img_mlp.fc2.", ["ff.net.2."]),
    ("txt_mlp.fc1.", ["ff_context.net.0.proj."]),
    ("txt_mlp.fc2.", ["ff_context.net.2."]),
]
_SINGLE = [
    ("linear1.", ["attn.to_q.", "attn.to_k.", "attn.to_v.", "proj_mlp."]),
    ("linear2.", ["proj_out."]),
    ("q_norm.", ["attn.norm_q."]),
    ("k_norm.", ["attn.norm_k."]),
    ("modulation.linear.", ["norm.linear."]),
]
# (original block prefix regex, diffusers block prefix format, table)
_SCOPES = [
    (re.compile(r"^txt_in\.individual_token_refiner\.blocks\.(\d+)\.(.*)$"),
     "context_embedder.token_refiner.refiner_blocks.%s.", _REFINER),
    (re.compile(r"^double_blocks\.(\d+)\.(.*)$"), "transformer_blocks.%s.", _DOUBLE),
    (re.compile(r"^single_blocks\.(\d+)\.(.*)$"), "single_transformer_blocks.%s.", _SINGLE),
]
_D_SCOPES = [
    (re.compile(r"^context_embedder\.token_refiner\.refiner_blocks\.(\d+)\.(.*)$"),
     "txt_in.individual_token_refiner.blocks.%s.", _REFINER),
    (re.compile(r"^transformer_blocks\.(\d+)\.(.*)$"), "double_blocks.%s.", _DOUBLE),
    (re.compile(r"^single_transformer_blocks\.(\d+)\.(.*)$"), "single_blocks.%s.", _SINGLE),
]


# ComfyUI's in-memory names: (original fragment, ComfyUI fragment), applied in this order.
_COMFY = [
    ("txt_in.t_embedder.mlp.0.", "txt_in.t_embedder.in_layer."),
    ("txt_in.t_embedder.mlp.2.", "txt_in.t_embedder.out_layer."),
    ("txt_in.c_embedder.linear_1.", "txt_in.c_embedder.in_layer."),
    ("txt_in.c_embedder.linear_2.", "txt_in.c_embedder.out_layer."),
    ("_mod.linear.", "_mod.lin."),
    ("_attn_qkv.", "_attn.qkv."),
    ("mlp.fc1.", "mlp.0."),
    ("mlp.fc2.", "mlp.2."),
    ("_attn_q_norm.weight", "_attn.norm.query_norm.scale"),
    ("_attn_k_norm.weight", "_attn.norm.key_norm.scale"),
    (".q_norm.weight", ".norm.query_norm.scale"),
    (".k_norm.weight", ".norm.key_norm.scale"),
    ("_attn_proj.", "_attn.proj."),
    (".modulation.linear.", ".modulation.lin."),
    ("_in.mlp.2.", "_in.out_layer."),
    ("_in.mlp.0.", "_in.in_layer."),
]


def original_to_comfy(key: str) -> str:
    """The name ComfyUI gives an original key inside its HunyuanVideo model."""
    for orig, comfy in _COMFY:
        key = key.replace(orig, comfy)
    return key


def _lookup(rest: str, table) -> Optional[Tuple[str, List[str]]]:
    for orig, diff in table:
        if rest.startswith(orig):
            return orig, diff
    return None


def original_to_diffusers(key: str) -> List[str]:
    """The diffusers key(s) an original key is made of (3 or 4 for fused layers)."""
    for rx, fmt, table in _SCOPES:
        m = rx.match(key)
        if m:
            hit = _lookup(m.group(2), table)
            if hit is None:
                return [key]
            orig, diff = hit
            tail = m.group(2)[len(orig):]
            return [fmt % m.group(1) + d + tail for d in diff]
    hit = _lookup(key, _TOP)
    if hit is None:
        return [key]
    orig, diff = hit
    return [d + key[len(orig):] for d in diff]


def is_swapped(original_key: str) -> bool:
    return original_key.startswith(SWAPPED)


def diffusers_to_original(key: str) -> Optional[Tuple[str, int]]:
    """(original key, position among its parts) of a diffusers key, or None if unknown."""
    for rx, fmt, table in _D_SCOPES:
        m = rx.match(key)
        if m:
            rest = m.group(2)
            for orig, diff in table:
                for i, d in enumerate(diff):
                    if rest.startswith(d):
                        return fmt % m.group(1) + orig + rest[len(d):], i
            return None
    for orig, diff in _TOP:
        for i, d in enumerate(diff):
            if key.startswith(d):
                return orig + key[len(d):], i
    return None


def diffusers_recipe(keys: Iterable[str], prefix: str = "") -> Dict[str, Recipe]:
    """How to read a diffusers-named checkpoint under the original names (see RemappedSource)."""
    groups: Dict[str, Dict[int, str]] = {}
    scales: Dict[str, str] = {}
    for k in keys:
        if not k.startswith(prefix):
            continue
        rest = k[len(prefix):]
        if rest.endswith((".scale_weight", ".weight_scale")):
            scales[rest[: rest.rindex(".")] + ".weight"] = k
            continue
        hit = diffusers_to_original(rest)
        if hit is not None:
            groups.setdefault(hit[0], {})[hit[1]] = k
    recipe: Dict[str, Recipe] = {}
    for orig, parts in groups.items():
        ordered = tuple(parts[i] for i in sorted(parts))
        recipe[orig] = (ordered, swap_halves if is_swapped(orig) else None)
        if len(ordered) == 1:  # a single tensor keeps its fp8 scale beside it
            src_weight = ordered[0][len(prefix):]
            if src_weight in scales and orig.endswith(".weight"):
                recipe[orig[: -len(".weight")] + ".scale_weight"] = ((scales[src_weight],), None)
    return recipe


def detect_naming(keys: Iterable[str]) -> Optional[Tuple[str, str]]:
    """("original" | "diffusers", prefix) for a HunyuanVideo DiT key set, else None."""
    keys = list(keys)
    for mark, naming in ((ORIGINAL_MARK, "original"), (SINGLE_ORIGINAL_MARK, "original"),
                         (DIFFUSERS_MARK, "diffusers"), (SINGLE_DIFFUSERS_MARK, "diffusers")):
        for k in keys:
            if k.endswith(mark):
                prefix = k[: -len(mark)]
                if prefix in KNOWN_PREFIXES:
                    return naming, prefix
    return None


def strip_prefix(keys: Iterable[str], prefix: str) -> Dict[str, str]:
    """file key -> model key for the keys under ``prefix``."""
    return {k: k[len(prefix):] for k in keys if k.startswith(prefix)}


# --------------------------------------------------------------------------- config


def _count(shapes: Mapping[str, Sequence[int]], pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in shapes for m in [rx.match(k)] if m})


def infer_config(shapes: Mapping[str, Sequence[int]], hints: Optional[dict] = None) -> HunyuanDiTConfig:
    """The configuration of a DiT from its (original-named) tensor shapes.

    The RoPE split and theta are not in the weights: ``hints`` (from a config.json) may give
    ``axes_dim`` and ``theta``; otherwise the released (16, 56, 56) / 256 are used for a head
    size of 128.  Raises KeyError naming a tensor that must be there."""
    hints = dict(hints or {})
    D, c_in = shapes["img_in.proj.weight"][:2]
    patch = tuple(int(p) for p in shapes["img_in.proj.weight"][2:])
    depth = _count(shapes, r"^double_blocks\.(\d+)\.")
    single = _count(shapes, r"^single_blocks\.(\d+)\.")
    refiner = _count(shapes, r"^txt_in\.individual_token_refiner\.blocks\.(\d+)\.")
    if depth:
        head_dim = shapes["double_blocks.0.img_attn_q_norm.weight"][0]
        mlp = shapes["double_blocks.0.img_mlp.fc1.weight"][0]
        qkv_bias = "double_blocks.0.img_attn_qkv.bias" in shapes
    else:
        head_dim = shapes["single_blocks.0.q_norm.weight"][0]
        mlp = shapes["single_blocks.0.linear1.weight"][0] - 3 * D
        qkv_bias = "single_blocks.0.linear1.bias" in shapes
    out = shapes["final_layer.linear.weight"][0] // max(1, patch[0] * patch[1] * patch[2])
    cfg = HunyuanDiTConfig(
        in_channels=int(c_in), out_channels=int(out), hidden_size=int(D), num_heads=int(D // head_dim),
        depth=depth, depth_single_blocks=single, depth_refiner=refiner, mlp_ratio=mlp / D,
        text_dim=int(shapes["txt_in.input_embedder.weight"][1]),
        pooled_dim=int(shapes["vector_in.in_layer.weight"][1]),
        axes_dim=tuple(hints.get("axes_dim") or default_axes(int(head_dim))),
        theta=float(hints.get("theta", 256.0)), patch_size=patch, qkv_bias=qkv_bias,
        guidance_embed="guidance_in.mlp.0.weight" in shapes,
    )
    return cfg


def expected_shapes(cfg: HunyuanDiTConfig) -> Dict[str, Tuple[int, ...]]:
    """Every tensor of the model for ``cfg`` with its shape (built on the meta device)."""
    import torch

    from .dit import HunyuanDiT

    with torch.device("meta"):
        model = HunyuanDiT(cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}
