"""Load a Wan / SkyReels DiT from any checkpoint in circulation.

Accepted: official folders (``config.json`` + one or many ``.safetensors``, index files),
diffusers folders (``transformer/``) and files, ComfyUI repackaged single files (prefix
``model.diffusion_model.``), fp32 / bf16 / fp16 / fp8 (e4m3fn, e5m2, scaled fp8 with
per-weight ``scale_weight``), ``.pth`` read with ``weights_only=True``.  The naming and the
configuration are detected from the keys and shapes; the model is built on the meta device
and filled one tensor at a time.
"""
from __future__ import annotations

import os
import re
from typing import Dict, Optional, Tuple, Union

import torch

from ..common.ops import default_compute_dtype
from ..loading.checkpoint import CheckpointError, TensorSource, open_weights
from ..loading.materialize import build_and_fill, parse_weight_dtype, storage_policy
from . import dit_keys
from .dit import WanDiT
from .dit_config import WanDiTConfig

_FP8_ELIGIBLE = re.compile(r"^blocks\.\d+\.(self_attn|cross_attn|audio_cross_attn|ffn)\.[\w.]*weight$")


def fp8_eligible(key: str) -> bool:
    """Weights stored in fp8 when asked: the Linear weights inside the blocks."""
    return bool(_FP8_ELIGIBLE.match(key)) and "norm" not in key


def variant_from_name(path: str) -> Optional[str]:
    """SkyReels file-naming conventions: "DF" / "I2V" / "T2V" in the file or folder name."""
    name = os.path.basename(os.path.normpath(path)).upper()
    if re.search(r"(^|[^A-Z])DF([^A-Z]|$)|DIFFUSION.?FORCING", name):
        return "df"
    if "I2V" in name or "FLF2V" in name:
        return "i2v"
    if "T2V" in name:
        return "t2v"
    return None


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
        variant: "t2v", "i2v" or "df" when the keys cannot tell (DF-14B looks like T2V-14B).
        attention: attention backend ("sdpa", "flash_attn", "sageattn", "auto"), checked for
            ``compute_device`` (default: ``device``), where the model will run.
    """
    device = torch.device(device)
    if compute_dtype is None:
        compute_dtype = default_compute_dtype(device)
    source, file_config, where = open_weights(path, "dit")
    found = detect(source)
    if found is None:
        raise CheckpointError(
            "%s is not a Wan / SkyReels DiT: expected keys like 'blocks.0.self_attn.q.weight' (official), "
            "'model.diffusion_model.blocks.0...' (ComfyUI) or 'blocks.0.attn1.to_q.weight' (diffusers); "
            "found e.g. %s" % (where or "the given weights", ", ".join(sorted(source.keys())[:4])))
    naming, prefix = found
    if config is None:
        config, names = config_from_source(source, naming, prefix, file_config,
                                           {"variant": variant or (variant_from_name(where) if where else None)})
        if config.image_dim and config.variant != "i2v":
            config.variant = "i2v"
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
    return model, config
