"""Load a Wan / SkyReels DiT from any checkpoint in circulation.

Accepted: official folders (``config.json`` + one or many ``.safetensors``, index files),
diffusers folders (``transformer/``) and files, ComfyUI repackaged single files (prefix
``model.diffusion_model.``), fp32 / bf16 / fp16 / fp8 (e4m3fn, e5m2, scaled fp8 with
per-weight ``scale_weight``), ``.pth`` read with ``weights_only=True``, and GGUF files
(city96's layout, ``general.architecture`` = ``wan``; Linear weights stay quantized).  The naming and the
configuration are detected from the keys and shapes; the model is built on the meta device
and filled one tensor at a time.
"""
from __future__ import annotations

import json
import os
import re
from typing import Dict, Optional, Tuple, Union

import torch

from ..common.ops import default_compute_dtype
from ..loading.checkpoint import CheckpointError, TensorSource, config_file, open_weights, require_set
from ..loading.materialize import build_and_fill, parse_weight_dtype, storage_policy
from . import dit_keys
from .dit import WanDiT
from .dit_config import WanDiTConfig

_FP8_ELIGIBLE = re.compile(r"^blocks\.\d+\.(self_attn|cross_attn|audio_cross_attn|ffn)\.[\w.]*weight$")


# config.json settings the Wan configs read as numbers (official and diffusers names)
WAN_CONFIG_NUMBERS = ("dim", "ffn_dim", "num_heads", "num_layers", "in_dim", "out_dim", "text_dim", "text_len",
                      "freq_dim", "eps", "patch_size", "num_attention_heads", "attention_head_dim", "in_channels",
                      "out_channels", "rope_max_seq_len")


def fp8_eligible(key: str) -> bool:
    """Weights stored in fp8 when asked: the Linear weights inside the blocks."""
    return bool(_FP8_ELIGIBLE.match(key)) and "norm" not in key


# Names that say nothing about the model (a diffusers subfolder, shard files): look at the
# folder above instead.
_GENERIC_NAME = re.compile(r"^(transformer|diffusion_pytorch_model.*|model([-.].*)?|.*\.index\.json)$", re.I)


# SkyReels-V3 video extension (Skywork/SkyReels-V3-V2V-14B): transformer/ and shot_transformer/.
_V3_EXTENSION = re.compile(r"V3.*(V2V|EXTEN)")


def _variant_of_name(name: str) -> Optional[str]:
    name = name.upper()
    if "SHOT_TRANSFORMER" in name or (_V3_EXTENSION.search(name) and "SHOT" in name):
        return "v3_shot"
    if _V3_EXTENSION.search(name):
        return "v3_extend"
    if re.search(r"R2V|REFERENCE.?(2|TO).?VIDEO", name):
        return "r2v"
    if re.search(r"(^|[^A-Z0-9])A2([^A-Z0-9]|$)|SKYREELS.?A2", name):
        return "a2"
    if re.search(r"(^|[^A-Z])DF([^A-Z]|$)|DIFFUSION.?FORCING", name):
        return "df"
    if "I2V" in name or "FLF2V" in name:
        return "i2v"
    if "T2V" in name:
        return "t2v"
    return None


def variant_from_name(path: str) -> Optional[str]:
    """SkyReels naming conventions in the file or folder name: "R2V" / "Reference2Video"
    (V3 reference-to-video), "A2" (SkyReels-A2), the V3 video-extension repo's
    ``shot_transformer`` / ``transformer`` (or "V2V" / "extension" / "shot" in a V3 name),
    "DF", "I2V", "T2V".  Generic names (a diffusers ``transformer/`` folder, shard files)
    defer to the folder above."""
    parts = [p for p in os.path.normpath(path).split(os.sep) if p]
    for part in reversed(parts[-4:]):
        found = _variant_of_name(part)
        if found or not _GENERIC_NAME.match(part):
            return found
    return None


