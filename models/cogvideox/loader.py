"""Load the SkyReels-A1 (CogVideoX) transformer from the files in circulation.

Accepted: the official diffusers pipeline folder (``SkyReels-A1-5B/``: its ``transformer/``
subfolder is used), the ``transformer/`` folder itself (config + one file or shards + index),
single files (the same names, optionally behind a ``model.diffusion_model.``-style prefix),
bf16 / fp16 / fp32 and fp8 (e4m3fn, e5m2, scaled fp8) files.  The configuration comes from the
shapes plus the ``config.json`` beside the weights; the model is built on the meta device and
filled one tensor at a time.
"""
from __future__ import annotations

import re
from typing import Dict, Optional, Tuple, Union

import torch

from ..common.ops import default_compute_dtype
from ..loading.checkpoint import CheckpointError, TensorSource, open_weights
from ..loading.materialize import build_and_fill, parse_weight_dtype, storage_policy
from . import keys
from .config import CogVideoXConfig
from .transformer import CogVideoXTransformer

_FP8_ELIGIBLE = re.compile(r"^transformer_blocks\.\d+\.(attn1\.to_(q|k|v|out\.0)|ff\.net\.(0\.proj|2))\.weight$")


def fp8_eligible(key: str) -> bool:
    """Weights stored in fp8 when asked: the Linear weights inside the blocks."""
    return bool(_FP8_ELIGIBLE.match(key))


def detect(source: TensorSource) -> Optional[str]:
    """The key prefix if ``source`` holds a CogVideoX / A1 transformer, else None."""
    return keys.detect_prefix(source.keys())


def config_from_source(source: TensorSource, prefix: str, file_config: Optional[dict]) -> Tuple[CogVideoXConfig, Dict[str, str]]:
    names = keys.to_model_names(source.keys(), prefix)
    shapes = {mk: source.shape(fk) for fk, mk in names.items()
              if not fk.endswith((".scale_weight", ".weight_scale", ".scale_input", ".input_scale"))}
    if file_config and "num_attention_heads" not in file_config:
        file_config = None  # a config.json of something else beside a single file
    try:
        cfg = keys.infer_config(shapes, file_config)
    except KeyError as e:
        raise CheckpointError("%s looks like a CogVideoX transformer but lacks the tensor %s" % (source.files[0], e)) from e
    except ValueError as e:
        raise CheckpointError("%s: %s" % (source.files[0], e)) from e
    return cfg, names


def load_cogvideox_transformer(path: Union[str, Dict[str, torch.Tensor], TensorSource], *,
                               weight_dtype: str = "auto", compute_dtype: Optional[torch.dtype] = None,
                               device: Union[str, torch.device] = "cpu", config: Optional[CogVideoXConfig] = None,
                               attention: str = "sdpa", compute_device: Union[None, str, torch.device] = None
                               ) -> Tuple[CogVideoXTransformer, CogVideoXConfig]:
    """Load the transformer.  Returns (model, config); the model is in eval mode, without gradients.

    Args:
        path: an A1 pipeline folder, a ``transformer/`` folder, a file, an in-memory state dict
            or a :class:`TensorSource`.
        weight_dtype: "auto" (fp8 files stay fp8, others in the compute dtype or narrower),
            "bf16", "fp16", "fp32", "fp8_e4m3fn", "fp8_e5m2".
        compute_dtype: dtype of the matrix products; default float32 on CPU, bf16 elsewhere.
        device: where the weights are placed.
        config: skip inference and use this configuration.
        attention: attention backend ("sdpa", "flash_attn", "sageattn", "auto"), checked for
            ``compute_device`` (default ``device``).
    """
    device = torch.device(device)
    if compute_dtype is None:
        compute_dtype = default_compute_dtype(device)
    source, file_config, where = open_weights(path, "dit")
    prefix = detect(source)
    if prefix is None:
        raise CheckpointError(
            "%s is not a CogVideoX / SkyReels-A1 transformer: expected keys like 'patch_embed.proj.weight' and "
            "'transformer_blocks.0.attn1.to_q.weight'; found e.g. %s"
            % (where or "the given weights", ", ".join(sorted(source.keys())[:4])))
    if config is None:
        config, names = config_from_source(source, prefix, file_config)
    else:
        names = keys.to_model_names(source.keys(), prefix)
    policy = storage_policy(parse_weight_dtype(weight_dtype), compute_dtype, fp8_eligible)
    model = build_and_fill(lambda: CogVideoXTransformer(config), source, names.get,
                           "CogVideoX / SkyReels-A1 transformer", policy, device)
    model.compute_dtype = compute_dtype
    from ...host import log
    from ..common.attention import resolve_backend

    model.attention_backend = resolve_backend(attention, torch.device(compute_device or device), log)
    model.eval().requires_grad_(False)
    model.source_path = where
    return model, config
