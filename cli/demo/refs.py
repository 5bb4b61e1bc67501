"""Demo models of the A2 / V3 R2V workflows, as diffusers pipeline folders like the released ones.

* ``SkyReels-A2/``: ``model_index.json``; ``transformer/`` (diffusers naming, config.json, two
  bf16 shards and their index, with the ``attn2.norm_added_q`` tensors A2 files may carry);
  ``vae/`` (diffusers ``AutoencoderKLWan`` naming); ``image_encoder/`` (transformers
  ``CLIPVisionModel`` naming).
* ``SkyReels-V3-R2V-14B/``: ``model_index.json``; ``transformer/`` (diffusers naming,
  config.json, one file); ``vae/``.

The DiT widths match the V2 demo umT5 and CLIP (the workflows use those files), so the
models connect.  Random weights make noise, not video.
"""
from __future__ import annotations

import json
import os

import torch

from ..shipped.refs import MODELS
from .common import randomize, save
from .wan_v2 import CLIP, DIT, VAE

VERSION = 1


def _dit_files(folder: str, variant: str, seed: int, shards: int) -> None:
    from ...models.wan.dit import WanDiT
    from ...models.wan.dit_config import WanDiTConfig
    from ...models.wan.dit_keys import official_to_diffusers

    image = variant == "a2"
    cfg = WanDiTConfig(**DIT, in_dim=36 if image else 16, image_dim=CLIP["dim"] if image else None, variant=variant)
    sd = {official_to_diffusers(k): v.to(torch.bfloat16) for k, v in randomize(WanDiT(cfg), seed).items()}
    if image:
        for i in range(cfg.num_layers):
            sd["blocks.%d.attn2.norm_added_q.weight" % i] = torch.ones(cfg.dim, dtype=torch.bfloat16)
    sub = os.path.join(folder, "transformer")
    keys = sorted(sd)
    if shards == 1:
        save(os.path.join(sub, "diffusion_pytorch_model.safetensors"), sd)
    else:
        weight_map = {}
        for s in range(shards):
            name = "diffusion_pytorch_model-%05d-of-%05d.safetensors" % (s + 1, shards)
            part = keys[s * len(keys) // shards:(s + 1) * len(keys) // shards]
            save(os.path.join(sub, name), {k: sd[k] for k in part})
            weight_map.update({k: name for k in part})
        with open(os.path.join(sub, "diffusion_pytorch_model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=1)
    config = {"_class_name": "WanTransformer3DModel", "_diffusers_version": "0.33.0",
              "patch_size": list(cfg.patch_size),
              "num_attention_heads": cfg.num_heads, "attention_head_dim": cfg.head_dim, "in_channels": cfg.in_dim,
              "out_channels": cfg.out_dim, "text_dim": cfg.text_dim, "freq_dim": cfg.freq_dim, "ffn_dim": cfg.ffn_dim,
              "num_layers": cfg.num_layers, "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads",
              "eps": cfg.eps, "image_dim": cfg.image_dim, "added_kv_proj_dim": cfg.dim if image else None,
              "rope_max_seq_len": 1024}
    with open(os.path.join(sub, "config.json"), "w") as f:
        json.dump(config, f, indent=1)


def _vae_files(folder: str, seed: int) -> None:
    from ...models.wan.vae import WanVAE, WanVAEConfig
    from ...models.wan.vae_keys import official_to_diffusers

    cfg = WanVAEConfig(**VAE)
    sd = randomize(WanVAE(cfg), seed)
    out = {official_to_diffusers(k, cfg.num_res_blocks): v for k, v in sd.items()
           if k not in ("latents_mean", "latents_std")}
    save(os.path.join(folder, "vae", "diffusion_pytorch_model.safetensors"), out)
    config = {"_class_name": "AutoencoderKLWan", "base_dim": cfg.dim, "z_dim": cfg.z_dim,
              "dim_mult": list(cfg.dim_mult), "num_res_blocks": cfg.num_res_blocks,
              "attn_scales": list(cfg.attn_scales), "temperal_downsample": list(cfg.temperal_downsample),
              "dropout": 0.0}
    with open(os.path.join(folder, "vae", "config.json"), "w") as f:
        json.dump(config, f, indent=1)


def _clip_files(folder: str, seed: int) -> None:
    from ...models.vision.clip_keys import convert_state_dict
    from ...models.vision.clip_vit import CLIPVisionConfig, CLIPVisionTower

    cfg = CLIPVisionConfig(**CLIP)
    sd = convert_state_dict(randomize(CLIPVisionTower(cfg), seed), "transformers")
    save(os.path.join(folder, "image_encoder", "model.safetensors"), {k: v.to(torch.float16) for k, v in sd.items()})
    config = {"architectures": ["CLIPVisionModel"], "model_type": "clip_vision_model", "hidden_size": cfg.dim,
              "intermediate_size": cfg.mlp_dim, "num_attention_heads": cfg.num_heads,
              "num_hidden_layers": cfg.num_layers, "image_size": cfg.image_size, "patch_size": cfg.patch_size,
              "hidden_act": "gelu", "layer_norm_eps": cfg.eps, "projection_dim": 32}
    with open(os.path.join(folder, "image_encoder", "config.json"), "w") as f:
        json.dump(config, f, indent=1)


def _model_index(folder: str, pipeline: str, parts) -> None:
    os.makedirs(folder, exist_ok=True)
    index = {"_class_name": pipeline, "_diffusers_version": "0.33.0"}
    index.update(parts)
    with open(os.path.join(folder, "model_index.json"), "w") as f:
        json.dump(index, f, indent=1)


def write_a2(root: str) -> None:
    folder = os.path.join(root, *MODELS["a2"])
    _model_index(folder, "WanImageToVideoPipeline",
                 {"transformer": ["diffusers", "WanTransformer3DModel"], "vae": ["diffusers", "AutoencoderKLWan"],
                  "image_encoder": ["transformers", "CLIPVisionModel"]})
    _dit_files(folder, "a2", 11, shards=2)
    _vae_files(folder, 12)
    _clip_files(folder, 13)


def write_r2v(root: str) -> None:
    folder = os.path.join(root, *MODELS["r2v"])
    _model_index(folder, "WanPipeline", {"transformer": ["diffusers", "WanTransformer3DModel"],
                                         "vae": ["diffusers", "AutoencoderKLWan"]})
    _dit_files(folder, "r2v", 14, shards=1)
    _vae_files(folder, 15)


WRITERS = (write_a2, write_r2v)
