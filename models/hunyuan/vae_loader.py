"""Load the HunyuanVideo VAE (SkyReels-V1) from the files in circulation.

Accepted: Comfy-Org's ``hunyuan_video_vae_bf16.safetensors``, the Tencent
``pytorch_model.pt`` / diffusers ``vae/`` folder of ``hunyuanvideo-community/HunyuanVideo``
(the Tencent naming is the diffusers naming), optionally behind a prefix (``vae.``,
``first_stage_model.``); fp32 / bf16 / fp16.  The configuration is read from the shapes (and a
``config.json`` beside the weights for what shapes cannot tell: the norm groups and the time
compression); the model is built on the meta device and filled one tensor at a time.
"""
from __future__ import annotations

import re
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import torch

from ..loading.checkpoint import CheckpointError, TensorSource, open_weights
from ..loading.materialize import build_and_fill, parse_weight_dtype
from .vae import HunyuanVAE, HunyuanVAEConfig

PREFIXES = ("", "vae.", "first_stage_model.", "model.")
MARK = "encoder.conv_in.conv.weight"
DECODER_MARK = "decoder.conv_in.conv.weight"
STORAGE_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def detect(source: TensorSource) -> Optional[str]:
    """The prefix if ``source`` holds a HunyuanVideo VAE, else None."""
    keys = set(source.keys())
    for k in keys:
        if k.endswith(DECODER_MARK):
            prefix = k[: -len(DECODER_MARK)]
            if prefix in PREFIXES and prefix + "post_quant_conv.weight" in keys and \
                    any(x.startswith(prefix + "decoder.up_blocks.0.resnets.0.conv1.conv.") for x in keys):
                return prefix
    return None


def _count(shapes: Mapping[str, Sequence[int]], pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in shapes for m in [rx.match(k)] if m})


def infer_config(shapes: Mapping[str, Sequence[int]], file_config: Optional[dict] = None) -> HunyuanVAEConfig:
    stages = _count(shapes, r"^encoder\.down_blocks\.(\d+)\.")
    ch = tuple(int(shapes["encoder.down_blocks.%d.resnets.0.conv1.conv.weight" % i][0]) for i in range(stages))
    downs = _count(shapes, r"^encoder\.down_blocks\.(\d+)\.downsamplers\.")
    declared = HunyuanVAEConfig.from_diffusers(file_config) if file_config else None
    cfg = HunyuanVAEConfig(
        in_channels=int(shapes["encoder.conv_in.conv.weight"][1]),
        out_channels=int(shapes["decoder.conv_out.conv.weight"][0]),
        latent_channels=int(shapes["decoder.conv_in.conv.weight"][1]),
        block_out_channels=ch,
        layers_per_block=_count(shapes, r"^encoder\.down_blocks\.0\.resnets\.(\d+)\."),
        spatial_compression_ratio=2 ** downs,
        mid_block_add_attention="encoder.mid_block.attentions.0.to_q.weight" in shapes,
    )
    if declared is not None and declared.block_out_channels == cfg.block_out_channels:
        cfg = cfg.replace(norm_num_groups=declared.norm_num_groups, scaling_factor=declared.scaling_factor,
                          temporal_compression_ratio=declared.temporal_compression_ratio)
    return cfg


def load_hunyuan_vae(path: Union[str, Dict[str, torch.Tensor], TensorSource], *,
                     dtype: Union[torch.dtype, str] = torch.float32, device: Union[str, torch.device] = "cpu",
                     compute_dtype: Optional[torch.dtype] = None, config: Optional[HunyuanVAEConfig] = None
                     ) -> Tuple[HunyuanVAE, HunyuanVAEConfig]:
    """Load the VAE.  Returns (model, config) in eval mode.

    Args:
        path: a file, a diffusers ``vae`` or pipeline folder, an in-memory state dict, or a
            :class:`TensorSource`.
        dtype: storage dtype (float32 as the official code, bfloat16 or float16).
        device: where the weights are placed.
        compute_dtype: dtype of the computation (default: ``dtype``).
        config: use this configuration where the weights cannot tell (norm groups).
    """
    if isinstance(dtype, str):
        dtype = parse_weight_dtype(dtype) or torch.float32
    if dtype not in STORAGE_DTYPES:
        raise ValueError("the VAE weights can be stored as float32, bfloat16 or float16, not %s" % dtype)
    device = torch.device(device)
    source, file_config, where = open_weights(path, "vae")
    where = where or "the given weights"
    prefix = detect(source)
    if prefix is None:
        keys = sorted(source.keys())
        hint = ""
        if any(k.endswith(("decoder.conv1.weight", "encoder.conv1.weight")) for k in keys):
            hint = " It looks like the Wan2.1 VAE (SkyReels-V2): load it with the SkyReels VAE Loader."
        raise CheckpointError(
            "%s is not a HunyuanVideo VAE: expected keys like 'decoder.conv_in.conv.weight' and "
            "'post_quant_conv.weight' (Comfy-Org hunyuan_video_vae_bf16, diffusers vae/); found %d tensors, e.g. %s.%s"
            % (where, len(keys), ", ".join(keys[:4]) or "none", hint))
    names = {k: k[len(prefix):] for k in source.keys() if k.startswith(prefix)}
    shapes = {mk: source.shape(fk) for fk, mk in names.items()}
    try:
        found = infer_config(shapes, file_config)
        if config is not None:
            if config.block_out_channels != found.block_out_channels:
                raise ValueError("the given config has channels %s, the weights %s"
                                 % (list(config.block_out_channels), list(found.block_out_channels)))
            found = config
        found.validate()
    except KeyError as e:
        raise CheckpointError("%s looks like a HunyuanVideo VAE but lacks the tensor %s" % (where, e)) from e
    except ValueError as e:
        raise CheckpointError("%s: %s" % (where, e)) from e
    model = build_and_fill(lambda: HunyuanVAE(found), source, names.get, "HunyuanVideo VAE",
                           lambda key, file_dtype: dtype if file_dtype.is_floating_point else file_dtype, device)
    model.compute_dtype = compute_dtype or dtype
    model.eval().requires_grad_(False)
    model.source_path = where
    return model, found
