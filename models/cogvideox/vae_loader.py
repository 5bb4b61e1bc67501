"""Load a CogVideoX VAE (SkyReels-A1's ``vae/`` or ``pose_guider/``) from the files in circulation.

Accepted: a diffusers component folder (``config.json`` + ``diffusion_pytorch_model.safetensors``),
the A1 pipeline folder with the component named (``vae`` or ``pose_guider``), single files with
the diffusers names (optionally behind a ``vae.`` / ``first_stage_model.`` prefix), in any float
dtype.  The block widths and depths come from the shapes; the group count, sample size (tile
size) and scaling factor from the ``config.json`` when there is one, else CogVideoX-5B's values.
"""
from __future__ import annotations

import os
import re
from typing import Dict, Optional, Tuple, Union

import torch

from ..loading.checkpoint import CheckpointError, TensorSource, open_weights
from ..loading.materialize import build_and_fill, storage_policy
from .vae import CogVideoXVAE, CogVideoXVAEConfig

KNOWN_PREFIXES = ("", "vae.", "first_stage_model.", "model.")
MARKERS = ("encoder.conv_in.conv.weight", "decoder.conv_out.conv.weight", "decoder.norm_out.conv_y.conv.weight")
COMPONENTS = ("vae", "pose_guider")
_DOWN_RE = re.compile(r"^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.conv1\.conv\.weight$")


def detect_prefix(keys) -> Optional[str]:
    keys = set(keys)
    for p in KNOWN_PREFIXES:
        if all(p + m in keys for m in MARKERS):
            return p
    return None


def infer_config(shapes: Dict[str, Tuple[int, ...]], file_config: Optional[dict]) -> CogVideoXVAEConfig:
    widths: Dict[int, int] = {}
    layers = 0
    for k, s in shapes.items():
        m = _DOWN_RE.match(k)
        if m:
            widths[int(m.group(1))] = s[0]
            if m.group(1) == "0":
                layers = max(layers, int(m.group(2)) + 1)
    if not widths:
        raise KeyError("encoder.down_blocks.0.resnets.0.conv1.conv.weight")
    fields = dict(block_out_channels=tuple(widths[i] for i in sorted(widths)), layers_per_block=layers,
                  latent_channels=shapes["encoder.conv_out.conv.weight"][0] // 2,
                  in_channels=shapes["encoder.conv_in.conv.weight"][1],
                  out_channels=shapes["decoder.conv_out.conv.weight"][0], scaling_factor=0.7)
    if file_config and file_config.get("_class_name", "AutoencoderKLCogVideoX") == "AutoencoderKLCogVideoX":
        declared = CogVideoXVAEConfig.from_diffusers(file_config)
        for k in ("norm_num_groups", "norm_eps", "temporal_compression_ratio", "sample_height", "sample_width",
                  "scaling_factor"):
            fields[k] = getattr(declared, k)
    return CogVideoXVAEConfig(**fields)


def _component_path(path: str, component: Optional[str]) -> str:
    if component and os.path.isdir(path) and os.path.isdir(os.path.join(path, component)):
        return os.path.join(path, component)
    return path


def load_cogvideox_vae(path: Union[str, Dict[str, torch.Tensor], TensorSource], *, dtype: torch.dtype = torch.float32,
                       device: Union[str, torch.device] = "cpu", component: Optional[str] = "vae",
                       config: Optional[CogVideoXVAEConfig] = None) -> Tuple[CogVideoXVAE, CogVideoXVAEConfig]:
    """Load the VAE (``component`` "vae") or the pose guider ("pose_guider") of an A1 folder, or the
    VAE in a component folder or file.  Returns (model, config), in eval mode without gradients."""
    if isinstance(path, str):
        path = _component_path(os.path.expanduser(path), component)
    source, file_config, where = open_weights(path, "vae")
    prefix = detect_prefix(source.keys())
    if prefix is None:
        raise CheckpointError(
            "%s is not a CogVideoX VAE: expected keys like 'encoder.conv_in.conv.weight' and "
            "'decoder.norm_out.conv_y.conv.weight'; found e.g. %s"
            % (where or "the given weights", ", ".join(sorted(source.keys())[:4])))
    names = {k: k[len(prefix):] for k in source.keys() if k.startswith(prefix)}
    if config is None:
        try:
            config = infer_config({mk: source.shape(fk) for fk, mk in names.items()}, file_config)
        except KeyError as e:
            raise CheckpointError("%s looks like a CogVideoX VAE but lacks the tensor %s" % (where, e)) from e
    policy = storage_policy(dtype, dtype, lambda k: False)
    model = build_and_fill(lambda: CogVideoXVAE(config), source, names.get, "CogVideoX VAE", policy, torch.device(device))
    model.eval().requires_grad_(False)
    model.source_path = where
    return model, config