def _named_variant(where: Optional[str], metadata: Dict[str, str]) -> Optional[str]:
    """The variant the file or folder name says, else the model name a GGUF file carries
    (``general.name`` / ``general.basename``)."""
    found = variant_from_name(where) if where else None
    for name in (metadata.get("general.name"), metadata.get("general.basename")):
        if found:
            break
        found = _variant_of_name(name) if name else None
    return found


# Class names in a transformer ``config.json`` / pipeline ``model_index.json`` that tell the
# model apart from the plain Wan T2V / I2V transformer with the same keys.
_CLASS_VARIANTS = {"A2Model": "a2", "A2Pipeline": "a2", "SkyReelsA2WanI2v3DModel": "r2v",
                   "WanSkyReelsA2WanT2VPipeline": "r2v"}


def variant_from_config(file_config: Optional[dict], where: Optional[str] = None) -> Optional[str]:
    """The variant a ``config.json`` (or the pipeline's ``model_index.json``) names, if any."""
    names = [(file_config or {}).get("_class_name")]
    if where and os.path.isdir(where):
        for folder in (where, os.path.dirname(os.path.normpath(where))):
            index = os.path.join(folder, "model_index.json")
            if os.path.isfile(index):
                try:
                    with open(index) as f:
                        names.append(json.load(f).get("_class_name"))
                except (OSError, ValueError):
                    pass
                break
    for name in names:
        if name in _CLASS_VARIANTS:
            return _CLASS_VARIANTS[name]
    return None


def reconcile_variant(config: WanDiTConfig, requested: Optional[str]) -> str:
    """The variant to use: the requested one when the key shapes allow it, else what the keys say."""
    from .dit_config import IMAGE_VARIANTS, TEXT_VARIANTS

    by_keys = "i2v" if config.image_dim else ("df" if config.inject_sample_info else "t2v")
    if requested is None:
        return by_keys
    if (requested in IMAGE_VARIANTS) != bool(config.image_dim):
        return by_keys  # a name that contradicts the tensors (e.g. "A2" on a T2V-shaped file)
    if requested in TEXT_VARIANTS and config.inject_sample_info and requested != "df":
        return by_keys
    return requested


V3_EXTENSION_SUBFOLDERS = {"v3_extend": "transformer", "v3_shot": "shot_transformer"}


def v3_extension_folder(path: str, variant: Optional[str]) -> str:
    """The subfolder of the SkyReels-V3 video-extension repo (``transformer/`` and
    ``shot_transformer/`` side by side) that holds ``variant``'s weights; ``path`` itself
    otherwise."""
    if not isinstance(path, str) or not os.path.isdir(path):
        return path
    if os.path.isdir(os.path.join(path, "shot_transformer")) and variant in V3_EXTENSION_SUBFOLDERS:
        return os.path.join(path, V3_EXTENSION_SUBFOLDERS[variant])
    return path


def detect(source: TensorSource) -> Optional[Tuple[str, str]]:
    """(naming, prefix) if ``source`` holds a Wan DiT, else None."""
    return dit_keys.detect_naming(source.keys())


def config_from_source(source: TensorSource, naming: str, prefix: str, file_config: Optional[dict],
                       overrides: Optional[dict] = None) -> Tuple[WanDiTConfig, Dict[str, str]]:
    names = dit_keys.to_official_names(source.keys(), naming, prefix)
    shapes = {}
    for fk, ok in names.items():
        if not fk.endswith(tuple(s for s in (".scale_weight", ".weight_scale", ".scale_input", ".input_scale"))):
            shapes[ok] = source.shape(fk)
    hints: Dict = {}
    if file_config:
        if "num_attention_heads" in file_config:
            declared = WanDiTConfig.from_diffusers(file_config)
        elif "dim" in file_config or "num_heads" in file_config:
            declared = WanDiTConfig.from_official(file_config)
        else:
            declared = None
        # Trust the file's config only where it agrees with the tensors it sits beside.
        if declared is not None and shapes.get("patch_embedding.weight", [None])[0] == declared.dim:
            hints["num_heads"] = declared.num_heads
            hints["rope_max_len"] = declared.rope_max_len
            if "text_len" in file_config:
                hints["text_len"] = int(file_config["text_len"])
    try:
        cfg = dit_keys.infer_config(shapes, hints)
    except KeyError as e:
        raise CheckpointError("%s looks like a Wan DiT but lacks the tensor %s" % (source.files[0], e)) from e
    for k, v in (overrides or {}).items():
        if v is not None:
            setattr(cfg, k, v)
    cfg.validate()
    return cfg, names


