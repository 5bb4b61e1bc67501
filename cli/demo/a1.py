"""Demo models of the SkyReels-A1 workflow, in the release's own format: a diffusers pipeline
folder ``SkyReels-A1/SkyReels-A1-5B/`` with ``transformer/``, ``vae/``, ``pose_guider/`` and
``siglip-so400m-patch14-384/`` (each a ``config.json`` plus its safetensors file, bf16 like the
release; SigLIP in fp32 with the on-disk ``vision_model.*`` names).

The transformer is tiny but has the release's structure: 48 input channels, the 729-token
face stream through ``pose_proj`` and a **learned** positional table, here for 128x96 videos
(the CPU smoke size) instead of 720x480.  So the demo runs only at 128x96 (the sin-cos
fallback is used for any other frame count), like the release runs only at 720x480.  The
face landmarker (a MediaPipe ``.task``) has no demo: without it the face encoder uses the
portrait's centre square.
"""
from __future__ import annotations

import json
import os

import torch

from ..shipped.a1 import A1_DIR, MODELS
from .common import randomize, save

VERSION = 1

SIGLIP = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=54,
              patch_size=2, num_channels=3, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, attention_dropout=0.0)
TRANSFORMER = dict(num_heads=2, head_dim=32, num_layers=2, time_embed_dim=32, text_embed_dim=32, in_channels=48,
                   out_channels=16, sample_height=12, sample_width=16, sample_frames=49,
                   face_embed_dim=SIGLIP["hidden_size"], face_tokens=729)
# sample size 96x160: tiles of 48x80 px, strides 40 / 64 px on the latent grid (as 240x360 tiles are at 720x480)
VAE = dict(block_out_channels=(4, 8, 8, 8), layers_per_block=1, norm_num_groups=4, sample_height=96,
           sample_width=160, scaling_factor=0.7)


def _folder(root: str, key: str) -> str:
    return os.path.join(root, *MODELS[key])


def _write_json(path: str, data: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=1)


def write_transformer(root: str) -> None:
    from ...models.cogvideox.config import CogVideoXConfig
    from ...models.cogvideox.transformer import CogVideoXTransformer

    cfg = CogVideoXConfig(**TRANSFORMER)
    sd = randomize(CogVideoXTransformer(cfg), 21)
    folder = _folder(root, "a1_transformer")
    save(os.path.join(folder, "diffusion_pytorch_model.safetensors"), {k: v.to(torch.bfloat16) for k, v in sd.items()})
    _write_json(os.path.join(folder, "config.json"), cfg.to_diffusers())


def _write_vae(root: str, key: str, seed: int) -> None:
    from ...models.cogvideox.vae import CogVideoXVAE, CogVideoXVAEConfig

    cfg = CogVideoXVAEConfig(**VAE)
    sd = randomize(CogVideoXVAE(cfg), seed)
    folder = _folder(root, key)
    save(os.path.join(folder, "diffusion_pytorch_model.safetensors"), {k: v.to(torch.bfloat16) for k, v in sd.items()})
    _write_json(os.path.join(folder, "config.json"), cfg.to_diffusers())


def write_vae(root: str) -> None:
    _write_vae(root, "a1_vae", 22)


def write_pose_guider(root: str) -> None:
    _write_vae(root, "a1_pose_guider", 23)


def write_siglip(root: str) -> None:
    from ...models.vision.siglip import _transformers

    SiglipVisionConfig, SiglipVisionModel = _transformers()
    cfg = SiglipVisionConfig(**SIGLIP)
    sd = randomize(SiglipVisionModel(cfg), 24)
    sd = {(k if k.startswith("vision_model.") else "vision_model." + k): v for k, v in sd.items()}
    folder = _folder(root, "a1_siglip")
    save(os.path.join(folder, "model.safetensors"), sd)
    _write_json(os.path.join(folder, "config.json"), dict(SIGLIP, model_type="siglip_vision_model",
                                                          architectures=["SiglipVisionModel"]))


def write_model_index(root: str) -> None:
    _write_json(os.path.join(root, "diffusion_models", A1_DIR, "model_index.json"), {
        "_class_name": "CogVideoXImageToVideoPipeline", "note": "SkyReels-A1 demo: random weights",
        "transformer": ["diffusers", "CogVideoXTransformer3DModel"], "vae": ["diffusers", "AutoencoderKLCogVideoX"]})


WRITERS = (write_transformer, write_vae, write_pose_guider, write_siglip, write_model_index)
