"""Load the Wan2.1 VAE from any checkpoint in circulation.

Accepted: the official ``Wan2.1_VAE.pth`` (read with ``torch.load(weights_only=True)``),
official-named ``.safetensors`` files such as ComfyUI's ``wan_2.1_vae.safetensors`` (also
behind a prefix like ``first_stage_model.`` or ``vae.``), diffusers ``AutoencoderKLWan``
folders (``vae/`` of a pipeline, or the ``vae`` folder itself), fp32 / bf16 / fp16 weights.
The naming and the configuration are detected from the keys and shapes; the model is built
on the meta device and filled one tensor at a time.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple, Union

import torch

from ..loading.checkpoint import CheckpointError, TensorSource, open_weights
from ..loading.materialize import build_and_fill, parse_weight_dtype
from . import vae_keys
from .vae import WanVAE, WanVAEConfig

STORAGE_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def detect(source: TensorSource) -> Optional[str]:
    """"official" or "diffusers" if ``source`` holds a Wan VAE, else None."""
    found = vae_keys.detect_naming(source.keys(), source.shape)
    return found[0] if found else None


def _storage_dtype(dtype: Union[torch.dtype, str]) -> torch.dtype:
    if isinstance(dtype, str):
        dtype = parse_weight_dtype(dtype) or torch.float32
    if dtype not in STORAGE_DTYPES:
        raise ValueError("the VAE weights can be stored as float32, bfloat16 or float16, not %s" % dtype)
    return dtype


def _not_a_vae(where: str, source: TensorSource) -> CheckpointError:
    keys = source.keys()
    hint = ""
    if any(k.endswith(("patch_embedding.weight", "blocks.0.self_attn.q.weight", "blocks.0.attn1.to_q.weight"))
           for k in keys):
        hint = " It looks like a diffusion model (DiT): load it with the model loader instead."
    elif any("token_embedding" in k or "shared.weight" == k or k.startswith("encoder.block.") for k in keys):
        hint = " It looks like a text encoder."
    elif any(k.startswith(("visual.", "vision_model.")) for k in keys):
        hint = " It looks like a CLIP vision model."
    elif any(k.endswith("encoder.conv_in.conv.weight") for k in keys):
        hint = " It looks like another video VAE (HunyuanVideo / CogVideoX style), not the Wan2.1 VAE."
    elif any(k.endswith("encoder.conv_in.weight") for k in keys):
        hint = " It looks like an image (2D) VAE, not the Wan2.1 video VAE."
    return CheckpointError(
        "%s is not a Wan2.1 VAE: expected keys like 'encoder.conv1.weight' and 'decoder.conv1.weight' "
        "(official / ComfyUI, Wan2.1_VAE.pth) or 'encoder.conv_in.weight' and 'post_quant_conv.weight' "
        "(diffusers AutoencoderKLWan); found %d tensors, e.g. %s.%s"
        % (where, len(keys), ", ".join(sorted(keys)[:4]) or "none", hint))


def load_wan_vae(path: Union[str, Dict[str, torch.Tensor], TensorSource], *,
                 dtype: Union[torch.dtype, str] = torch.float32, device: Union[str, torch.device] = "cpu",
                 compute_dtype: torch.dtype = torch.float32) -> Tuple[WanVAE, WanVAEConfig]:
    """Load the VAE.  Returns (model, config); the model is in eval mode, without gradients.

    Args:
        path: a ``.pth`` / ``.safetensors`` file, a diffusers ``vae`` folder or pipeline
            folder, an official model folder holding ``Wan2.1_VAE.pth``, an in-memory state
            dict, or a :class:`TensorSource`.
        dtype: storage dtype of the weights (float32, bfloat16 or float16, or "bf16"...).
        device: where the weights are placed (and where encode/decode compute).
        compute_dtype: dtype of the computation (float32, as the official code).
    """
    device = torch.device(device)
    storage = _storage_dtype(dtype)
    source, file_config, where = open_weights(path, "vae")
    where = where or "the given weights"
    found = vae_keys.detect_naming(source.keys(), source.shape)
    if found is None:
        raise _not_a_vae(where, source)
    naming, prefix = found
    names = vae_keys.to_official_names(source.keys(), naming, prefix)
    shapes = {ok: source.shape(fk) for fk, ok in names.items()}
    try:
        config = vae_keys.infer_config(shapes)
        config.validate()
    except KeyError as e:
        raise CheckpointError("%s looks like a Wan VAE but lacks the tensor %s" % (where, e)) from e
    except ValueError as e:
        raise CheckpointError("%s: %s" % (where, e)) from e

    model = build_and_fill(lambda: WanVAE(config), source, names.get, "Wan2.1 VAE (%s naming)" % naming,
                           lambda key, file_dtype: storage if file_dtype.is_floating_point else file_dtype, device)
    mean, std = _latent_stats(file_config, config.z_dim)
    model.set_latent_stats(mean, std, device=device)
    model.compute_dtype = compute_dtype
    model.eval().requires_grad_(False)
    model.source_path = where if isinstance(where, str) else None
    return model, config


def _latent_stats(file_config: Optional[dict], z_dim: int):
    """Statistics from a diffusers ``config.json`` when it has them for this z_dim, else
    None (the official constants)."""
    if not file_config:
        return None, None
    mean, std = file_config.get("latents_mean"), file_config.get("latents_std")
    if isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) == z_dim:
        return mean, std
    return None, None