def load_wan_dit(path: Union[str, Dict[str, torch.Tensor], TensorSource], *, weight_dtype: str = "auto",
                 compute_dtype: Optional[torch.dtype] = None, device: Union[str, torch.device] = "cpu",
                 config: Optional[WanDiTConfig] = None, variant: Optional[str] = None,
                 attention: str = "sdpa", compute_device: Union[None, str, torch.device] = None
                 ) -> Tuple[WanDiT, WanDiTConfig]:
    """Load a DiT.  Returns (model, config); the model is in eval mode, without gradients.

    Args:
        path: a file, a model folder, a diffusers pipeline folder, an in-memory state dict, or
            a :class:`TensorSource`.
        weight_dtype: storage of the weights: "auto" (fp8 files stay fp8, others in the
            compute dtype or narrower), "bf16", "fp16", "fp32", "fp8_e4m3fn", "fp8_e5m2".
        compute_dtype: dtype of the matrix products; default float32 on CPU, bf16 elsewhere.
        device: where the weights are placed.
        config: skip detection and use this configuration (names are still detected).
        variant: "t2v", "i2v", "df", "a2", "r2v", "v3_extend" or "v3_shot" when the keys cannot
            tell (DF-14B, V3 R2V and the V3 extension models look like T2V-14B, SkyReels-A2 like
            I2V-14B); default: from the config's class name or the file / folder name, else from
            the keys.  Given the V3 video-extension repo folder, "v3_shot" loads its
            ``shot_transformer/`` and "v3_extend" its ``transformer/``.
        attention: attention backend ("sdpa", "flash_attn", "sageattn", "auto"), checked for
            ``compute_device`` (default: ``device``), where the model will run.
    """
    device = torch.device(device)
    if compute_dtype is None:
        compute_dtype = default_compute_dtype(device)
    source, file_config, where = open_weights(v3_extension_folder(path, variant), "dit")
    if file_config and where:
        require_set(file_config, WAN_CONFIG_NUMBERS, config_file(where, "dit"))
    if "general.architecture" in source.metadata:  # GGUF: the family is written in the file
        from ..loading.gguf import check_architecture

        check_architecture(source, "wan", "Wan / SkyReels DiT")
    found = detect(source)
    if found is None:
        from ..loading.identify import wrong_component

        raise wrong_component(where or "the given weights", source, "dit",
                              "'blocks.0.self_attn.q.weight' (official), 'model.diffusion_model.blocks.0...' "
                              "(ComfyUI) or 'blocks.0.attn1.to_q.weight' (diffusers)")
    naming, prefix = found
    if config is None:
        config, names = config_from_source(source, naming, prefix, file_config)
        config.variant = reconcile_variant(config, variant or variant_from_config(file_config, where)
                                           or _named_variant(where, source.metadata))
    else:
        names = dit_keys.to_official_names(source.keys(), naming, prefix)
    policy = storage_policy(parse_weight_dtype(weight_dtype), compute_dtype, fp8_eligible)
    model = build_and_fill(lambda: WanDiT(config), source, names.get, "Wan DiT (%s naming)" % naming, policy, device)
    model.compute_dtype = compute_dtype
    from ..common.attention import resolve_backend
    from ...host import log

    model.attention_backend = resolve_backend(attention, torch.device(compute_device or device), log)
    model.eval().requires_grad_(False)
    model.source_path = where
    model.source_types = source.metadata.get("gguf.tensor_types", "")
    return model, config
