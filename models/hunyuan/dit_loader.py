"""Load the SkyReels-V1 / HunyuanVideo DiT from any checkpoint in circulation.

Accepted: Kijai's and Comfy-Org's single files (original naming, bf16 or fp8_e4m3fn, scaled
fp8), GGUF files (``hyvid``, e.g. Kijai's SkyReels I2V Q4_K_S ... Q8_0; Linear weights stay
quantized), ComfyUI-saved checkpoints (prefix ``model.diffusion_model.``), the official diffusers
folders ``Skywork/SkyReels-V1-Hunyuan-{T2V,I2V}`` (``config.json`` + shards + index, or a
pipeline's ``transformer/``), ``.pth`` read with ``weights_only=True``.  T2V (16 input
channels) or I2V (32) and every size are read from the weights; the model is built on the
meta device and filled one tensor at a time.
"""
from __future__ import annotations

import re
from typing import Dict, Optional, Tuple, Union

import torch

from ..common.ops import default_compute_dtype
from ..loading.checkpoint import CheckpointError, TensorSource, open_weights
from ..loading.materialize import build_and_fill, parse_weight_dtype, storage_policy
from ..loading.remap import RemappedSource
from . import dit_keys
from .dit import HunyuanDiT
from .dit_config import HunyuanDiTConfig, declared_config

_FP8_ELIGIBLE = re.compile(
    r"^(double_blocks\.\d+\.(img|txt)_(attn_qkv|attn_proj|mlp\.fc1|mlp\.fc2|mod\.linear)"
    r"|single_blocks\.\d+\.(linear1|linear2|modulation\.linear))\.weight$")


def fp8_eligible(key: str) -> bool:
    """Weights stored in fp8 when asked: the Linear weights inside the blocks."""
    return bool(_FP8_ELIGIBLE.match(key))


def detect(source: TensorSource) -> Optional[Tuple[str, str]]:
    """(naming, prefix) if ``source`` holds a HunyuanVideo DiT, else None."""
    return dit_keys.detect_naming(source.keys())


def original_view(source: TensorSource, naming: str, prefix: str) -> Tuple[TensorSource, Dict[str, str]]:
    """The source under the model's (original) names, and file key -> model key."""
    if naming == "diffusers":
        source = RemappedSource(source, dit_keys.diffusers_recipe(source.keys(), prefix))
        prefix = ""
    return source, dit_keys.strip_prefix(source.keys(), prefix)


def config_from_source(source: TensorSource, names: Dict[str, str], file_config: Optional[dict],
                       hints: Optional[dict] = None) -> HunyuanDiTConfig:
    shapes = {mk: source.shape(fk) for fk, mk in names.items()
              if not fk.endswith((".scale_weight", ".weight_scale", ".scale_input", ".input_scale"))}
    found: Dict = {}
    declared = declared_config(file_config)
    # Trust the file's config only where it agrees with the tensors beside it.
    if declared is not None and tuple(shapes.get("img_in.proj.weight", (None,)))[:1] == (declared.hidden_size,):
        found.update(axes_dim=declared.axes_dim, theta=declared.theta)
    found.update({k: v for k, v in (hints or {}).items() if v is not None})
    try:
        cfg = dit_keys.infer_config(shapes, found)
    except KeyError as e:
        raise CheckpointError("%s looks like a HunyuanVideo DiT but lacks the tensor %s" % (source.files[0], e)) from e
    if declared is not None and declared.num_heads and cfg.hidden_size == declared.hidden_size:
        cfg.num_heads = declared.num_heads
    try:
        cfg.validate()
    except ValueError as e:
        raise CheckpointError("%s: %s" % (source.files[0], e)) from e
    return cfg


def load_hunyuan_dit(path: Union[str, Dict[str, torch.Tensor], TensorSource], *, weight_dtype: str = "auto",
                     compute_dtype: Optional[torch.dtype] = None, device: Union[str, torch.device] = "cpu",
                     config: Optional[HunyuanDiTConfig] = None, attention: str = "sdpa",
                     compute_device: Union[None, str, torch.device] = None,
                     axes_dim=None, theta: Optional[float] = None) -> Tuple[HunyuanDiT, HunyuanDiTConfig]:
    """Load the DiT.  Returns (model, config); the model is in eval mode, without gradients.

    Args:
        path: a file, a model folder, a diffusers pipeline folder, an in-memory state dict, or
            a :class:`TensorSource`.
        weight_dtype: storage of the weights: "auto" (fp8 files stay fp8, others in the
            compute dtype or narrower), "bf16", "fp16", "fp32", "fp8_e4m3fn", "fp8_e5m2".
        compute_dtype: dtype of the matrix products; default float32 on CPU, bf16 elsewhere.
        device: where the weights are placed.
        config: skip detection and use this configuration (names are still detected).
        attention: attention backend ("sdpa", "flash_attn", "sageattn", "auto"), checked for
            ``compute_device`` (default: ``device``).
        axes_dim, theta: the RoPE split and base when the file does not come with a config
            (default: the released (16, 56, 56) and 256).
    """
    device = torch.device(device)
    if compute_dtype is None:
        compute_dtype = default_compute_dtype(device)
    source, file_config, where = open_weights(path, "dit")
    if "general.architecture" in source.metadata:  # GGUF (city96 layout): the family is written in the file
        from ..loading.gguf import check_architecture

        check_architecture(source, "hyvid", "HunyuanVideo / SkyReels-V1 DiT")
    found = detect(source)
    if found is None:
        raise CheckpointError(
            "%s is not a HunyuanVideo / SkyReels-V1 DiT: expected keys like 'double_blocks.0.img_attn_qkv.weight' "
            "(original, Kijai, Comfy-Org; optionally behind 'model.diffusion_model.') or "
            "'context_embedder.token_refiner.refiner_blocks.0.norm1.weight' (diffusers); found e.g. %s"
            % (where or "the given weights", ", ".join(sorted(source.keys())[:4])))
    naming, prefix = found
    view, names = original_view(source, naming, prefix)
    if config is None:
        config = config_from_source(view, names, file_config, {"axes_dim": axes_dim, "theta": theta})
    policy = storage_policy(parse_weight_dtype(weight_dtype), compute_dtype, fp8_eligible)
    model = build_and_fill(lambda: HunyuanDiT(config), view, names.get, "HunyuanVideo DiT (%s naming)" % naming,
                           policy, device)
    model.compute_dtype = compute_dtype
    from ..common.attention import resolve_backend
    from ...host import log

    model.attention_backend = resolve_backend(attention, torch.device(compute_device or device), log)
    model.eval().requires_grad_(False)
    model.source_path = where
    model.naming = naming
    model.source_types = source.metadata.get("gguf.tensor_types", "")
    return model, config
